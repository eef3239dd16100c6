import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DRAINING_TAINT, FINALIZER, type BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { Actuator } from '../../controller/actuator.js';
import { Drainer, DRAINING_TAINT_SPEC } from '../../controller/drain.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { Reconciler, type AutoscalerApi, type ReconcilerDeps, type ReconcileResult } from '../../controller/reconcile/reconciler.js';
import { EventRecorder, type EventType, type InvolvedObject } from '../../kube/events.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcPool } from '../../power/pool.js';
import { podKey, type Cache } from './cluster.js';
import type { Fleet } from './fleet.js';

/**
 * The controller of `bamel simulate`: the real Reconciler (the whole reconcile: lifecycle,
 * demand, pressure, decide, budget and safety, the scale-down planner, drains, status) with
 * the real Actuator and BMC pool, wired to the simulated cluster instead of an API server:
 *
 *   stores     the simulated cluster's caches (what the informers would hold)
 *   api        status writes land in the autoscaler cache, with a new resourceVersion
 *   drainer    taints, evictions and Node deletions act on the simulated cluster
 *   BMCs       the fleet's simulated BMCs (power changes at once; the boot takes its time)
 *   clocks     the virtual clock, for `now` and the monotonic clock alike
 *   events     counted by reason, not written
 */

export type ReconcilerClass = new (deps: ReconcilerDeps) => Pick<Reconciler, 'reconcile' | 'podsChanged'>;

export interface ClusterAccess {
  autoscalers: Cache<BareMetalAutoscaler>;
  inventories: Cache<k8s.V1ConfigMap>;
  nodes: Cache<k8s.V1Node>;
  pods: Cache<k8s.V1Pod>;
  /** A drain evicts the pod: it goes, and its controller makes a replacement. */
  evict(pod: k8s.V1Pod): void;
  podsOn(node: string): k8s.V1Pod[];
}

/** Events are counted by reason; nothing is written anywhere. */
class CountedEvents extends EventRecorder {
  readonly counts = new Map<string, number>();
  override emit(_obj: InvolvedObject, type: EventType, reason: string): void {
    const key = `${type}/${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}

/** The I/O of a drain, on the simulated cluster: what the Eviction API and kubectl would do. */
class SimDrainer extends Drainer {
  private readonly progressOf = new Map<string, { evicted: number; asked: Set<string> }>();

  constructor(
    kc: k8s.KubeConfig,
    logger: pino.Logger,
    metrics: ControllerMetrics,
    private readonly cluster: ClusterAccess,
  ) {
    super({ kc, logger, metrics, onChange: () => undefined });
  }

  override progress(machine: string): { evicted: number } | undefined {
    const p = this.progressOf.get(machine);
    return p ? { evicted: p.evicted } : undefined;
  }

  override forget(machine: string): void {
    this.progressOf.delete(machine);
  }

  override evict(_autoscaler: string, machine: string, pods: readonly k8s.V1Pod[], evictedBefore = 0): number | undefined {
    let p = this.progressOf.get(machine);
    if (!p) this.progressOf.set(machine, (p = { evicted: evictedBefore, asked: new Set() }));
    for (const pod of pods) {
      const key = pod.metadata?.uid ?? podKey(pod);
      if (p.asked.has(key)) continue;
      p.asked.add(key);
      // No PodDisruptionBudget in the simulation: every eviction is accepted.
      if (this.cluster.pods.get(podKey(pod))?.metadata?.uid === pod.metadata?.uid) this.cluster.evict(pod);
      p.evicted++;
    }
    return undefined;
  }

  override async taint(nodeName: string): Promise<boolean> {
    return this.retaint(nodeName, (taints) => (taints.some((t) => t.key === DRAINING_TAINT) ? undefined : [...taints, DRAINING_TAINT_SPEC]));
  }

  override async untaint(nodeName: string): Promise<boolean> {
    return this.retaint(nodeName, (taints) => (taints.some((t) => t.key === DRAINING_TAINT) ? taints.filter((t) => t.key !== DRAINING_TAINT) : undefined));
  }

  override async deleteNode(nodeName: string, uid: string | undefined): Promise<void> {
    const node = this.cluster.nodes.get(nodeName);
    if (node && (uid === undefined || node.metadata?.uid === uid)) this.cluster.nodes.delete(nodeName);
  }

  private retaint(nodeName: string, change: (taints: k8s.V1Taint[]) => k8s.V1Taint[] | undefined): boolean {
    const node = this.cluster.nodes.get(nodeName);
    if (!node) return false;
    const taints = change(node.spec?.taints ?? []);
    if (taints === undefined) return true;
    this.cluster.nodes.put(nodeName, { ...node, metadata: { ...node.metadata, resourceVersion: String(Number(node.metadata?.resourceVersion ?? '1') + 1) }, spec: { ...node.spec, taints } });
    return true;
  }
}

export interface ControllerHostOptions {
  cluster: ClusterAccess;
  fleet: Fleet;
  autoscaler: string;
  now: () => number;
  /** Another build of the Reconciler (tests: a patched copy must change what is simulated). */
  reconcilerClass?: ReconcilerClass;
}

export class ControllerHost {
  readonly events: CountedEvents;
  private readonly reconciler: Pick<Reconciler, 'reconcile' | 'podsChanged'>;
  private readonly actuator: Actuator;
  private settledOps = 0;
  writes = 0;

  constructor(private readonly opts: ControllerHostOptions) {
    const { cluster, fleet, now } = opts;
    const kc = new k8s.KubeConfig();
    // Never contacted: every API call of the reconciler goes to the simulated cluster.
    kc.loadFromClusterAndUser({ name: 'simulated', server: 'https://127.0.0.1:1', skipTLSVerify: true }, { name: 'simulated', token: 'unused' });
    const logger = pino({ level: 'silent' });
    const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
    const pool = new BmcPool({ driverFactory: (spec) => fleet.driver(spec.name) });
    const credentials = new BmcCredentials('simulated', 'simulated');
    this.actuator = new Actuator({ pool, credentials: async () => credentials, metrics, logger, gracefulTimeoutMs: 1000, onDone: () => this.settledOps++, now });
    this.events = new CountedEvents(kc, 'bamel-simulate', 'simulate', logger);
    let rv = 1;
    const api: AutoscalerApi = {
      replaceStatus: async (bma) => {
        this.writes++;
        const stored: BareMetalAutoscaler = { ...bma, metadata: { ...bma.metadata, resourceVersion: String(++rv) } };
        cluster.autoscalers.put(bma.metadata.name, stored);
        return stored;
      },
      patchFinalizers: async (name, _rv, finalizers) => {
        const a = cluster.autoscalers.get(name);
        if (a) cluster.autoscalers.put(name, { ...a, metadata: { ...a.metadata, finalizers, resourceVersion: String(++rv) } });
      },
    };
    const deps: ReconcilerDeps = {
      kc,
      stores: { autoscalers: cluster.autoscalers, inventories: cluster.inventories, nodes: cluster.nodes, pods: cluster.pods },
      pool,
      actuator: this.actuator,
      recorder: this.events,
      metrics,
      logger,
      // The manager's defaults (cmd/manager.ts).
      options: { identity: 'simulate', settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000, readyAbsorbMs: 60_000, resyncMs: 30_000, caps: {} },
      now,
      monotonicNow: now,
      api,
      drainer: new SimDrainer(kc, logger, metrics, cluster),
      livePods: async (node) => cluster.podsOn(node),
    };
    const Class = opts.reconcilerClass ?? Reconciler;
    this.reconciler = new Class(deps);
    const a = cluster.autoscalers.get(opts.autoscaler);
    if (a && !(a.metadata.finalizers ?? []).includes(FINALIZER)) {
      cluster.autoscalers.put(opts.autoscaler, { ...a, metadata: { ...a.metadata, finalizers: [...(a.metadata.finalizers ?? []), FINALIZER] } });
    }
  }

  podsChanged(): void {
    this.reconciler.podsChanged();
  }

  /**
   * One reconcile, then the BMC operations and probes it started run to their end before
   * the clock moves: they are promise chains with no timer or I/O in them, so one turn of
   * the event loop (setImmediate runs after every queued microtask) settles them all.
   */
  async reconcile(): Promise<ReconcileResult> {
    const result = await this.reconciler.reconcile(this.opts.autoscaler);
    await settle();
    for (const name of this.opts.fleet.machines.keys()) {
      if (this.actuator.busy(name)) throw new Error(`simulation: the BMC operation on ${name} did not settle within one turn of the event loop`);
    }
    return result;
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
