import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { Actuator } from '../../controller/actuator.js';
import { EventRecorder, type EventType, type InvolvedObject } from '../../kube/events.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import type { AutoscalerApi, Reconciler, ReconcilerDeps, Store } from '../../controller/reconcile/reconciler.js';
import { BmcCredentials } from '../../power/credentials.js';
import type { PowerDriver, PowerResult } from '../../power/driver.js';
import { BmcPool } from '../../power/pool.js';
import { slimNode, slimPod } from '../../controller/pod-shape.js';
import { AUTOSCALER, type RecordedCluster } from './recorded-cluster.js';

/**
 * The real Reconciler fed with recorded cluster state: informer stores are maps, the
 * autoscaler's status writes are kept instead of sent, BMCs answer at once, and events go
 * nowhere. Everything between the caches and the BMC call is the code the manager runs.
 */

/** What the manager's informers offer the reconciler: get by key, list. */
class MapStore<T> implements Store<T> {
  constructor(private readonly items: Map<string, T>) {}
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  list(): T[] {
    return [...this.items.values()];
  }
}

/** Events are kept in memory, never written: the API server is not part of this measurement. */
class KeptEvents extends EventRecorder {
  lines: string[] = [];
  override emit(obj: InvolvedObject, type: EventType, reason: string, message: string): void {
    this.lines.push(`${obj.kind}/${obj.namespace ?? ''}/${obj.name} ${type} ${reason}: ${message}`);
  }
}

/** A BMC that powers on the moment it is asked and notes when that was. */
function instantDriver(onPowerOn: () => void): PowerDriver {
  const done = (state: 'on' | 'off'): PowerResult => ({ state, alreadyInState: false, method: state === 'on' ? 'On' : 'ForceOff', durationMs: 0 });
  return {
    kind: 'redfish',
    endpoint: 'https://bmc.invalid:443',
    status: async () => 'off',
    powerOn: async () => {
      onPowerOn();
      return done('on');
    },
    powerOff: async () => done('off'),
    close: async () => undefined,
  };
}

export interface ReconcileRun {
  /** reconcile() from call to return. */
  totalMs: number;
  /** From the call to the first and the last power-on request reaching a BMC driver. */
  firstPowerOnMs?: number;
  lastPowerOnMs?: number;
  powerOns: number;
  /** Status writes in this run, and the size of the last one. */
  writes: number;
  statusBytes: number;
  /** The events emitted in this run, one line each. */
  events: string[];
}

export interface RecordedReconciler {
  run(): Promise<ReconcileRun>;
  /** A pod changed somewhere: the manager calls podsChanged() on every pod event. */
  podsChanged(): void;
  /** The last status written, for checking that runs decide the same. */
  lastWritten(): BareMetalAutoscaler | undefined;
}

export async function recordedReconciler(state: RecordedCluster, now: () => number): Promise<RecordedReconciler> {
  // Loaded here, not at the top, so that `--reconciler` can point the bench at another build of it.
  const modulePath = process.env.BAMEL_BENCH_RECONCILER ?? '../../controller/reconcile/reconciler.js';
  const { Reconciler: ReconcilerClass } = (await import(modulePath)) as { Reconciler: new (deps: ReconcilerDeps) => Reconciler };

  const kc = new k8s.KubeConfig();
  // Never contacted: every API call of the reconciler goes through `api` below.
  kc.loadFromClusterAndUser({ name: 'recorded', server: 'https://127.0.0.1:1', skipTLSVerify: true }, { name: 'recorded', token: 'unused' });
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });

  let powerOnTimes: number[] = [];
  const pool = new BmcPool({ driverFactory: () => instantDriver(() => powerOnTimes.push(performance.now())) });
  const credentials = new BmcCredentials('admin', 'recorded');
  let settled = 0;
  const actuator = new Actuator({ pool, credentials: async () => credentials, metrics, logger, gracefulTimeoutMs: 1000, onDone: () => settled++, now });

  // As the manager's informers hold them: the API server's JSON, parsed, through the
  // informers' transforms (manager.ts); nothing shared with the objects the state was built from.
  const cached = <T>(obj: T, transform: (o: k8s.KubernetesObject) => k8s.KubernetesObject = (o) => o): T => transform(JSON.parse(JSON.stringify(obj)) as k8s.KubernetesObject) as T;
  const autoscalers = new Map([[AUTOSCALER, cached(state.autoscaler)]]);
  const inventories = new Map([[`${state.inventory.metadata?.namespace}/${state.inventory.metadata?.name}`, cached(state.inventory)]]);
  const nodes = new Map(state.nodes.map((n) => [n.metadata?.name ?? '', cached(n, slimNode)]));
  const pods = new Map(state.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, cached(p, slimPod)]));

  let writes = 0;
  let statusBytes = 0;
  // The request body a client would send; read back only between runs, outside the timing.
  let lastText: string | undefined;
  const api: AutoscalerApi = {
    async replaceStatus(bma) {
      writes++;
      lastText = JSON.stringify(bma);
      statusBytes = Buffer.byteLength(lastText);
      // The recorded object keeps its resourceVersion: every run starts from the same state.
      return bma;
    },
    async patchFinalizers() {
      throw new Error('the recorded autoscaler already carries the finalizer');
    },
  };
  const recorder = new KeptEvents(kc, 'bamel-bench', 'bench', logger);
  const deps: ReconcilerDeps = {
    kc,
    stores: { autoscalers: new MapStore(autoscalers), inventories: new MapStore(inventories), nodes: new MapStore(nodes), pods: new MapStore(pods) },
    pool,
    actuator,
    recorder,
    metrics,
    logger,
    options: { identity: 'bench', settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000, readyAbsorbMs: 60_000, resyncMs: 30_000, caps: {} },
    now,
    api,
    // The recorded pods are the API server's: the power-off check reads them.
    livePods: async (node) => [...pods.values()].filter((p) => p.spec?.nodeName === node),
  };
  const reconciler = new ReconcilerClass(deps);

  return {
    podsChanged: () => reconciler.podsChanged(),
    lastWritten: () => (lastText === undefined ? undefined : (JSON.parse(lastText) as BareMetalAutoscaler)),
    async run() {
      powerOnTimes = [];
      writes = 0;
      recorder.lines = [];
      const settledBefore = settled;
      const start = performance.now();
      const result = await reconciler.reconcile(AUTOSCALER);
      const totalMs = performance.now() - start;
      if (result.requeueAfterMs === 0) throw new Error('the reconcile asked to be retried at once (a conflict or a finalizer patch): the recorded state is not what the bench expects');
      const started = recorder.lines.filter((l) => l.includes(' Normal PowerOn: ')).length;
      // Let the background BMC calls of this run finish before the next one starts.
      for (let i = 0; i < 1000 && settled - settledBefore < started; i++) await new Promise((r) => setImmediate(r));
      const first = powerOnTimes.length > 0 ? Math.min(...powerOnTimes) - start : undefined;
      const lastOn = powerOnTimes.length > 0 ? Math.max(...powerOnTimes) - start : undefined;
      return {
        totalMs,
        ...(first !== undefined ? { firstPowerOnMs: first } : {}),
        ...(lastOn !== undefined ? { lastPowerOnMs: lastOn } : {}),
        powerOns: powerOnTimes.length,
        writes,
        statusBytes,
        events: recorder.lines,
      };
    },
  };
}
