import * as k8s from '@kubernetes/client-node';
import { FINALIZER } from '../../api/v1alpha1/baremetalautoscaler.js';
import { Drainer } from '../drain.js';
import { PodIndex } from '../observe.js';
import { PressureTracker } from '../pressure-tracker.js';
import { actuate } from './actuate.js';
import { Announcer, involvedObject } from './announcer.js';
import { budgetStep } from './budget.js';
import { CandidateCache, SelectionMemo } from './candidates.js';
import { ClaimBook, demandStep } from './demand.js';
import { drainStep } from './drain-step.js';
import { EnergyStep } from './energy.js';
import { afterIntents, preWarmStep, refreshEnergy, restingOf, scaleDownEnergy, slowBoots } from './energy-policy.js';
import { AutoscalerView, InventoryCache, selectMachines } from './fetch.js';
import { FleetCache, fleetConditions } from './fleet.js';
import { applyIntents, deletionIntents, powerOnIntents } from './intents.js';
import { lifecycleStep } from './lifecycle.js';
import { Reporter } from './report.js';
import { requeueAfter } from './requeue.js';
import { scaleDownStep } from './scale-down-step.js';
import { scaleUpStep } from './scale-up.js';
import { ForeignIntents } from './settle.js';
import { checkPowerOffs, livePodsFrom, type LivePods } from './power-off-check.js';
import { unpackLearned } from './learned-codec.js';
import { buildStatus } from './status.js';
import { kubeAutoscalerApi, StatusWriter } from './status-writer.js';
import { ConflictError, type ReconcileResult, type ReconcilerDeps } from './types.js';
import { makeApiClient } from '../../kube/client.js';

export { ConflictError, kubeAutoscalerApi };
export type { AutoscalerApi, ClusterCaps, ReconcilerDeps, ReconcilerOptions, ReconcileResult, Store, Stores } from './types.js';

/** Utilisation rising at least this much per minute (0..1 levels) pauses scale-down. */
const RISING_PER_MINUTE = 0.02;

/**
 * One reconcile of one BareMetalAutoscaler, as steps that each take inputs and return a
 * result (the files beside this one): fetch → lifecycle → demand → pressure → budget →
 * scale-up → drains in flight → scale-down plan → intents → status → actuate → report →
 * requeue. The caches the steps need across reconciles (parsed inventories, compiled
 * machines, the pod index, claims, pressure series, announced events) live here.
 *
 * A status-write conflict requeues at once (rate-limited: the cache is behind); anything
 * waiting on time requeues at the earliest such moment; otherwise after resyncMs. Errors go
 * back to the queue, which retries with per-key exponential backoff.
 */
export class Reconciler {
  private readonly pods = new PodIndex();
  private podsVersion = -1;
  private builtVersion = -2;
  private readonly view: AutoscalerView;
  readonly fleets: FleetCache;
  private readonly candidates = new CandidateCache();
  private readonly hostable = new SelectionMemo<boolean>();
  private readonly claims = new ClaimBook();
  private readonly pressure = new PressureTracker();
  private readonly announcer: Announcer;
  private readonly reporter: Reporter;
  private readonly writer: StatusWriter;
  private readonly now: () => number;
  private readonly drainer: Drainer;
  private readonly foreign: ForeignIntents | undefined;
  private readonly livePods: LivePods;
  private readonly energy: EnergyStep;

  constructor(private readonly deps: ReconcilerDeps) {
    const { stores } = deps;
    this.now = deps.now ?? Date.now;
    this.view = new AutoscalerView(stores.autoscalers);
    this.fleets = new FleetCache(new InventoryCache(stores.inventories));
    this.announcer = new Announcer(deps.recorder);
    this.reporter = new Reporter(deps.recorder, deps.metrics, this.announcer, stores.autoscalers, () => new Set(this.pods.unschedulable().map((p) => p.metadata?.uid ?? '')));
    this.writer = new StatusWriter(deps.api ?? kubeAutoscalerApi(makeApiClient(deps.kc, k8s.CustomObjectsApi)), this.view, stores.nodes);
    this.livePods = deps.livePods ?? livePodsFrom(makeApiClient(deps.kc, k8s.CoreV1Api));
    this.energy = new EnergyStep(deps.metrics, deps.powerReader);
    const { operationTimeoutMs } = deps.options;
    if (operationTimeoutMs !== undefined) this.foreign = new ForeignIntents(deps.monotonicNow ?? (() => performance.now()), operationTimeoutMs + deps.options.settleGraceMs);
    this.drainer = deps.drainer ?? new Drainer({ kc: deps.kc, logger: deps.logger, metrics: deps.metrics, onChange: () => undefined, now: this.now });
  }

  /** The pod cache changed: the pod index is rebuilt lazily at the next reconcile. */
  podsChanged(): void {
    this.podsVersion++;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const { metrics } = this.deps;
    const end = metrics.reconcileDuration.startTimer();
    try {
      const result = await this.reconcileOnce(name);
      metrics.reconciles.inc({ result: 'ok' });
      end({ result: 'ok' });
      return result;
    } catch (err) {
      const result = err instanceof ConflictError ? 'conflict' : 'error';
      metrics.reconciles.inc({ result });
      end({ result });
      if (err instanceof ConflictError) return { requeueAfterMs: 0 };
      throw err;
    }
  }

  private async reconcileOnce(name: string): Promise<ReconcileResult> {
    // Fetch.
    const bma = this.view.latest(name);
    if (!bma) {
      this.forgetAutoscaler(name);
      return {};
    }
    const { stores, options, actuator, pool } = this.deps;
    const now = this.now();
    const log = this.deps.logger.child({ autoscaler: name });
    const deleting = bma.metadata.deletionTimestamp !== undefined;
    const hasFinalizer = (bma.metadata.finalizers ?? []).includes(FINALIZER);
    if (!deleting && !hasFinalizer) {
      await this.writer.addFinalizer(bma);
      return { requeueAfterMs: 0 };
    }
    if (deleting && !hasFinalizer) return {};
    if (this.podsVersion !== this.builtVersion) {
      this.pods.rebuild(stores.pods.list());
      this.builtVersion = this.podsVersion;
    }
    const spec = bma.spec;
    const generation = bma.metadata.generation ?? 0;
    const prev = unpackLearned(bma.status ?? {});
    const nowDate = new Date(now);
    const involved = involvedObject(bma);
    const fleet = this.fleets.get(name, spec);
    const { valid, conditions } = fleetConditions(prev.conditions ?? [], fleet, generation, nowDate);
    if (valid.status === 'False') this.announcer.announce(name, involved, 'inventory', 'Warning', valid.reason, valid.message);
    if (fleet.usable === 0) {
      // Machines with an operation in flight keep being tracked from status; nothing new starts.
      await this.writer.write(bma, { ...prev, conditions, observedGeneration: generation }, now);
      return { requeueAfterMs: options.resyncMs };
    }
    const selected = selectMachines(spec, fleet.machines);
    const emptyCandidate = this.candidates.forInventory(fleet.version);
    const selection = `${fleet.version}\u0000${JSON.stringify(spec.machineSelector)}`;
    const podsOn = (n: string): k8s.V1Pod[] => this.pods.podsOn(n);

    // Lifecycle of every selected machine; power states read where the BMC allows.
    const life = lifecycleStep({
      spec,
      selected,
      previous: prev.machines ?? [],
      held: fleet.held,
      nodes: stores.nodes,
      power: (m) => actuator.power(m),
      outcome: (m) => actuator.outcome(m),
      ...(this.foreign ? { mayLandUntil: this.foreign.mayLandUntil.bind(this.foreign) } : {}),
      settings: { settleGraceMs: options.settleGraceMs, quarantineBaseMs: options.quarantineBaseMs, quarantineMaxMs: options.quarantineMaxMs },
      now,
    });
    if (this.foreign && this.foreign.size > 1000) {
      this.foreign.retain(new Set(stores.autoscalers.list().flatMap((a) => (a.status?.machines ?? []).flatMap((m) => (m.operation ? [m.operation.id] : [])))));
    }
    refreshEnergy(life.machines, selected, spec, now);
    const probeWaits = life.probes.filter((m) => !actuator.probe(name, m)).map((m) => actuator.nextProbeAt(m.name));
    for (const n of life.forgotten) {
      void pool.forget(n);
      this.deps.powerReader?.forget(n);
    }

    // Demand: pending pods (and a traffic surge's extra replica), and the machines coming for them.
    const pending = this.claims.pendingFor(name, this.pods.unschedulable(), now);
    const traffic = this.deps.traffic?.observe(name, spec, selected, now);
    const demand = demandStep({
      demand: [...pending, ...(traffic?.demand ?? [])],
      selected,
      machines: life.machines,
      nodes: stores.nodes,
      pods: this.pods,
      emptyCandidate,
      hostable: this.hostable.scope(selection),
      readyAbsorbMs: options.readyAbsorbMs,
      now,
    });

    // Pressure over the Ready machines.
    const readyMachines = selected.filter((m) => life.machines.get(m.name)?.phase === 'Ready');
    const pressure = this.pressure.observe(name, spec, readyMachines, (n) => stores.nodes.get(n), (n) => this.pods.requestedOn(n), now);
    if (traffic) pressure.readings.push(traffic.reading);

    // Budget and the scale-up decision.
    const unread = selected.filter((m) => life.machines.get(m.name)?.phase === 'Unknown' && actuator.power(m.name) === undefined).length;
    const budget = budgetStep({ autoscaler: name, spec, selected, machines: life.machines, caps: options.caps, autoscalers: stores.autoscalers, lastScaleEvent: prev.lastScaleEvent, unread, now });
    const resting = restingOf(life.machines, selected, spec, now);
    const up = scaleUpStep({ spec, selected, machines: life.machines, demand, pendingCount: pending.length, budget, pressure, busy: (m) => actuator.busy(m), podsOn, unread, resting, now });
    const warm = preWarmStep({ spec, selected, machines: life.machines, decision: up.decision, budget, pending: demand.pending, podsOn, busy: (m) => actuator.busy(m), resting, profile: prev.demandProfile, now });
    up.decision.powerOn.push(...warm.choices);

    // Scale-down: the drains in flight, then the plan over the Ready machines.
    const drains = drainStep({ spec, selected, machines: life.machines, nodes: stores.nodes, podsOn, progress: (m) => this.drainer.progress(m), pendingCompiled: demand.relevant, deleting, now });
    const down = scaleDownStep({
      spec,
      previous: prev,
      selected,
      machines: drains.machines,
      nodes: stores.nodes,
      pdbs: stores.pdbs?.list() ?? [],
      podsOn,
      ...(drains.failure ? { failure: drains.failure } : {}),
      untaint: drains.untaint,
      pendingCount: demand.relevant.length,
      pressured: pressure.readings.filter((r) => r.pressured).map((r) => `${r.category} pressure (${r.reason ?? 'rising'})`),
      rising: pressure.readings.filter((r) => r.ratePerMinute >= RISING_PER_MINUTE).map((r) => `${r.category} utilisation rising ${r.ratePerMinute.toFixed(3)}/min`),
      scaleUpInFlight: budget.inFlight + up.decision.powerOn.length,
      unread,
      onCount: budget.onCount,
      deleting,
      energy: scaleDownEnergy(drains.machines, spec, now),
      now,
    });
    for (const n of [...drains.untaint, ...down.untaint]) this.drainer.forget(n);

    // Intents, unless dry run; a deletion adds its own power-offs and adds no power-on.
    const early = [...life.intents, ...drains.intents];
    const deletion = deleting ? deletionIntents(spec, selected, down.machines, early) : { intents: [], blocked: [] };
    const intents = spec.dryRun ? [] : [...early, ...deletion.intents, ...(deleting ? [] : powerOnIntents(spec, up.decision, selected, pressure.readings))];
    // The last look before a power-off: pods bound since the machine was chosen keep it on.
    const checked = intents.some((i) => i.action === 'PowerOff')
      ? await checkPowerOffs(intents, down.machines, stores.nodes, this.livePods, now)
      : { intents, machines: down.machines, aborted: [], untaint: [] };
    for (const n of checked.untaint) this.drainer.forget(n);
    const applied = applyIntents(checked.machines, checked.intents, prev.lastScaleEvent, options.identity, now);
    afterIntents(applied.machines, checked.intents, selected, spec, now);
    const slow = slowBoots(applied.machines, selected, spec, now);
    const offAborted = checked.aborted[0];
    const powered = this.energy.run({ autoscaler: name, selected, previous: prev, machines: applied.machines, now });

    // Status, then (only once it is written) actuation.
    const status = buildStatus({
      generation,
      conditions,
      selected,
      machines: powered.machines,
      deletionBlocked: deleting ? [...deletion.blocked, ...down.deletionBlocked] : [],
      deleting,
      dryRun: spec.dryRun,
      decision: up.decision,
      degraded: selected.flatMap((m) => {
        const health = pool.health(m.name);
        return health?.degraded ? [{ machine: m.name, health }] : [];
      }),
      unschedulablePods: pending.length,
      readings: pressure.readings,
      lastScaleEvent: applied.lastScaleEvent,
      lastScaleDownFailure: offAborted
        ? { time: nowDate.toISOString(), machine: offAborted.machine, reason: `power-off aborted: pods run on it now (${offAborted.pods.slice(0, 5).join(', ')})`.slice(0, 2048) }
        : (drains.failure ?? prev.lastScaleDownFailure),
      now,
      energy: powered.energy,
    });
    if (warm.profile) status.demandProfile = warm.profile;
    const trimmed = await this.writer.write(bma, status, now);
    if (trimmed.length > 0) this.announcer.announce(name, involved, 'status-trimmed', 'Warning', 'StatusTrimmed', `the status was over its safe size: left out ${trimmed.join('; ')}`);
    else this.announcer.clear(name, 'status-trimmed');
    powered.record(applied.started);
    await actuate(
      { actuator, drainer: this.drainer, metrics: this.deps.metrics, nodes: stores.nodes },
      { autoscaler: name, drains, scaleDown: down, untaint: checked.untaint, started: applied.started, acknowledged: life.acknowledged, dryRun: spec.dryRun, log },
    );
    this.reporter.placed(this.claims.claim(name, up.decision, spec.scaleUp.joinTimeoutSeconds * 1000, now));

    this.reporter.scaleUp({
      autoscaler: name,
      involved,
      decision: up.decision,
      started: applied.started,
      lifecycle: life.events,
      pending,
      selected,
      machines: applied.machines,
      dryRun: spec.dryRun,
      now,
      log,
      emptyCandidate,
      selection,
      compile: (p) => this.pods.compile(p),
    });
    this.reporter.scaleDown(name, involved, drains, down, applied.machines, spec.dryRun);
    this.reporter.powerOffsAborted(name, involved, checked.aborted);
    for (const w of slow.warnings) this.announcer.announce(name, involved, `slow-boot/${w.machine}`, 'Warning', 'SlowBoot', w.message);
    this.reporter.gauges(name, status.machines ?? [], pending.length, pressure.readings, (m) => pool.health(m)?.degraded === true, selected);

    return { requeueAfterMs: requeueAfter([...life.wakeAts, ...probeWaits, ...budget.wakeAts, ...up.wakeAts, ...drains.wakeAts, ...down.wakeAts, ...warm.wakeAts, ...slow.wakeAts], now, options.resyncMs) };
  }

  private forgetAutoscaler(name: string): void {
    this.pressure.forget(name);
    this.view.forget(name);
    this.announcer.forgetAutoscaler(name);
    this.claims.forget(name);
    this.energy.forget(name);
    this.fleets.forget(name);
  }
}
