import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import type { ParsedMachine } from '../../../api/inventory.js';
import { FINALIZER, type BareMetalAutoscaler, type MachineStatus, type Operation, type ScaleEvent } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { Actuator, type ActuatorOptions } from '../../../controller/actuator.js';
import { podName } from '../../../controller/blockers.js';
import { Drainer } from '../../../controller/drain.js';
import { ControllerMetrics } from '../../../controller/metrics.js';
import { ConflictError, Reconciler, type AutoscalerApi, type ReconcileResult } from '../../../controller/reconcile/reconciler.js';
import { toSeconds } from '../../../controller/reconcile/status-compact.js';
import { EventRecorder, type EventType, type InvolvedObject } from '../../../kube/events.js';
import { BmcCredentials } from '../../../power/credentials.js';
import type { PowerDriver, PowerResult } from '../../../power/driver.js';
import { BmcPool } from '../../../power/pool.js';
import { MemoryCache } from '../../extender/memory-cache.js';
import { autoscaler } from '../../webhook/fixtures.js';
import { inventory, iso, node, pendingPod, runningPod, status, T0, type MachineEntry } from './fixtures.js';

/**
 * The whole Reconciler over in-memory stores: informers are maps, the API server keeps the
 * optimistic lock, BMCs answer at once, and everything that leaves the process (status and
 * finalizer writes, BMC operations started and sent, taints, evictions, Node deletions) goes
 * into one timeline, in order.
 */

interface World {
  spec?: Record<string, unknown>;
  machines: MachineEntry[];
  statuses?: MachineStatus[];
  lastScaleEvent?: ScaleEvent;
  nodes?: k8s.V1Node[];
  pods?: k8s.V1Pod[];
  deleting?: boolean;
  finalizers?: string[];
  /** The resourceVersion the API server holds; the informer's copy is at 7. */
  serverRv?: string;
  /** Pods the API server has that the cache has not seen yet (bound since). */
  livePodsOnly?: k8s.V1Pod[];
}

interface Harness {
  reconcile(name?: string): Promise<ReconcileResult>;
  timeline: string[];
  written: BareMetalAutoscaler[];
  events: string[];
}

class RecordingActuator extends Actuator {
  constructor(
    opts: ActuatorOptions,
    private readonly timeline: string[],
  ) {
    super(opts);
  }
  override start(autoscaler: string, machine: ParsedMachine, op: Operation): void {
    this.timeline.push(`start ${machine.name} ${op.action} ${op.id}`);
    super.start(autoscaler, machine, op);
  }
}

class RecordingDrainer extends Drainer {
  constructor(
    kc: k8s.KubeConfig,
    metrics: ControllerMetrics,
    private readonly timeline: string[],
  ) {
    super({ kc, logger: pino({ level: 'silent' }), metrics, onChange: () => undefined });
  }
  override async taint(n: string): Promise<boolean> {
    this.timeline.push(`taint ${n}`);
    return true;
  }
  override async untaint(n: string): Promise<boolean> {
    this.timeline.push(`untaint ${n}`);
    return true;
  }
  override evict(_a: string, machine: string, pods: readonly k8s.V1Pod[]): number | undefined {
    this.timeline.push(`evict ${machine} ${pods.map(podName).join(',')}`);
    return undefined;
  }
  override async deleteNode(n: string): Promise<void> {
    this.timeline.push(`deleteNode ${n}`);
  }
}

class KeptEvents extends EventRecorder {
  lines: string[] = [];
  override emit(obj: InvolvedObject, type: EventType, reason: string, message: string): void {
    this.lines.push(`${obj.kind}/${obj.name} ${type} ${reason}: ${message}`);
  }
}

/** A BMC that does what it is asked at once, and says so in the timeline. */
function driver(machine: string, timeline: string[]): PowerDriver {
  const done = (state: 'on' | 'off'): PowerResult => ({ state, alreadyInState: false, method: state === 'on' ? 'On' : 'ForceOff', durationMs: 0 });
  return {
    kind: 'ipmi',
    endpoint: 'ipmi://bmc.invalid:623',
    status: async () => {
      timeline.push(`bmc ${machine} status`);
      return 'off';
    },
    powerOn: async () => {
      timeline.push(`bmc ${machine} powerOn`);
      return done('on');
    },
    powerOff: async () => {
      timeline.push(`bmc ${machine} powerOff`);
      return done('off');
    },
    close: async () => undefined,
  };
}

function harness(w: World): Harness {
  const timeline: string[] = [];
  const written: BareMetalAutoscaler[] = [];
  const base = autoscaler('a', w.spec ?? {});
  const bma: BareMetalAutoscaler = {
    ...base,
    metadata: { name: 'a', uid: 'uid-a', generation: 1, resourceVersion: '7', finalizers: w.finalizers ?? [FINALIZER], ...(w.deleting ? { deletionTimestamp: new Date(T0 - 1000) } : {}) },
    status: { machines: w.statuses ?? [], ...(w.lastScaleEvent ? { lastScaleEvent: w.lastScaleEvent } : {}) },
  };
  let server: BareMetalAutoscaler = { ...bma, metadata: { ...bma.metadata, resourceVersion: w.serverRv ?? '7' } };
  const locked = (rv: string | undefined, what: string): void => {
    if (rv === server.metadata.resourceVersion) return;
    timeline.push(`${what}: conflict`);
    throw new ConflictError(`${what} conflicted`);
  };
  const bump = (): string => String(Number(server.metadata.resourceVersion) + 1);
  const api: AutoscalerApi = {
    async replaceStatus(obj) {
      locked(obj.metadata.resourceVersion, 'status');
      server = structuredClone({ ...server, status: obj.status ?? {}, metadata: { ...server.metadata, resourceVersion: bump() } });
      written.push(server);
      timeline.push('status');
      return server;
    },
    async patchFinalizers(_name, resourceVersion, finalizers) {
      locked(resourceVersion, 'finalizers');
      server = { ...server, metadata: { ...server.metadata, finalizers, resourceVersion: bump() } };
      timeline.push(`finalizers ${JSON.stringify(finalizers)}`);
    },
  };

  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }, { name: 'none', token: 'unused' });
  const logger = pino({ level: 'silent' });
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  const now = (): number => T0;
  const pool = new BmcPool({ driverFactory: (spec) => driver(spec.name, timeline) });
  const credentials = new BmcCredentials('admin', 'secret');
  const actuator = new RecordingActuator({ pool, credentials: async () => credentials, metrics, logger, gracefulTimeoutMs: 1000, onDone: () => undefined, now }, timeline);
  const recorder = new KeptEvents(kc, 'bamel', 'test', logger);
  const reconciler = new Reconciler({
    kc,
    stores: {
      autoscalers: new MemoryCache([bma]),
      inventories: new MemoryCache([inventory(w.machines)]),
      nodes: new MemoryCache(w.nodes ?? []),
      pods: new MemoryCache(w.pods ?? []),
    },
    pool,
    actuator,
    recorder,
    metrics,
    logger,
    options: { identity: 'leader-1', settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000, readyAbsorbMs: 60_000, resyncMs: 30_000, caps: {} },
    drainer: new RecordingDrainer(kc, metrics, timeline),
    now,
    api,
    livePods: async (node) => {
      liveReads.push(node);
      return [...(w.pods ?? []), ...(w.livePodsOnly ?? [])].filter((p) => p.spec?.nodeName === node);
    },
  });
  return {
    timeline,
    written,
    events: recorder.lines,
    async reconcile(name = 'a') {
      const r = await reconciler.reconcile(name);
      // Let the BMC operations started in the background reach their drivers.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      return r;
    },
  };
}

const machineOf = (a: BareMetalAutoscaler | undefined, name: string): MachineStatus | undefined => a?.status?.machines?.find((m) => m.name === name);
const ready = (a: BareMetalAutoscaler | undefined): [string, string, string] | undefined => {
  const c = a?.status?.conditions?.find((x) => x.type === 'Ready');
  return c && [c.status, c.reason, c.message];
};

t.test('the status with the intent is written before any BMC operation starts; the next reconcile reads it back', async (t) => {
  const h = harness({ machines: [{ name: 'm1' }, { name: 'm2' }], statuses: [status('m1', 'Off'), status('m2', 'Off')], pods: [pendingPod('2', { name: 'web-1' })] });
  const r = await h.reconcile();
  const m1 = machineOf(h.written[0], 'm1');
  const op = m1?.operation;
  t.equal(m1?.phase, 'PoweringOn');
  t.same([op?.action, op?.holder, op?.startedAt, m1?.reason], ['PowerOn', 'leader-1', toSeconds(iso(T0)), 'PendingPods'], 'written at second precision');
  t.same(h.timeline, ['status', `start m1 PowerOn ${op?.id}`, 'bmc m1 powerOn'], 'first the intent, then the BMC');
  t.same(h.written[0]?.status?.lastScaleEvent, { time: iso(T0), direction: 'Up', machine: 'm1', reason: m1?.message });
  t.match(h.events, [/^BareMetalAutoscaler\/a Normal PowerOn: powering on m1 \(PendingPods\): /, 'Pod/web-1 Normal TriggeredPowerOn: m1 (autoscaler a)']);
  t.same(r, { requeueAfterMs: 30_000 });

  // The informer has not seen the write yet: the reconciler reads its own, and settles the
  // operation that finished instead of powering anything on again.
  h.timeline.length = 0;
  await h.reconcile();
  t.same(h.timeline, ['status'], 'no machine is powered twice for one decision');
  t.same([machineOf(h.written[1], 'm1')?.phase, machineOf(h.written[1], 'm1')?.operation], ['Joining', undefined]);
  t.equal(h.written[1]?.metadata.resourceVersion, '9', 'written over its own write, no conflict');
});

/** Nodes whose pods the reconciler read from the API server (not part of the timeline: a read changes nothing). */
const liveReads: string[] = [];

/** A drain done (→ power-off), minMachines not met (→ power-on), a stray taint, the Node of an Off machine. */
const BUSY: World = {
  spec: { minMachines: 3 },
  machines: [{ name: 'm1' }, { name: 'm2' }, { name: 'm3' }, { name: 'm4' }],
  statuses: [
    status('m1', 'Draining', { since: iso(T0 - 60_000), drain: { startedAt: iso(T0 - 60_000), deadline: iso(T0 + 540_000), podsToEvict: 1, evicted: 1 } }),
    status('m2', 'Off'),
    status('m3', 'Off', { since: iso(T0 - 600_000) }),
    status('m4', 'Ready'),
  ],
  nodes: [node('m1', { draining: true }), node('m3', { ready: false, created: T0 - 7_200_000 }), node('m4', { draining: true })],
  pods: [runningPod('m1', '100m', { owner: 'DaemonSet' })],
};

t.test('a status write that conflicts actuates nothing and asks to run again at once', async (t) => {
  const fresh = harness(BUSY);
  t.same(await fresh.reconcile(), { requeueAfterMs: 30_000 });
  const off = machineOf(fresh.written[0], 'm1')?.operation?.id;
  const on = machineOf(fresh.written[0], 'm2')?.operation?.id;
  t.same(
    fresh.timeline,
    ['status', 'untaint m4', 'deleteNode m3', `start m1 PowerOff ${off}`, `start m2 PowerOn ${on}`, 'bmc m1 powerOff', 'bmc m2 powerOn'],
    'without a conflict this state is actuated',
  );

  const stale = harness({ ...BUSY, serverRv: '8' });
  t.same(await stale.reconcile(), { requeueAfterMs: 0 });
  t.same(stale.timeline, ['status: conflict'], 'no taint, no Node deleted, no BMC called');
  t.same(stale.events, [], 'and nothing announced');
});

t.test('a dry run writes no intent and calls no BMC', async (t) => {
  const h = harness({ spec: { dryRun: true }, machines: [{ name: 'm1' }, { name: 'm2' }], statuses: [status('m1', 'Off'), status('m2', 'Off')], pods: [pendingPod('2')] });
  await h.reconcile();
  t.same(h.timeline, ['status']);
  t.same(
    h.written[0]?.status?.machines?.map((m) => [m.name, m.phase, m.operation]),
    [
      ['m1', 'Off', undefined],
      ['m2', 'Off', undefined],
    ],
  );
  t.same(ready(h.written[0]), ['True', 'DryRun', 'dry run: would power on m1 (PendingPods)']);
  t.equal(h.written[0]?.status?.lastScaleEvent, undefined);
  t.match(h.events, [/^BareMetalAutoscaler\/a Normal WouldPowerOn: dry run: would power on m1 \(PendingPods\): /]);

  const down = harness({
    spec: { dryRun: true },
    machines: [{ name: 'm1' }, { name: 'm2' }],
    statuses: [status('m1', 'Ready', { unneededSince: iso(T0 - 700_000), disruption: 'Next' }), status('m2', 'Off', { since: iso(T0 - 600_000) })],
    nodes: [node('m1'), node('spare'), node('m2', { ready: false, created: T0 - 7_200_000 })],
    pods: [runningPod('m1', '1')],
  });
  await down.reconcile();
  t.same(down.timeline, ['status'], 'no taint, no eviction, no Node deleted');
  t.same([machineOf(down.written[0], 'm1')?.phase, machineOf(down.written[0], 'm1')?.disruption], ['Ready', 'Candidate']);
  t.match(down.events, ['BareMetalAutoscaler/a Normal WouldDrain: dry run: would drain and power off m1 (utilisation 6% cpu)']);
});

t.test('a deleted autoscaler with deletionPolicy Retain leaves its machines alone', async (t) => {
  const h = harness({
    deleting: true,
    machines: [{ name: 'm1' }, { name: 'm2' }, { name: 'm3' }],
    statuses: [status('m1', 'Joining', { since: iso(T0 - 60_000) }), status('m2', 'Ready', { unneededSince: iso(T0 - 700_000), disruption: 'Next' }), status('m3', 'Off')],
    nodes: [node('m2'), node('spare')],
    pods: [runningPod('m2', '1'), pendingPod('2')],
  });
  await h.reconcile();
  t.same(h.timeline, ['finalizers []'], 'no power-on, no drain: the finalizer goes');

  const draining = harness({
    deleting: true,
    machines: [{ name: 'm1' }],
    statuses: [status('m1', 'Draining', { since: iso(T0 - 60_000), drain: { startedAt: iso(T0 - 60_000), deadline: iso(T0 + 540_000), podsToEvict: 1, evicted: 0 } })],
    nodes: [node('m1', { draining: true })],
    pods: [runningPod('m1', '1')],
  });
  await draining.reconcile();
  t.same(draining.timeline, ['status', 'untaint m1'], 'a drain in flight is given up: no eviction, no power-off');
  t.same([machineOf(draining.written[0], 'm1')?.phase, machineOf(draining.written[0], 'm1')?.reason], ['Ready', 'AutoscalerDeleted']);
});

t.test('requeue is the earliest wake-up of all the steps, the resync interval at the latest', async (t) => {
  const world = (joiningFor: number): World => ({
    spec: { scaleUp: { cooldownSeconds: 60 } },
    lastScaleEvent: { time: iso(T0 - 40_000), direction: 'Up', machine: 'm1', reason: 'powering on' },
    machines: [{ name: 'm1', cpu: 4 }, { name: 'm2' }],
    statuses: [status('m1', 'Joining', { since: iso(T0 - joiningFor) }), status('m2', 'Off')],
    pods: [pendingPod('8')],
  });
  t.same(await harness(world(590_000)).reconcile(), { requeueAfterMs: 10_000 }, 'the join deadline, before the end of the cooldown');
  t.same(await harness(world(570_000)).reconcile(), { requeueAfterMs: 20_000 }, 'the end of the cooldown a pod waits for, before the join deadline');
  t.same(await harness({ machines: [{ name: 'm1' }], statuses: [status('m1', 'Off')] }).reconcile(), { requeueAfterMs: 30_000 }, 'nothing waits on time');
});

t.test('an autoscaler gets the finalizer first; one gone from the informer is forgotten', async (t) => {
  const h = harness({ finalizers: [], machines: [{ name: 'm1' }], statuses: [status('m1', 'Off')], pods: [pendingPod('2')] });
  t.same(await h.reconcile(), { requeueAfterMs: 0 });
  t.same(h.timeline, [`finalizers ["${FINALIZER}"]`], 'nothing else before it is there');
  t.same(await h.reconcile('other'), {});
  t.same(h.timeline, [`finalizers ["${FINALIZER}"]`]);
});

t.test('a pod bound to a drained machine after it was chosen keeps it on: the power-off is re-checked live', async (t) => {
  liveReads.length = 0;
  const h = harness({ ...BUSY, spec: {}, livePodsOnly: [runningPod('m1', '500m')] });
  await h.reconcile();
  t.ok(liveReads.includes('m1'), 'the pods of the machine were read from the API server before the intent');
  t.notOk(h.timeline.some((e) => /m1 (PowerOff|powerOff)/.test(e)), 'no power-off of m1 started or reached a BMC');
  t.ok(h.timeline.includes('untaint m1'), 'its draining taint comes off');
  const m1 = machineOf(h.written[0], 'm1');
  t.same([m1?.phase, m1?.reason, m1?.operation], ['Ready', 'PowerOffAborted', undefined]);
  t.match(m1?.message, /power-off aborted, the machine stays on: 1 pod\(s\) run on it now/);
  t.match(h.written[0]?.status?.lastScaleDownFailure?.reason, /^power-off aborted: pods run on it now/);
  t.ok(h.events.some((e) => e.includes('PowerOffAborted')), 'an event says why');
});
