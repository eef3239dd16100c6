import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Shared buckets for durations measured in seconds, from a fast decision to a slow boot. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200];

/** The manager's Prometheus metrics, all `bamel_<subsystem>_<name>`. */
export class ControllerMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'autoscaler' | 'direction' | 'result'>;
  readonly decisionLatency: Histogram<'autoscaler'>;
  readonly reconcileDuration: Histogram<'result'>;
  readonly reconciles: Counter<'result'>;
  readonly powerOperations: Counter<'action' | 'result' | 'driver'>;
  readonly powerOperationDuration: Histogram<'action' | 'driver'>;
  readonly joinDuration: Histogram<'autoscaler'>;
  readonly machines: Gauge<'autoscaler' | 'phase'>;
  readonly unschedulablePods: Gauge<'autoscaler'>;
  readonly pressureLevel: Gauge<'autoscaler' | 'category'>;
  readonly pressureRate: Gauge<'autoscaler' | 'category'>;
  readonly pressured: Gauge<'autoscaler' | 'category'>;
  readonly bmcDegraded: Gauge<'autoscaler' | 'machine'>;
  readonly evictions: Counter<'result'>;
  readonly drains: Counter<'autoscaler' | 'result'>;
  readonly drainDuration: Histogram<'autoscaler'>;
  readonly scaleDownMachines: Gauge<'autoscaler' | 'state'>;
  readonly isLeader: Gauge;
  readonly fenced: Counter;
  readonly queueDepth: Gauge;
  readonly machinePowerWatts: Gauge<'autoscaler' | 'machine'>;
  readonly energyConsumed: Counter<'autoscaler'>;
  readonly energySaved: Counter<'autoscaler'>;
  readonly powerCycles: Counter<'autoscaler' | 'machine'>;
  readonly powerReadings: Counter<'driver' | 'result'>;

  constructor(registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'bamel_process_' });
    const r = [registry];
    this.decisions = new Counter({
      name: 'bamel_controller_decisions_total',
      help: 'Scale decisions by direction (up, down) and result (actuated, dry_run, limited, no_feasible_machine).',
      labelNames: ['autoscaler', 'direction', 'result'],
      registers: r,
    });
    this.decisionLatency = new Histogram({
      name: 'bamel_controller_decision_latency_seconds',
      help: 'From a pod marked Unschedulable to the power-on request for the machine that will host it.',
      labelNames: ['autoscaler'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.reconcileDuration = new Histogram({
      name: 'bamel_controller_reconcile_duration_seconds',
      help: 'Duration of one reconcile of one autoscaler.',
      labelNames: ['result'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.reconciles = new Counter({
      name: 'bamel_controller_reconciles_total',
      help: 'Reconciles by result (ok, requeue, error).',
      labelNames: ['result'],
      registers: r,
    });
    this.powerOperations = new Counter({
      name: 'bamel_power_operations_total',
      help: 'Power operations sent to BMCs, by action (on, off) and result (ok, already, or the error code).',
      labelNames: ['action', 'result', 'driver'],
      registers: r,
    });
    this.powerOperationDuration = new Histogram({
      name: 'bamel_power_operation_duration_seconds',
      help: 'From the power request to the BMC reporting the requested state.',
      labelNames: ['action', 'driver'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.joinDuration = new Histogram({
      name: 'bamel_controller_join_duration_seconds',
      help: 'From power-on to the Node being Ready.',
      labelNames: ['autoscaler'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.machines = new Gauge({
      name: 'bamel_controller_machines',
      help: 'Managed machines per lifecycle phase.',
      labelNames: ['autoscaler', 'phase'],
      registers: r,
    });
    this.unschedulablePods = new Gauge({
      name: 'bamel_controller_unschedulable_pods',
      help: 'Unschedulable pods the autoscaler considered at its last reconcile.',
      labelNames: ['autoscaler'],
      registers: r,
    });
    this.pressureLevel = new Gauge({
      name: 'bamel_controller_pressure_level',
      help: 'Pressure level per category (requested / allocatable over Ready machines).',
      labelNames: ['autoscaler', 'category'],
      registers: r,
    });
    this.pressureRate = new Gauge({
      name: 'bamel_controller_pressure_rate_per_minute',
      help: 'Estimated change of the pressure level per minute (least-squares slope over the window).',
      labelNames: ['autoscaler', 'category'],
      registers: r,
    });
    this.pressured = new Gauge({
      name: 'bamel_controller_pressured',
      help: '1 when the category is under pressure.',
      labelNames: ['autoscaler', 'category'],
      registers: r,
    });
    this.bmcDegraded = new Gauge({
      name: 'bamel_power_bmc_degraded',
      help: "1 when a machine's BMC circuit breaker is open (repeated failures; probed rarely).",
      labelNames: ['autoscaler', 'machine'],
      registers: r,
    });
    this.evictions = new Counter({
      name: 'bamel_controller_evictions_total',
      help: 'Evictions asked of the Eviction API while draining, by result (evicted, gone, refused by a PodDisruptionBudget, error).',
      labelNames: ['result'],
      registers: r,
    });
    this.drains = new Counter({
      name: 'bamel_controller_drains_total',
      help: 'Drains by result (started, completed, aborted, timed_out).',
      labelNames: ['autoscaler', 'result'],
      registers: r,
    });
    this.drainDuration = new Histogram({
      name: 'bamel_controller_drain_duration_seconds',
      help: 'From the draining taint to the last pod gone.',
      labelNames: ['autoscaler'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.scaleDownMachines = new Gauge({
      name: 'bamel_controller_scale_down_machines',
      help: 'Ready machines by scale-down standing: candidate (unneeded, could go), next (chosen to drain), blocked (unneeded but kept on by a blocker).',
      labelNames: ['autoscaler', 'state'],
      registers: r,
    });
    this.isLeader = new Gauge({ name: 'bamel_controller_leader', help: '1 on the replica that holds the leader lease.', registers: r });
    this.fenced = new Counter({ name: 'bamel_controller_fenced_total', help: 'BMC calls refused because this replica no longer held its lease with the fencing margin.', registers: r });
    this.queueDepth = new Gauge({ name: 'bamel_controller_queue_depth', help: 'Autoscalers waiting to be reconciled.', registers: r });
    this.machinePowerWatts = new Gauge({
      name: 'bamel_machine_power_watts',
      help: "What a machine draws: its BMC's reading, else the inventory figure for its phase (status.machines[].power.source says which).",
      labelNames: ['autoscaler', 'machine'],
      registers: r,
    });
    this.energyConsumed = new Counter({
      name: 'bamel_energy_consumed_joules_total',
      help: "Energy the managed machines drew, in joules (status.energy.consumedKWh's increments while this replica led).",
      labelNames: ['autoscaler'],
      registers: r,
    });
    this.energySaved = new Counter({
      name: 'bamel_energy_saved_joules_total',
      help: 'Net energy saved, in joules: idle draw avoided while machines were off, minus the draw while they booted; a power cycle is paid back before it advances (status.energy.savedKWh).',
      labelNames: ['autoscaler'],
      registers: r,
    });
    this.powerCycles = new Counter({
      name: 'bamel_machine_power_cycles_total',
      help: 'Power-ons started, per machine (each is a power cycle: boot energy, latency, wear).',
      labelNames: ['autoscaler', 'machine'],
      registers: r,
    });
    this.powerReadings = new Counter({
      name: 'bamel_power_readings_total',
      help: 'Power draw readings asked of BMCs, by driver and result (ok, none: the BMC offers none, skipped: a power operation held the BMC, error).',
      labelNames: ['driver', 'result'],
      registers: r,
    });
  }
}
