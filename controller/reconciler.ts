import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseInventoryConfigMap, type InventoryResult, type ParsedMachine } from '../api/inventory.js';
import { formatMilli, parseQuantity } from '../api/quantity.js';
import {
  API_VERSION,
  DRAINING_TAINT,
  FINALIZER,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type BareMetalAutoscaler,
  type BareMetalAutoscalerStatus,
  type Condition,
  type MachineStatus,
} from '../api/v1alpha1/baremetalautoscaler.js';
import type { BmcPool } from '../power/pool.js';
import { candidateFromMachine, candidateFromNode, check, compileCandidate, fits, summarizeInfeasible, untoleratedTaints, type CompiledCandidate, type CompiledPod } from '../scheduling/index.js';
import type { Actuator } from './actuator.js';
import { setCondition } from './conditions.js';
import { annotationBlocker, isMovable, mustLeave, nodeBlocker, podRef as podName } from './blockers.js';
import { decideScaleUp, type AbsorbingMachine, type PendingPod, type ScaleUpCandidate, type ScaleUpDecision } from './decide.js';
import type { EventRecorder, InvolvedObject } from '../kube/events.js';
import { advance, countPowerCycle, newOperation, type LifecycleAction, type LifecycleSettings } from './lifecycle.js';
import { Drainer } from './drain.js';
import type { ControllerMetrics } from './metrics.js';
import { isDaemonSetPod, isMirrorPod, isNodeReady, PodIndex, toVector, unschedulableSince } from './observe.js';
import { PressureTracker } from './pressure-tracker.js';
import { hasDrainingTaint, planScaleDown, type PlacementNode, type ReadyMachine, type ScaleDownPlan } from './scale-down.js';
import { selectorMatches } from '../api/selector.js';
import type { TrafficDemandSource } from './traffic.js';
import type { ResourceVector } from './scoring.js';
import { errorMessage } from '../kube/errors.js';

export interface Store<T> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface Stores {
  autoscalers: Store<BareMetalAutoscaler>;
  /** Inventory ConfigMaps (labelled), keyed namespace/name. */
  inventories: Store<k8s.V1ConfigMap>;
  nodes: Store<k8s.V1Node>;
  pods: Store<k8s.V1Pod>;
  /** PodDisruptionBudgets (scale-down blockers); without them no budget is known to block. */
  pdbs?: Store<k8s.V1PodDisruptionBudget>;
}

export interface ClusterCaps {
  machines?: number;
  cpu?: bigint;
  memory?: bigint;
}

export interface ReconcilerOptions {
  identity: string;
  settleGraceMs: number;
  quarantineBaseMs: number;
  quarantineMaxMs: number;
  /** A machine Ready for less than this still takes pending pods in the decision (the scheduler has yet to bind them). */
  readyAbsorbMs: number;
  resyncMs: number;
  caps: ClusterCaps;
}

export interface ReconcilerDeps {
  kc: k8s.KubeConfig;
  stores: Stores;
  pool: BmcPool;
  actuator: Actuator;
  recorder: EventRecorder;
  metrics: ControllerMetrics;
  logger: Logger;
  options: ReconcilerOptions;
  /** Taints, evictions and Node deletion for scale-down; built from kc when absent. */
  drainer?: Drainer;
  now?: () => number;
  /**
   * Writes an autoscaler (status, or metadata for finalizers) to the API server. Replaced only
   * by benchmarks that feed the reconciler recorded state; it must keep the optimistic lock
   * (throw a ConflictError on a stale resourceVersion).
   */
  api?: AutoscalerApi;
  /** Traffic pressure from the eBPF agents' TrafficReports (controller/traffic.ts). */
  traffic?: TrafficDemandSource;
}

export interface AutoscalerApi {
  replaceStatus(bma: BareMetalAutoscaler): Promise<BareMetalAutoscaler>;
  patchFinalizers(name: string, resourceVersion: string | undefined, finalizers: string[]): Promise<void>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** Which autoscaler a pending pod was counted by, so two autoscalers do not both power on for it. */
interface Claim {
  autoscaler: string;
  until: number;
}

export class ConflictError extends Error {}

/**
 * One reconcile of one BareMetalAutoscaler, top to bottom: fetch state → lifecycle of each
 * machine → pressure statistics → decide → safety → write intents to status → actuate →
 * events and metrics → when to look again.
 *
 * Requeue strategy: at once (rate-limited) after a status write conflict, since the cache
 * is behind; after a delay for anything waiting on time (a join deadline, a quarantine, a
 * cooldown, an intent to settle), at the earliest such moment; otherwise after resyncMs as
 * a safety net. Errors are returned to the queue, which retries with per-key exponential
 * backoff. Informer events and finished BMC operations enqueue the autoscaler directly.
 */
export class Reconciler {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly pods = new PodIndex();
  private podsVersion = -1;
  private readonly inventoryCache = new Map<string, { rv: string; result: InventoryResult }>();
  private readonly candidateCache = new Map<string, { key: string; compiled: CompiledCandidate }>();
  private readonly recent = new Map<string, BareMetalAutoscaler>();
  private readonly claims = new Map<string, Claim>();
  private readonly pressure = new PressureTracker();
  private readonly announced = new Map<string, string>();
  /** Pending pod uid → autoscaler → why none of its machines can host the pod. */
  private readonly infeasible = new Map<string, Map<string, string>>();
  private readonly now: () => number;
  private readonly api: AutoscalerApi;
  private readonly drainer: Drainer;

  constructor(private readonly deps: ReconcilerDeps) {
    this.custom = deps.kc.makeApiClient(k8s.CustomObjectsApi);
    this.now = deps.now ?? Date.now;
    this.api = deps.api ?? kubeAutoscalerApi(this.custom);
    this.drainer = deps.drainer ?? new Drainer({ kc: deps.kc, logger: deps.logger, metrics: deps.metrics, onChange: () => undefined, now: this.now });
  }

  /** The pod cache changed: the pod index is rebuilt lazily at the next reconcile. */
  podsChanged(): void {
    this.podsVersion++;
  }

  private builtVersion = -2;

  async reconcile(name: string): Promise<ReconcileResult> {
    const { metrics } = this.deps;
    const end = metrics.reconcileDuration.startTimer();
    try {
      const result = await this.reconcileOnce(name);
      metrics.reconciles.inc({ result: 'ok' });
      end({ result: 'ok' });
      return result;
    } catch (err) {
      if (err instanceof ConflictError) {
        metrics.reconciles.inc({ result: 'conflict' });
        end({ result: 'conflict' });
        return { requeueAfterMs: 0 };
      }
      metrics.reconciles.inc({ result: 'error' });
      end({ result: 'error' });
      throw err;
    }
  }

  private latest(name: string): BareMetalAutoscaler | undefined {
    const cached = this.deps.stores.autoscalers.get(name);
    const mine = this.recent.get(name);
    if (!cached) {
      this.recent.delete(name);
      return undefined;
    }
    if (mine && Number(mine.metadata.resourceVersion) > Number(cached.metadata.resourceVersion)) return mine;
    this.recent.delete(name);
    return cached;
  }

  private async reconcileOnce(name: string): Promise<ReconcileResult> {
    const bma = this.latest(name);
    if (!bma) {
      this.forgetAutoscaler(name);
      return {};
    }
    const now = this.now();
    const log = this.deps.logger.child({ autoscaler: name });
    const deleting = bma.metadata.deletionTimestamp !== undefined;

    if (!deleting && !(bma.metadata.finalizers ?? []).includes(FINALIZER)) {
      await this.patchFinalizers(bma, [...(bma.metadata.finalizers ?? []), FINALIZER]);
      return { requeueAfterMs: 0 };
    }
    if (deleting && !(bma.metadata.finalizers ?? []).includes(FINALIZER)) return {};

    if (this.podsVersion !== this.builtVersion) {
      this.pods.rebuild(this.deps.stores.pods.list());
      this.builtVersion = this.podsVersion;
    }

    const spec = bma.spec;
    const generation = bma.metadata.generation ?? 0;
    const prev = bma.status ?? {};
    let conditions: Condition[] = prev.conditions ?? [];
    const nowDate = new Date(now);
    const inv = this.inventory(spec.inventory.namespace, spec.inventory.name);
    if (!inv.ok) {
      const message = inv.missing
        ? `inventory ConfigMap ${spec.inventory.namespace}/${spec.inventory.name} not found (or not labelled autoscaling.bamel.io/inventory: "true")`
        : `inventory ${spec.inventory.namespace}/${spec.inventory.name} is invalid: ${inv.errors.slice(0, 10).join('; ')}${inv.errors.length > 10 ? `; and ${inv.errors.length - 10} more` : ''}`;
      conditions = setCondition(conditions, { type: 'InventoryValid', status: 'False', reason: inv.missing ? 'InventoryNotFound' : 'InventoryInvalid', message }, generation, nowDate);
      conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'InventoryUnusable', message }, generation, nowDate);
      await this.writeStatus(bma, { ...prev, conditions, observedGeneration: generation });
      this.announce(bma, 'inventory', 'Warning', inv.missing ? 'InventoryNotFound' : 'InventoryInvalid', message);
      // Machines with an operation in flight keep being tracked from status; nothing new starts.
      return { requeueAfterMs: this.deps.options.resyncMs };
    }
    conditions = setCondition(
      conditions,
      { type: 'InventoryValid', status: 'True', reason: 'Valid', message: `${inv.machines.length} machines in the inventory` },
      generation,
      nowDate,
    );

    const selected = inv.machines.filter((m) => selectorMatches(spec.machineSelector, m.labels));
    const byName = new Map(selected.map((m) => [m.name, m]));
    const prevByName = new Map((prev.machines ?? []).map((m) => [m.name, m]));
    const settings: LifecycleSettings = {
      joinTimeoutMs: spec.scaleUp.joinTimeoutSeconds * 1000,
      settleGraceMs: this.deps.options.settleGraceMs,
      quarantineBaseMs: this.deps.options.quarantineBaseMs,
      quarantineMaxMs: this.deps.options.quarantineMaxMs,
    };

    // 1. Lifecycle of every selected machine.
    const next = new Map<string, MachineStatus>();
    const wakeAts: number[] = [now + this.deps.options.resyncMs];
    const acknowledged: { machine: string; opId: string }[] = [];
    const intents: { machine: ParsedMachine; action: 'PowerOn' | 'PowerOff'; reason: string; message: string; retry?: boolean }[] = [];
    const lifecycleEvents: { machine: string; action: LifecycleAction }[] = [];
    for (const m of selected) {
      const node = this.deps.stores.nodes.get(m.name);
      const power = this.deps.actuator.power(m.name);
      const outcome = this.deps.actuator.outcome(m.name);
      const created = node?.metadata?.creationTimestamp ? new Date(node.metadata.creationTimestamp).getTime() : undefined;
      const facts = {
        node: { exists: node !== undefined, ready: isNodeReady(node), ...(created !== undefined && Number.isFinite(created) ? { createdAt: created } : {}) },
        ...(power ? { power } : {}),
        ...(outcome ? { outcome } : {}),
      };
      const joinTimeoutMs = (m.joinTimeoutSeconds ?? spec.scaleUp.joinTimeoutSeconds) * 1000;
      const prevStatus = prevByName.get(m.name);
      const res = advance(m.name, prevStatus, facts, { ...settings, joinTimeoutMs }, now);
      next.set(m.name, res.status);
      if (res.wakeAt !== undefined) wakeAts.push(res.wakeAt);
      if (facts.outcome?.done && prevStatus?.operation?.id === facts.outcome.id) acknowledged.push({ machine: m.name, opId: facts.outcome.id });
      for (const action of res.actions) {
        if (action.type === 'probe') {
          if (!this.deps.actuator.probe(name, m)) wakeAts.push(this.deps.actuator.nextProbeAt(m.name));
        } else if (action.type === 'powerOff') {
          intents.push({ machine: m, action: 'PowerOff', reason: 'JoinTimeout', message: `its Node did not become Ready within ${joinTimeoutMs / 1000}s; powering it off and quarantining it` });
        } else if (action.type === 'retryPowerOff') {
          intents.push({ machine: m, action: 'PowerOff', reason: res.status.reason ?? 'PowerOffRetry', message: 'the earlier power-off did not take effect; retrying', retry: true });
        } else {
          lifecycleEvents.push({ machine: m.name, action });
        }
      }
    }
    // Machines no longer selected (or gone from the inventory) stay in status while an
    // operation runs; the others are forgotten, their BMC sessions closed.
    for (const [n, s] of prevByName) {
      if (byName.has(n)) continue;
      if (s.operation) next.set(n, s);
      else void this.deps.pool.forget(n);
    }

    // 2. Pods and capacity.
    const pending = this.pendingFor(name, now);
    // >>> traffic pressure (controller/traffic.ts): a surging workload with no room left asks
    // for one more replica, decided like a pending pod; its network reading joins status.pressure.
    const traffic = this.deps.traffic?.observe(name, spec, selected, now);
    const demand = [...pending, ...(traffic?.demand ?? [])];
    // <<< traffic pressure
    const allPods = demand.map((p) => {
      const c = this.pods.compile(p);
      return { pod: p, compiled: c.pod, requests: c.requests, signature: c.signature };
    });

    const phaseOf = (n: string): string | undefined => next.get(n)?.phase;
    const emptyCandidate = (m: ParsedMachine): CompiledCandidate => {
      const key = `${inv.rv}/${m.name}`;
      const hit = this.candidateCache.get(m.name);
      if (hit && hit.key === key) return hit.compiled;
      const compiled = compileCandidate(candidateFromMachine(m));
      this.candidateCache.set(m.name, { key, compiled });
      return compiled;
    };
    const pendingPods: PendingPod[] = allPods.map(({ pod, requests, signature }) => ({
      key: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
      uid: pod.metadata?.uid ?? '',
      requests: toVector(requests),
      // Replicas of a workload share a signature: the decision asks about feasibility once for all.
      equivalenceClass: signature,
      ...(unschedulableSince(pod) !== undefined ? { unschedulableSince: unschedulableSince(pod) as number } : {}),
    }));
    const compiledByUid = new Map(allPods.map((p) => [p.pod.metadata?.uid ?? '', p.compiled]));
    const feasible = (p: PendingPod, machine: string): boolean => {
      const m = byName.get(machine);
      const cp = compiledByUid.get(p.uid);
      return m !== undefined && cp !== undefined && fits(cp, emptyCandidate(m));
    };

    const absorbing: AbsorbingMachine[] = [];
    for (const m of selected) {
      const s = next.get(m.name);
      if (!s) continue;
      const justReady = s.phase === 'Ready' && now - Date.parse(s.since) < this.deps.options.readyAbsorbMs;
      if (s.phase === 'PoweringOn' || s.phase === 'Joining' || justReady) {
        const node = this.deps.stores.nodes.get(m.name);
        const free = node
          ? compileCandidate(candidateFromNode(node, this.pods.podsOn(m.name))).free
          : emptyCandidate(m).free;
        absorbing.push({ name: m.name, free: toVector(free) });
      }
    }

    // 3. Pressure over the Ready machines.
    const readyMachines = selected.filter((m) => phaseOf(m.name) === 'Ready');
    const pressure = this.pressure.observe(name, spec, readyMachines, (n) => this.deps.stores.nodes.get(n), (n) => this.pods.requestedOn(n), now);
    if (traffic) pressure.readings.push(traffic.reading); // traffic pressure: the network category

    // 4. Safety: the budget for powering on.
    const onPhases = new Set(['PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff']);
    const onCount = [...next.values()].filter((s) => onPhases.has(s.phase)).length;
    const inFlight = [...next.values()].filter((s) => s.phase === 'PoweringOn' || s.phase === 'Joining').length;
    const limits: { n: number; why: string }[] = [
      { n: spec.maxMachines - onCount, why: `maxMachines (${spec.maxMachines}) reached` },
      { n: spec.scaleUp.maxConcurrentPowerOns - inFlight, why: `maxConcurrentPowerOns (${spec.scaleUp.maxConcurrentPowerOns}) machines already powering on or joining` },
    ];
    const caps = this.clusterUsage(name);
    if (this.deps.options.caps.machines !== undefined) {
      limits.push({ n: this.deps.options.caps.machines - caps.machines, why: `cluster-wide cap of ${this.deps.options.caps.machines} machines reached` });
    }
    const tightest = limits.reduce((a, b) => (b.n < a.n ? b : a));
    const budget = {
      machines: Math.max(0, tightest.n),
      ...(this.deps.options.caps.cpu !== undefined ? { cpu: this.deps.options.caps.cpu - caps.cpu } : {}),
      ...(this.deps.options.caps.memory !== undefined ? { memory: this.deps.options.caps.memory - caps.memory } : {}),
      reason: tightest.why,
    };
    const lastUp = prev.lastScaleEvent?.direction === 'Up' ? Date.parse(prev.lastScaleEvent.time) : undefined;
    const cooldownEnd = lastUp !== undefined ? lastUp + spec.scaleUp.cooldownSeconds * 1000 : undefined;
    // Machines whose power state was never read yet (a fresh start) could be the best choice:
    // decide once every machine has been looked at, a second or so later.
    const unread = selected.filter((m) => phaseOf(m.name) === 'Unknown' && this.deps.actuator.power(m.name) === undefined).length;
    if (unread > 0) wakeAts.push(now + 1000);
    const demandBlocked =
      unread > 0
        ? `waiting for the power state of ${unread} machine(s)`
        : cooldownEnd !== undefined && now < cooldownEnd
          ? `scale-up cooldown until ${new Date(cooldownEnd).toISOString()}`
          : undefined;

    const offCandidates: ScaleUpCandidate[] = selected
      .filter((m) => phaseOf(m.name) === 'Off' && !this.deps.actuator.busy(m.name))
      .map((m) => ({
        name: m.name,
        capacity: m.capacity,
        ...(m.power?.maxWatts !== undefined ? { powerCost: m.power.maxWatts } : m.power?.idleWatts !== undefined ? { powerCost: m.power.idleWatts } : {}),
        powerCyclesToday: powerCyclesToday(next.get(m.name), now),
        ...(m.bootSeconds !== undefined ? { bootSeconds: m.bootSeconds } : {}),
      }));

    let pressureDeficit: ResourceVector | undefined;
    let pressureCandidates = offCandidates;
    if (pending.length === 0 && inFlight === 0 && pressure.deficit) {
      pressureDeficit = pressure.deficit;
      // Only machines the pressured workloads could use: their taints tolerated by a pod running there now.
      const running = readyMachines.flatMap((m) => this.pods.podsOn(m.name)).filter((p) => !isDaemonSetPod(p) && !isMirrorPod(p));
      pressureCandidates = offCandidates.filter((c) => {
        const m = byName.get(c.name) as ParsedMachine;
        const blocking = m.taints.filter((t) => t.effect !== 'PreferNoSchedule');
        if (blocking.length === 0) return true;
        return running.some((p) => untoleratedTaints(p.spec?.tolerations ?? [], blocking).length === 0);
      });
    }

    const decision: ScaleUpDecision = decideScaleUp({
      pending: pendingPods,
      absorbing,
      candidates: pendingPods.length > 0 ? offCandidates : pressureCandidates,
      feasible,
      weights: spec.scoring,
      pressured: new Set(pressure.readings.filter((r) => r.pressured).map((r) => r.category)),
      budget,
      ...(pressureDeficit ? { pressureDeficit } : {}),
      belowMinimum: unread > 0 ? 0 : Math.max(0, spec.minMachines - onCount),
      ...(demandBlocked ? { demandBlocked } : {}),
    });
    if (demandBlocked && cooldownEnd !== undefined && (decision.waiting.length > 0 || pressureDeficit)) wakeAts.push(cooldownEnd);

    // 4b. Scale-down: the drains in flight, then the candidates (see scale-down.ts).
    const relevantPending = allPods.map((p) => p.compiled).filter((c) => selected.some((m) => fits(c, emptyCandidate(m))));
    const sd = this.scaleDownStep({
      bma,
      selected,
      next,
      // Only pending pods one of this autoscaler's machines could host hold its scale-down.
      pendingCompiled: relevantPending,
      pendingCount: relevantPending.length,
      pressured: pressure.readings.filter((r) => r.pressured).map((r) => `${r.category} pressure (${r.reason ?? 'rising'})`),
      rising: pressure.readings.filter((r) => r.ratePerMinute >= RISING_PER_MINUTE).map((r) => `${r.category} utilisation rising ${r.ratePerMinute.toFixed(3)}/min`),
      scaleUpInFlight: inFlight + decision.powerOn.length,
      unread,
      onCount,
      deleting,
      now,
      wakeAts,
      intents,
    });

    // 5. Intents, unless dry run or deleting.
    const involved = this.involved(bma);
    let lastScaleEvent = prev.lastScaleEvent;
    const lastScaleDownFailure = sd.failure ?? prev.lastScaleDownFailure;
    const started: { machine: ParsedMachine; status: MachineStatus }[] = [];
    if (deleting) {
      const blocked = [...this.finalizeIntents(bma, selected, next, intents), ...sd.deletionBlocked];
      if (blocked.length > 0) {
        conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'DeletionBlocked', message: blocked.join('; ').slice(0, 32000) }, generation, nowDate);
      }
    }
    if (!spec.dryRun) {
      if (!deleting) {
        for (const choice of decision.powerOn) {
          const m = byName.get(choice.machine) as ParsedMachine;
          const message =
            choice.reason === 'PendingPods'
              ? `powering on for ${choice.pods.length} pending pod(s): ${choice.detail}`
              : choice.reason === 'Pressure'
                ? `powering on for ${pressure.readings.filter((r) => r.pressured).map((r) => r.reason).join('; ')}: ${choice.detail}`
                : `powering on to reach minMachines ${spec.minMachines}`;
          intents.push({ machine: m, action: 'PowerOn', reason: choice.reason, message });
        }
      }
      for (const intent of intents) {
        const found = next.get(intent.machine.name) ?? { name: intent.machine.name, phase: 'Unknown' as const, since: nowDate.toISOString() };
        const { drain: _drain, disruption: _disruption, unneededSince: _unneeded, blockers: _blockers, ...base } = found;
        const op = newOperation(intent.action, now, this.deps.options.identity);
        let status: MachineStatus = {
          ...base,
          phase: intent.action === 'PowerOn' ? 'PoweringOn' : 'PoweringOff',
          since: nowDate.toISOString(),
          operation: op,
          reason: intent.reason,
          message: intent.message,
        };
        if (intent.action === 'PowerOn') status = countPowerCycle(status, now);
        next.set(intent.machine.name, status);
        started.push({ machine: intent.machine, status });
        if (intent.action === 'PowerOn' || !intent.retry) {
          lastScaleEvent = { time: nowDate.toISOString(), direction: intent.action === 'PowerOn' ? 'Up' : 'Down', machine: intent.machine.name, reason: intent.message };
        }
      }
    }

    // 6. Status.
    const machines = [...next.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const count = (phases: string[]): number => machines.filter((m) => phases.includes(m.phase)).length;
    const capacityOf = (phases: string[]): Record<string, string> => {
      const total: ResourceVector = {};
      for (const s of machines) {
        const m = byName.get(s.name);
        if (!m || !phases.includes(s.phase)) continue;
        for (const [r, v] of Object.entries(m.capacity)) total[r] = (total[r] ?? 0n) + v;
      }
      return Object.fromEntries(Object.entries(total).map(([r, v]) => [r, formatMilli(v, r === 'cpu' ? 'cpu' : r === 'memory' || r === 'ephemeral-storage' ? 'bytes' : 'count')]));
    };
    const degraded = selected.map((m) => ({ m, h: this.deps.pool.health(m.name) })).filter((x) => x.h?.degraded);
    conditions = setCondition(
      conditions,
      degraded.length > 0
        ? {
            type: 'BMCDegraded',
            status: 'True',
            reason: 'CircuitOpen',
            message: degraded.map((d) => `${d.m.name}: ${d.h?.consecutiveFailures} failures (last ${d.h?.lastFailure ?? '?'}), next try ${d.h?.retryAt?.toISOString() ?? '?'}`).join('; '),
          }
        : { type: 'BMCDegraded', status: 'False', reason: 'Healthy', message: 'every BMC answered its last request' },
      generation,
      nowDate,
    );
    const limited = decision.limitedBy;
    conditions = setCondition(
      conditions,
      limited
        ? { type: 'ScalingLimited', status: 'True', reason: limitReason(limited), message: `${decision.waiting.length} pending pod(s) wait: ${limited}` }
        : { type: 'ScalingLimited', status: 'False', reason: 'WithinLimits', message: 'no limit holds back a scale-up' },
      generation,
      nowDate,
    );
    if (!(deleting && conditions.some((c) => c.type === 'Ready' && c.reason === 'DeletionBlocked' && c.status === 'False'))) {
      conditions = setCondition(
        conditions,
        spec.dryRun
          ? { type: 'Ready', status: 'True', reason: 'DryRun', message: dryRunMessage(decision) }
          : {
              type: 'Ready',
              status: 'True',
              reason: 'Reconciled',
              message: `${count(['Ready'])} Ready, ${count(['PoweringOn', 'Joining'])} pending, ${count(['Draining', 'PoweringOff'])} scaling down, ${count(['Off'])} off`,
            },
        generation,
        nowDate,
      );
    }
    const status: BareMetalAutoscalerStatus = {
      observedGeneration: generation,
      readyMachines: count(['Ready']),
      pendingMachines: count(['PoweringOn', 'Joining']),
      offMachines: count(['Off']),
      totalMachines: selected.length,
      onlineCapacity: capacityOf(['Ready']),
      pendingCapacity: capacityOf(['PoweringOn', 'Joining']),
      unschedulablePods: pending.length,
      pressure: pressure.readings.map((r) => ({ category: r.category, level: r.level, ratePerMinute: r.ratePerMinute, pressured: r.pressured, ...(r.reason ? { reason: r.reason } : {}) })),
      machines,
      conditions,
      ...(lastScaleEvent ? { lastScaleEvent, lastScaleTime: lastScaleEvent.time } : {}),
      ...(lastScaleDownFailure ? { lastScaleDownFailure } : {}),
    };
    await this.writeStatus(bma, status);

    // 7. Only now that the intents are recorded: actuate.
    await this.actOnScaleDown(name, sd, spec.dryRun, log);
    for (const a of acknowledged) this.deps.actuator.acknowledge(a.machine, a.opId);
    for (const s of started) {
      this.deps.actuator.start(name, s.machine, s.status.operation!);
    }
    this.claimPods(name, decision, spec.scaleUp.joinTimeoutSeconds * 1000, now);

    // 8. Events and metrics.
    this.report(bma, involved, decision, started, lifecycleEvents, pending, selected, next, spec.dryRun, now, log, emptyCandidate);
    this.reportScaleDown(bma, involved, sd, next, spec.dryRun);
    this.updateGauges(name, machines, pending.length, pressure.readings, selected);

    const wake = Math.min(...wakeAts);
    return { requeueAfterMs: Math.max(0, wake - now) };
  }

  private inventory(namespace: string, name: string): { ok: true; machines: ParsedMachine[]; rv: string } | { ok: false; missing: boolean; errors: string[] } {
    const cm = this.deps.stores.inventories.get(`${namespace}/${name}`);
    if (!cm) return { ok: false, missing: true, errors: [] };
    const rv = cm.metadata?.resourceVersion ?? '';
    const key = `${namespace}/${name}`;
    let hit = this.inventoryCache.get(key);
    if (!hit || hit.rv !== rv) {
      hit = { rv, result: parseInventoryConfigMap(cm) };
      this.inventoryCache.set(key, hit);
    }
    const r = hit.result;
    if (!r.ok) return { ok: false, missing: false, errors: r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)) };
    return { ok: true, machines: r.inventory.machines, rv };
  }

  /** Pending pods this autoscaler considers: not claimed by another autoscaler's decision. */
  private pendingFor(autoscaler: string, now: number): k8s.V1Pod[] {
    return this.pods.unschedulable().filter((p) => {
      const c = this.claims.get(p.metadata?.uid ?? '');
      return !c || c.autoscaler === autoscaler || c.until < now;
    });
  }

  private claimPods(autoscaler: string, decision: ScaleUpDecision, ttlMs: number, now: number): void {
    for (const choice of decision.powerOn) {
      for (const p of choice.pods) {
        this.claims.set(p.uid, { autoscaler, until: now + ttlMs });
        this.infeasible.delete(p.uid);
      }
    }
    for (const p of decision.absorbed) {
      const c = this.claims.get(p.uid);
      if (!c || c.until < now) this.claims.set(p.uid, { autoscaler, until: now + ttlMs });
    }
    if (this.claims.size > 50_000) for (const [k, c] of this.claims) if (c.until < now) this.claims.delete(k);
  }

  /**
   * Scale-down, one reconcile's worth: every drain in flight is checked (done → power off;
   * timed out, a new blocker, or pending pods that need its room → aborted, the machine stays
   * on), then the Ready machines are planned (scale-down.ts): blockers and standing into
   * status, and the machines chosen twice in a row start draining. I/O happens in
   * actOnScaleDown, after the status that records it is written.
   */
  private scaleDownStep(input: {
    bma: BareMetalAutoscaler;
    selected: ParsedMachine[];
    next: Map<string, MachineStatus>;
    pendingCompiled: CompiledPod[];
    pendingCount: number;
    pressured: string[];
    rising: string[];
    scaleUpInFlight: number;
    unread: number;
    onCount: number;
    deleting: boolean;
    now: number;
    wakeAts: number[];
    intents: { machine: ParsedMachine; action: 'PowerOn' | 'PowerOff'; reason: string; message: string; retry?: boolean }[];
  }): ScaleDownStep {
    const { bma, selected, next, now, wakeAts, intents, deleting } = input;
    const spec = bma.spec;
    const sd = spec.scaleDown;
    const nodes = this.deps.stores.nodes;
    const prev = bma.status ?? {};
    const forcing = deleting && spec.deletionPolicy === 'PowerOff';
    const out: ScaleDownStep = { starts: [], aborts: [], evict: [], completed: [], untaint: [], deleteNodes: [], blocked: [], deletionBlocked: [] };
    const iso = (ms: number): string => new Date(ms).toISOString();

    // 1. Drains in flight.
    for (const m of selected) {
      const s = next.get(m.name);
      if (s?.phase !== 'Draining') continue;
      const node = nodes.get(m.name);
      const pods = this.pods.podsOn(m.name);
      const leaving = pods.filter(mustLeave);
      const toEvict = pods.filter(isMovable);
      const startedAt = Date.parse(s.drain?.startedAt ?? s.since);
      const deadline = s.drain?.deadline ? Date.parse(s.drain.deadline) : startedAt + sd.drainTimeoutSeconds * 1000;
      const progress = this.drainer.progress(m.name);
      const evicted = Math.max(progress?.evicted ?? 0, s.drain?.evicted ?? 0);
      const lastRefusal = progress?.lastRefusal ?? s.drain?.lastRefusal;
      let abort: { reason: string; message: string } | undefined;
      if (!node) abort = { reason: 'NodeGone', message: 'its Node disappeared during the drain' };
      else if (deleting && !forcing) abort = { reason: 'AutoscalerDeleted', message: 'the autoscaler is being deleted with deletionPolicy Retain: the machine is left on' };
      else if (!forcing && !sd.enabled) abort = { reason: 'ScaleDownDisabled', message: 'scale-down was disabled during the drain' };
      else if (!forcing && spec.dryRun) abort = { reason: 'DryRun', message: 'dryRun was set during the drain' };
      else {
        const blocker = nodeBlocker(node) ?? toEvict.map(annotationBlocker).find((b) => b !== undefined);
        if (blocker) abort = { reason: 'NewBlocker', message: `a new blocker appeared: ${blocker.message}` };
      }
      if (!abort && !forcing && node && input.pendingCompiled.length > 0) {
        // Pending pods that would fit here once the taint is gone: the drain pushes out pods
        // the cluster has no room for. Give the room back.
        const untainted: k8s.V1Node = { ...node, spec: { ...node.spec, taints: (node.spec?.taints ?? []).filter((t) => t.key !== DRAINING_TAINT) } };
        const room = compileCandidate(candidateFromNode(untainted, pods));
        const need = input.pendingCompiled.filter((p) => fits(p, room)).length;
        if (need > 0) abort = { reason: 'PodsPending', message: `${need} unschedulable pod(s) need the room of this machine` };
      }
      if (!abort && now >= deadline && leaving.length > 0) {
        abort = {
          reason: 'DrainTimedOut',
          message: `the drain did not finish within scaleDown.drainTimeoutSeconds (${sd.drainTimeoutSeconds}s): ${leaving.length} pod(s) left (${leaving.slice(0, 3).map(podName).join(', ')})${lastRefusal ? `; last refusal: ${lastRefusal}` : ''}`,
        };
      }
      if (abort) {
        const { drain: _d, disruption: _x, unneededSince: _u, operation: _o, ...rest } = s;
        next.set(m.name, { ...rest, phase: 'Ready', since: iso(now), reason: abort.reason, message: `drain aborted, the machine stays on: ${abort.message}`.slice(0, 2048) });
        out.aborts.push({ machine: m.name, reason: abort.reason, message: abort.message });
        out.failure = { time: iso(now), machine: m.name, reason: `drain aborted: ${abort.message}`.slice(0, 2048) };
        out.untaint.push(m.name);
        continue;
      }
      if (leaving.length === 0) {
        out.completed.push({ machine: m.name, ms: now - startedAt, evicted });
        intents.push({
          machine: m,
          action: 'PowerOff',
          reason: forcing ? 'AutoscalerDeleted' : 'ScaleDown',
          message: `drained (${evicted} pod(s) evicted in ${Math.round((now - startedAt) / 1000)}s); powering off`,
        });
        continue;
      }
      next.set(m.name, {
        ...s,
        drain: {
          startedAt: iso(startedAt),
          deadline: iso(deadline),
          podsToEvict: leaving.length,
          evicted,
          ...(lastRefusal ? { lastRefusal: lastRefusal.slice(0, 1024) } : {}),
        },
      });
      out.evict.push({ machine: m.name, pods: toEvict, evictedBefore: s.drain?.evicted ?? 0 });
      wakeAts.push(Math.min(deadline, now + 5000));
    }

    // 2. The Ready machines: standing, blockers, the next drains.
    const ready: ReadyMachine[] = [];
    for (const m of selected) {
      const s = next.get(m.name);
      const node = nodes.get(m.name);
      if (!s || s.phase !== 'Ready' || s.operation || !node || !isNodeReady(node)) continue;
      ready.push({ machine: m, status: s, node, pods: this.pods.podsOn(m.name) });
    }
    const placement: PlacementNode[] = [];
    for (const n of nodes.list()) {
      const name = n.metadata?.name ?? '';
      const phase = next.get(name)?.phase;
      if (phase !== undefined && phase !== 'Ready') continue;
      placement.push({ node: n, pods: this.pods.podsOn(name) });
    }
    const inFlight = [...next.values()].filter((s) => s.phase === 'Draining' || s.phase === 'PoweringOff').length;
    let paused: string | undefined;
    const failure = out.failure ?? prev.lastScaleDownFailure;
    const failedAt = failure ? Date.parse(failure.time) : undefined;
    const cooldownMs = sd.cooldownSeconds * 1000;
    if (forcing && failedAt !== undefined && now < failedAt + cooldownMs) {
      // Deletion retries a failed drain too, but not at once: the same cooldown as scale-down.
      paused = `cooldown after the failed drain of ${failure?.machine ?? '?'}, until ${iso(failedAt + cooldownMs)}`;
      wakeAts.push(failedAt + cooldownMs);
    }
    if (!forcing) {
      const lastEvent = prev.lastScaleEvent ? Date.parse(prev.lastScaleEvent.time) : undefined;
      if (deleting) paused = 'the autoscaler is being deleted with deletionPolicy Retain';
      else if (input.unread > 0) paused = `waiting for the power state of ${input.unread} machine(s)`;
      else if (input.pendingCount > 0) paused = `${input.pendingCount} unschedulable pod(s) wait for room`;
      else if (input.pressured.length > 0) paused = input.pressured.join('; ');
      else if (input.rising.length > 0) paused = input.rising.join('; ');
      else if (input.scaleUpInFlight > 0) paused = `a scale-up is in flight (${input.scaleUpInFlight} machine(s) powering on or joining)`;
      else if (failedAt !== undefined && now < failedAt + cooldownMs) {
        paused = `scale-down cooldown after the failed scale-down of ${failure?.machine ?? '?'}, until ${iso(failedAt + cooldownMs)}`;
        wakeAts.push(failedAt + cooldownMs);
      } else if (lastEvent !== undefined && now < lastEvent + cooldownMs) {
        paused = `scale-down cooldown after the scale-${prev.lastScaleEvent?.direction === 'Up' ? 'up' : 'down'} of ${prev.lastScaleEvent?.machine ?? '?'}, until ${iso(lastEvent + cooldownMs)}`;
        wakeAts.push(lastEvent + cooldownMs);
      }
    }
    const plan = planScaleDown({
      now,
      scaleDown: sd,
      minMachines: forcing ? 0 : spec.minMachines,
      ready,
      nodes: placement,
      pdbs: this.deps.stores.pdbs?.list() ?? [],
      onCount: input.onCount,
      inFlight,
      ...(paused ? { paused } : {}),
      ...(forcing ? { force: true, ignoreBudgets: true } : {}),
    });
    out.plan = plan;
    if (plan.wakeAt !== undefined) wakeAts.push(plan.wakeAt);
    for (const r of ready) {
      const p = plan.machines.get(r.machine.name);
      if (!p) continue;
      const s = next.get(r.machine.name) as MachineStatus;
      const { unneededSince: _u, disruption: _d, blockers: _b, ...rest } = s;
      const blockers = capBlockers(p.blockers.map((b) => b.message));
      const updated: MachineStatus = {
        ...rest,
        ...(p.unneededSince ? { unneededSince: p.unneededSince } : {}),
        // A dry run never drains, and does not keep pods off a machine either: the extender
        // filters `Next` machines, so a dry run shows its choice as a `WouldDrain` event only.
        ...(p.disruption ? { disruption: spec.dryRun ? 'Candidate' : p.disruption } : {}),
        ...(blockers.length > 0 ? { blockers } : {}),
      };
      const hard = p.blockers.filter((b) => b.kind !== 'Busy' && b.kind !== 'Paused');
      if (hard.length > 0) out.blocked.push({ machine: r.machine.name, messages: hard.map((b) => b.message) });
      if (forcing && p.blockers.length > 0) out.deletionBlocked.push(`${r.machine.name}: ${p.blockers.map((b) => b.message).join('; ')}`);
      if (p.disruption === 'Next' && !plan.drain.includes(r.machine.name)) wakeAts.push(now + 1000);
      if (plan.drain.includes(r.machine.name) && !spec.dryRun) {
        const toMove = r.pods.filter(isMovable);
        const { reason: _r, message: _m, ...base } = rest;
        next.set(r.machine.name, {
          ...base,
          phase: 'Draining',
          since: iso(now),
          reason: forcing ? 'AutoscalerDeleted' : 'ScaleDown',
          message: forcing
            ? `draining before power-off: the autoscaler is being deleted with deletionPolicy PowerOff`
            : `draining: unneeded since ${p.unneededSince ?? '?'} (utilisation ${Math.round(p.utilization * 100)}% ${p.utilizationOf}); ${toMove.length} pod(s) to move`,
          drain: { startedAt: iso(now), deadline: iso(now + sd.drainTimeoutSeconds * 1000), podsToEvict: toMove.length, evicted: 0 },
        });
        out.starts.push({ machine: r.machine.name, pods: toMove });
        if (forcing) out.deletionBlocked.push(`${r.machine.name}: draining`);
        wakeAts.push(now + 1000);
      } else {
        next.set(r.machine.name, updated);
        if (forcing && p.disruption) out.deletionBlocked.push(`${r.machine.name}: to be drained`);
      }
    }

    // 3. Leftovers: a draining taint on a Node whose machine is not draining (an aborted
    // drain whose untaint was lost, a failed power-off) comes off; the Node of a machine that
    // is off goes (it registers again on boot).
    for (const m of selected) {
      const s = next.get(m.name);
      const node = nodes.get(m.name);
      if (!s || !node) continue;
      if (['Ready', 'Joining', 'Unknown'].includes(s.phase) && hasDrainingTaint(node) && !out.untaint.includes(m.name)) out.untaint.push(m.name);
      if (s.phase === 'Off' && !spec.dryRun) {
        const created = node.metadata?.creationTimestamp ? new Date(node.metadata.creationTimestamp).getTime() : 0;
        if (created <= Date.parse(s.since)) out.deleteNodes.push({ name: m.name, ...(node.metadata?.uid ? { uid: node.metadata.uid } : {}) });
      }
    }
    for (const name of out.untaint) this.drainer.forget(name);
    return out;
  }

  /** The I/O the status just written records: taints, evictions, Node deletions. */
  private async actOnScaleDown(autoscaler: string, sd: ScaleDownStep, dryRun: boolean, log: Logger): Promise<void> {
    const { metrics } = this.deps;
    for (const name of sd.untaint) await this.drainer.untaint(name);
    for (const a of sd.aborts) metrics.drains.inc({ autoscaler, result: a.reason === 'DrainTimedOut' ? 'timed_out' : 'aborted' });
    for (const c of sd.completed) {
      metrics.drains.inc({ autoscaler, result: 'completed' });
      metrics.drainDuration.observe({ autoscaler }, c.ms / 1000);
      this.drainer.forget(c.machine);
    }
    if (dryRun) return;
    for (const st of sd.starts) {
      metrics.drains.inc({ autoscaler, result: 'started' });
      log.info({ machine: st.machine, pods: st.pods.length }, 'drain started');
      if (await this.drainer.taint(st.machine)) this.drainer.evict(autoscaler, st.machine, st.pods);
    }
    for (const e of sd.evict) {
      // After a leader change the taint may be missing: put it back before evicting again.
      const node = this.deps.stores.nodes.get(e.machine);
      if (node && !hasDrainingTaint(node)) await this.drainer.taint(e.machine);
      this.drainer.evict(autoscaler, e.machine, e.pods, e.evictedBefore);
    }
    for (const d of sd.deleteNodes) await this.drainer.deleteNode(d.name, d.uid);
  }

  private reportScaleDown(bma: BareMetalAutoscaler, involved: InvolvedObject, sd: ScaleDownStep, next: Map<string, MachineStatus>, dryRun: boolean): void {
    const { recorder, metrics } = this.deps;
    const name = bma.metadata.name;
    for (const st of sd.starts) {
      const s = next.get(st.machine);
      recorder.emit(involved, 'Normal', 'DrainStarted', `${st.machine}: ${s?.message ?? 'draining'}`);
      recorder.emit(nodeRef(st.machine), 'Normal', 'DrainStarted', `bamel (autoscaler ${name}) drains this Node before powering it off: ${st.pods.length} pod(s) to move`);
      metrics.decisions.inc({ autoscaler: name, direction: 'down', result: 'actuated' });
    }
    for (const a of sd.aborts) {
      recorder.emit(involved, 'Warning', a.reason === 'DrainTimedOut' ? 'DrainTimedOut' : 'DrainAborted', `${a.machine}: drain aborted, the machine stays on: ${a.message}`);
      recorder.emit(nodeRef(a.machine), 'Warning', 'DrainAborted', `drain aborted, the draining taint removed: ${a.message}`);
    }
    for (const b of sd.blocked) {
      this.announce(bma, `blocked/${b.machine}`, 'Normal', 'ScaleDownBlocked', `${b.machine} stays on: ${b.messages.join('; ')}`.slice(0, 1024));
    }
    const blockedNow = new Set(sd.blocked.map((b) => b.machine));
    for (const k of [...this.announced.keys()]) {
      if (k.startsWith(`${name}/blocked/`) && !blockedNow.has(k.slice(`${name}/blocked/`.length))) this.announced.delete(k);
    }
    if (dryRun && sd.plan) {
      for (const [machine, p] of sd.plan.machines) {
        if (p.disruption === 'Next') this.announce(bma, `dry-down-${machine}`, 'Normal', 'WouldDrain', `dry run: would drain and power off ${machine} (utilisation ${Math.round(p.utilization * 100)}% ${p.utilizationOf})`);
      }
    }
    let candidate = 0;
    let nextCount = 0;
    for (const p of sd.plan?.machines.values() ?? []) {
      if (p.disruption === 'Candidate') candidate++;
      if (p.disruption === 'Next') nextCount++;
    }
    metrics.scaleDownMachines.set({ autoscaler: name, state: 'candidate' }, candidate);
    metrics.scaleDownMachines.set({ autoscaler: name, state: 'next' }, nextCount);
    metrics.scaleDownMachines.set({ autoscaler: name, state: 'blocked' }, sd.blocked.length);
  }

  /** Machines on, and their cpu and memory, across every other autoscaler (cluster-wide caps). */
  private clusterUsage(except: string): { machines: number; cpu: bigint; memory: bigint } {
    let machines = 0;
    let cpu = 0n;
    let memory = 0n;
    for (const other of this.deps.stores.autoscalers.list()) {
      if (other.metadata.name === except) continue;
      const s = other.status;
      machines += (s?.readyMachines ?? 0) + (s?.pendingMachines ?? 0);
      for (const cap of [s?.onlineCapacity, s?.pendingCapacity]) {
        if (cap?.cpu !== undefined) cpu += parseMilli(String(cap.cpu));
        if (cap?.memory !== undefined) memory += parseMilli(String(cap.memory));
      }
    }
    return { machines, cpu, memory };
  }

  /**
   * Deletion with deletionPolicy PowerOff: machines still joining are powered off at once
   * (no pod runs there yet); Ready ones are drained first by the scale-down step, which says
   * what keeps each one on. Retain leaves every machine as it is.
   */
  private finalizeIntents(
    bma: BareMetalAutoscaler,
    selected: ParsedMachine[],
    next: Map<string, MachineStatus>,
    intents: { machine: ParsedMachine; action: 'PowerOn' | 'PowerOff'; reason: string; message: string }[],
  ): string[] {
    const blocked: string[] = [];
    if (bma.spec.deletionPolicy !== 'PowerOff') return blocked;
    for (const m of selected) {
      const s = next.get(m.name);
      if (s?.operation) {
        blocked.push(`${m.name}: waiting for its ${s.operation.action} operation`);
        continue;
      }
      if (s?.phase !== 'Joining') continue;
      if (!intents.some((i) => i.machine.name === m.name)) {
        intents.push({ machine: m, action: 'PowerOff', reason: 'AutoscalerDeleted', message: 'the autoscaler is being deleted with deletionPolicy PowerOff' });
      }
      blocked.push(`${m.name}: powering off`);
    }
    return blocked;
  }

  private async maybeRemoveFinalizer(bma: BareMetalAutoscaler, machines: MachineStatus[]): Promise<boolean> {
    if (!bma.metadata.deletionTimestamp) return false;
    if (machines.some((m) => m.operation || m.phase === 'Draining')) return false;
    // A draining taint left behind would keep pods off a machine nobody manages any more.
    if (machines.some((m) => hasDrainingTaint(this.deps.stores.nodes.get(m.name)))) return false;
    if (bma.spec.deletionPolicy === 'PowerOff' && machines.some((m) => ['Ready', 'Joining', 'PoweringOn', 'PoweringOff', 'Draining'].includes(m.phase))) return false;
    await this.patchFinalizers(bma, (bma.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
    return true;
  }

  private async patchFinalizers(bma: BareMetalAutoscaler, finalizers: string[]): Promise<void> {
    await this.api.patchFinalizers(bma.metadata.name, bma.metadata.resourceVersion, finalizers);
  }

  /** Replaces the status with an optimistic lock: a conflict means our view is stale, and nothing is actuated. */
  private async writeStatus(bma: BareMetalAutoscaler, status: BareMetalAutoscalerStatus): Promise<void> {
    if (bma.metadata.deletionTimestamp && (await this.maybeRemoveFinalizer(bma, status.machines ?? []))) return;
    if (JSON.stringify(bma.status ?? {}) === JSON.stringify(status)) return;
    const updated = await this.api.replaceStatus({ apiVersion: API_VERSION, kind: KIND, metadata: bma.metadata, spec: bma.spec, status });
    this.recent.set(bma.metadata.name, updated);
  }

  private involved(bma: BareMetalAutoscaler): InvolvedObject {
    return { apiVersion: API_VERSION, kind: KIND, name: bma.metadata.name, ...(bma.metadata.uid ? { uid: bma.metadata.uid } : {}) };
  }

  /** An event once per distinct message per topic (not every reconcile). */
  private announce(bma: BareMetalAutoscaler, topic: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${bma.metadata.name}/${topic}`;
    if (this.announced.get(key) === `${reason}/${message}`) return;
    this.announced.set(key, `${reason}/${message}`);
    this.deps.recorder.emit(this.involved(bma), type, reason, message);
  }

  private report(
    bma: BareMetalAutoscaler,
    involved: InvolvedObject,
    decision: ScaleUpDecision,
    started: { machine: ParsedMachine; status: MachineStatus }[],
    lifecycle: { machine: string; action: LifecycleAction }[],
    pending: k8s.V1Pod[],
    selected: ParsedMachine[],
    next: Map<string, MachineStatus>,
    dryRun: boolean,
    now: number,
    log: Logger,
    emptyCandidateOf: (m: ParsedMachine) => CompiledCandidate,
  ): void {
    const { recorder, metrics } = this.deps;
    const name = bma.metadata.name;
    const podByUid = new Map(pending.map((p) => [p.metadata?.uid ?? '', p]));
    for (const choice of decision.powerOn) {
      const m = selected.find((x) => x.name === choice.machine);
      const eta = m?.bootSeconds !== undefined ? `, expected Ready in ~${m.bootSeconds}s` : '';
      if (dryRun) {
        this.announce(bma, `dry-${choice.machine}`, 'Normal', 'WouldPowerOn', `dry run: would power on ${choice.machine} (${choice.reason}): ${choice.detail}`);
        metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'dry_run' });
        continue;
      }
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'actuated' });
      log.info({ machine: choice.machine, reason: choice.reason, pods: choice.pods.length, score: choice.score }, 'scale-up decided');
      recorder.emit(involved, 'Normal', 'PowerOn', `powering on ${choice.machine} (${choice.reason}): ${choice.detail}`);
      for (const p of choice.pods) {
        const pod = podByUid.get(p.uid);
        if (pod) recorder.emit(podRef(pod), 'Normal', 'TriggeredPowerOn', `${choice.machine}${eta} (autoscaler ${name})`);
        if (p.unschedulableSince !== undefined) metrics.decisionLatency.observe({ autoscaler: name }, Math.max(0, now - p.unschedulableSince) / 1000);
      }
    }
    for (const s of started) {
      if (s.status.operation?.action === 'PowerOff') recorder.emit(involved, 'Normal', 'PowerOff', `powering off ${s.machine.name}: ${s.status.message ?? ''}`);
    }
    for (const { machine, action } of lifecycle) {
      if (action.type === 'joined') {
        metrics.joinDuration.observe({ autoscaler: name }, action.joinMs / 1000);
        recorder.emit(involved, 'Normal', 'MachineJoined', `${machine} joined the cluster after ${Math.round(action.joinMs / 1000)}s`);
      } else if (action.type === 'failed') {
        const s = next.get(machine);
        recorder.emit(involved, 'Warning', action.reason, `${machine}: ${action.message}; quarantined until ${s?.retryAfter ?? '?'}`);
      } else if (action.type === 'poweredOff') {
        recorder.emit(involved, 'Normal', 'MachinePoweredOff', `${machine} is powered off (${action.reason}); its Node is removed and registers again when the machine boots`);
      } else if (action.type === 'adopted') {
        recorder.emit(involved, 'Normal', 'MachineAdopted', `${machine} ${action.how}: adopted as Ready`);
      }
    }
    if (decision.unplaceable.length > 0) {
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'no_feasible_machine' });
      const candidates = selected.map((m) => ({ m, c: emptyCandidateOf(m) }));
      // Pods with one signature get the same verdict from every machine: explain them once.
      const explained = new Map<string, string>();
      const explain = (compiled: CompiledPod): string => {
        const verdicts = candidates.map(({ m, c }) => ({ machine: m.name, verdict: check(compiled, c) }));
        // Every machine goes in (feasible ones too), so a `prefix-*` group never covers one that fits.
        const quarantined = verdicts.filter((v) => v.verdict.feasible && next.get(v.machine)?.phase === 'Failed').map((v) => `${v.machine}: quarantined`);
        const busy = verdicts
          .filter((v) => v.verdict.feasible && !['Off', 'Failed'].includes(next.get(v.machine)?.phase ?? ''))
          .map((v) => `${v.machine}: already ${next.get(v.machine)?.phase ?? 'on'} and full`);
        const text = [summarizeInfeasible(verdicts), ...quarantined, ...busy].filter(Boolean).join('; ');
        return text === '' ? 'no machine of this autoscaler can host it' : text;
      };
      for (const p of decision.unplaceable) {
        const pod = podByUid.get(p.uid);
        if (!pod) continue;
        const { pod: compiled, signature } = this.pods.compile(pod);
        let message = explained.get(signature);
        if (message === undefined) explained.set(signature, (message = explain(compiled)));
        this.explainInfeasible(pod, name, message);
      }
    }
    if (decision.limitedBy && decision.waiting.length > 0) {
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'limited' });
      this.announce(bma, 'limited', 'Normal', 'ScalingLimited', `${decision.waiting.length} pending pod(s) wait: ${decision.limitedBy}`);
    } else {
      this.announced.delete(`${name}/limited`);
    }
  }

  /**
   * A pod gets NoFeasibleMachine only once every autoscaler has found that none of its
   * machines can host it (a pod meant for rack b is no news to rack a), with each one's
   * reasons; and again only when the reasons change.
   */
  private explainInfeasible(pod: k8s.V1Pod, autoscaler: string, message: string): void {
    const uid = pod.metadata?.uid ?? '';
    let byAutoscaler = this.infeasible.get(uid);
    if (!byAutoscaler) this.infeasible.set(uid, (byAutoscaler = new Map<string, string>()));
    byAutoscaler.set(autoscaler, message);
    const all = this.deps.stores.autoscalers.list().map((a) => a.metadata.name).sort();
    if (!all.every((a) => byAutoscaler.has(a))) return;
    const text = all.map((a) => `${a}: ${byAutoscaler.get(a) ?? ''}`).join(' | ');
    const key = `pod/${uid}`;
    if (this.announced.get(key) === text) return;
    this.announced.set(key, text);
    this.deps.recorder.emit(podRef(pod), 'Warning', 'NoFeasibleMachine', text);
    if (this.infeasible.size > 20_000) {
      const pending = new Set(this.pods.unschedulable().map((p) => p.metadata?.uid ?? ''));
      for (const k of this.infeasible.keys()) if (!pending.has(k)) this.infeasible.delete(k);
      for (const k of this.announced.keys()) if (k.startsWith('pod/') && !pending.has(k.slice(4))) this.announced.delete(k);
    }
  }

  private updateGauges(name: string, machines: MachineStatus[], pending: number, readings: { category: string; level: number; ratePerMinute: number; pressured: boolean }[], selected: ParsedMachine[]): void {
    const { metrics } = this.deps;
    for (const phase of ['Off', 'PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff', 'Failed', 'Unknown']) {
      metrics.machines.set({ autoscaler: name, phase }, machines.filter((m) => m.phase === phase).length);
    }
    metrics.unschedulablePods.set({ autoscaler: name }, pending);
    for (const r of readings) {
      metrics.pressureLevel.set({ autoscaler: name, category: r.category }, r.level);
      metrics.pressureRate.set({ autoscaler: name, category: r.category }, r.ratePerMinute);
      metrics.pressured.set({ autoscaler: name, category: r.category }, r.pressured ? 1 : 0);
    }
    for (const m of selected) metrics.bmcDegraded.set({ autoscaler: name, machine: m.name }, this.deps.pool.health(m.name)?.degraded ? 1 : 0);
  }

  private forgetAutoscaler(name: string): void {
    this.pressure.forget(name);
    this.recent.delete(name);
    for (const k of this.announced.keys()) if (k.startsWith(`${name}/`)) this.announced.delete(k);
    for (const [uid, c] of this.claims) if (c.autoscaler === name) this.claims.delete(uid);
  }

}

/** The autoscaler writes through the API server, with optimistic locking. */
export function kubeAutoscalerApi(custom: k8s.CustomObjectsApi): AutoscalerApi {
  return {
    async replaceStatus(bma) {
      try {
        return (await custom.replaceClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL, name: bma.metadata.name, body: bma })) as BareMetalAutoscaler;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 409) throw new ConflictError('status update conflicted');
        throw new Error(`writing the status of ${bma.metadata.name}: ${describe(err)}`);
      }
    },
    async patchFinalizers(name, resourceVersion, finalizers) {
      try {
        await custom.patchClusterCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, name, body: { metadata: { finalizers, resourceVersion } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 409) throw new ConflictError('finalizer update conflicted');
        if (err instanceof k8s.ApiException && err.code === 404) return;
        throw new Error(`updating the finalizers of ${name}: ${describe(err)}`);
      }
    },
  };
}

function podRef(pod: k8s.V1Pod): InvolvedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    name: pod.metadata?.name ?? '',
    ...(pod.metadata?.namespace ? { namespace: pod.metadata.namespace } : {}),
    ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
  };
}

function powerCyclesToday(s: MachineStatus | undefined, now: number): number {
  if (!s?.powerCyclesDay) return 0;
  return s.powerCyclesDay === new Date(now).toISOString().slice(0, 10) ? (s.powerCyclesToday ?? 0) : 0;
}

function limitReason(why: string): string {
  if (why.startsWith('maxMachines')) return 'MaxMachines';
  if (why.startsWith('maxConcurrentPowerOns')) return 'MaxConcurrentPowerOns';
  if (why.startsWith('cluster-wide')) return 'ClusterCap';
  if (why.startsWith('scale-up cooldown')) return 'Cooldown';
  if (why.startsWith('waiting for the power state')) return 'ReadingPowerStates';
  return 'NoCandidate';
}

function dryRunMessage(d: ScaleUpDecision): string {
  if (d.powerOn.length === 0) return 'dry run: no machine would be powered on';
  return `dry run: would power on ${d.powerOn.map((c) => `${c.machine} (${c.reason})`).join(', ')}`;
}

function parseMilli(q: string): bigint {
  try {
    return parseQuantity(q);
  } catch {
    return 0n;
  }
}

function describe(err: unknown): string {
  if (err instanceof k8s.ApiException) return `HTTP ${err.code}: ${typeof err.body === 'string' ? err.body.slice(0, 300) : JSON.stringify(err.body).slice(0, 300)}`;
  return errorMessage(err);
}

/** Utilisation rising at least this much per minute (0..1 levels) pauses scale-down. */
const RISING_PER_MINUTE = 0.02;

interface ScaleDownStep {
  plan?: ScaleDownPlan;
  starts: { machine: string; pods: k8s.V1Pod[] }[];
  aborts: { machine: string; reason: string; message: string }[];
  evict: { machine: string; pods: k8s.V1Pod[]; evictedBefore: number }[];
  completed: { machine: string; ms: number; evicted: number }[];
  untaint: string[];
  deleteNodes: { name: string; uid?: string }[];
  /** Machines kept on by a blocker (not by being busy or by a pause), for events. */
  blocked: { machine: string; messages: string[] }[];
  /** Why the deletion (deletionPolicy PowerOff) is not done yet. */
  deletionBlocked: string[];
  failure?: { time: string; machine: string; reason: string };
}

/** status.machines[].blockers holds at most 32 entries of 512 characters. */
function capBlockers(messages: string[]): string[] {
  const cut = messages.map((m) => (m.length > 512 ? `${m.slice(0, 509)}...` : m));
  if (cut.length <= 32) return cut;
  return [...cut.slice(0, 31), `and ${cut.length - 31} more`];
}

function nodeRef(name: string): InvolvedObject {
  return { apiVersion: 'v1', kind: 'Node', name };
}
