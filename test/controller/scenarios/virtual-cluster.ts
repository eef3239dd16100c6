import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DRAINING_TAINT, type BareMetalAutoscaler } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { Actuator } from '../../../controller/actuator.js';
import { Drainer } from '../../../controller/drain.js';
import { ControllerMetrics } from '../../../controller/metrics.js';
import { isNodeReady } from '../../../controller/observe.js';
import { Reconciler } from '../../../controller/reconcile/reconciler.js';
import type { EventType, InvolvedObject } from '../../../kube/events.js';
import { BmcCredentials } from '../../../power/credentials.js';
import type { PowerDriver, PowerResult } from '../../../power/driver.js';
import { BmcPool } from '../../../power/pool.js';
import { candidateFromNode, compileCandidate, compilePod, fits } from '../../../scheduling/index.js';
import { KeptEvents, MapStore } from '../../../bench/helpers/recorded-reconciler.js';
import { inventory, type MachineEntry } from '../reconcile/fixtures.js';
import { autoscaler } from '../../webhook/fixtures.js';

/**
 * The real Reconciler on a virtual clock, for scenario tests of decisions that play out over
 * hours: informer stores are maps, the status is written into the autoscaler store, BMCs
 * power on at once and the machine's Node registers Ready after its boot time (seeded jitter),
 * a power-off takes the Node and its pods away. A workload keeps `replicas(t)` pods of one
 * size; the scheduler binds pending ones to Ready Nodes with room (never to a draining Node or
 * one chosen to drain next, as the extender filters them). The reconciler runs on every
 * change and when it asked to be requeued, as the manager's queue would run it.
 */

export interface ScenarioOptions {
  /** bootSeconds is what the inventory says; trueBootSeconds (else bootSeconds) how long the machine really boots. */
  machines: (MachineEntry & { name: string; bootSeconds: number; trueBootSeconds?: number })[];
  spec: Record<string, unknown>;
  start: number;
  /** Pods wanted at a time; each requests podCpu and podMemory. */
  replicas: (t: number) => number;
  podCpu: string;
  podMemory: string;
  /** Each boot lasts bootSeconds × (1 ± jitter), seeded. */
  jitter?: number;
  seed?: number;
  stepMs?: number;
}

export interface Boot {
  machine: string;
  requestedAt: number;
  seconds: number;
}

interface Machine {
  on: boolean;
  readyAt?: number;
  bootSeconds: number;
}

interface PodTimes {
  created: number;
  bound?: number;
}

const NAME = 'a';

export class VirtualCluster {
  now: number;
  readonly boots: Boot[] = [];
  readonly powerOffs: { machine: string; at: number }[] = [];
  readonly readyAt: { machine: string; at: number }[] = [];
  readonly events: { at: number; reason: string; message: string }[] = [];
  readonly pods = new Map<string, k8s.V1Pod>();
  readonly nodes = new Map<string, k8s.V1Node>();
  readonly autoscalers = new Map<string, BareMetalAutoscaler>();
  private readonly times = new Map<string, PodTimes>();
  private readonly machines = new Map<string, Machine>();
  private readonly reconciler: Reconciler;
  private dirty = true;
  private requeueAt = 0;
  private seq = 0;
  private rv = 10;
  private random: () => number;

  constructor(private readonly o: ScenarioOptions) {
    this.now = o.start;
    let seed = o.seed ?? 1;
    this.random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const m of o.machines) this.machines.set(m.name, { on: false, bootSeconds: m.trueBootSeconds ?? m.bootSeconds });
    const bma = autoscaler(NAME, o.spec);
    this.autoscalers.set(NAME, { ...bma, metadata: { ...bma.metadata, finalizers: ['autoscaling.bamel.io/finalizer'], resourceVersion: '1', generation: 1 } });
    const inv = inventory(o.machines.map(({ trueBootSeconds: _t, ...m }) => m));
    const kc = new k8s.KubeConfig();
    kc.loadFromClusterAndUser({ name: 'virtual', server: 'https://127.0.0.1:1', skipTLSVerify: true }, { name: 'virtual', token: 'unused' });
    const logger = pino({ level: 'silent' });
    const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
    const pool = new BmcPool({ driverFactory: (s) => this.driver(s.name) });
    const credentials = new BmcCredentials('admin', 'virtual');
    const now = (): number => this.now;
    const actuator = new Actuator({ pool, credentials: async () => credentials, metrics, logger, gracefulTimeoutMs: 1000, onDone: () => (this.dirty = true), now });
    const recorder = new TimedEvents(kc, 'bamel-scenario', 'scenario', logger);
    recorder.sink = (reason, message) => this.events.push({ at: this.now, reason, message });
    this.reconciler = new Reconciler({
      kc,
      stores: { autoscalers: new MapStore(this.autoscalers), inventories: new MapStore(new Map([['inv/machines', inv]])), nodes: new MapStore(this.nodes), pods: new MapStore(this.pods) },
      pool,
      actuator,
      recorder,
      metrics,
      logger,
      options: { identity: 'scenario', settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000, readyAbsorbMs: 60_000, resyncMs: 60_000, caps: {} },
      now,
      api: {
        replaceStatus: async (next) => {
          const stored = { ...next, metadata: { ...next.metadata, resourceVersion: String(++this.rv) } };
          this.autoscalers.set(NAME, stored);
          return stored;
        },
        patchFinalizers: async () => undefined,
      },
      drainer: new MemoryDrainer(this, { kc, logger, metrics, onChange: () => undefined, now }),
      livePods: async (node) => [...this.pods.values()].filter((p) => p.spec?.nodeName === node),
    });
  }

  status(): BareMetalAutoscaler['status'] {
    return this.autoscalers.get(NAME)?.status;
  }

  /** Seconds each pod waited to be bound (those still pending count until now). */
  pendingSeconds(): number[] {
    return [...this.times.values()].map((t) => ((t.bound ?? this.now) - t.created) / 1000);
  }

  async runUntil(end: number): Promise<void> {
    const step = this.o.stepMs ?? 5000;
    while (this.now < end) {
      this.now += step;
      this.boot();
      this.keepReplicas();
      this.schedule();
      if (this.dirty || this.now >= this.requeueAt) {
        this.dirty = false;
        this.reconciler.podsChanged();
        const r = await this.reconciler.reconcile(NAME);
        this.requeueAt = this.now + (r.requeueAfterMs ?? 60_000);
        // The BMC calls run in the background: let them finish within this step.
        for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
      }
    }
  }

  private driver(name: string): PowerDriver {
    const done = (state: 'on' | 'off', already: boolean): PowerResult => ({ state, alreadyInState: already, method: state === 'on' ? 'On' : 'ForceOff', durationMs: 0 });
    const m = this.machines.get(name) as Machine;
    return {
      kind: 'redfish',
      endpoint: `https://${name}.bmc.invalid:443`,
      status: async () => (m.on ? 'on' : 'off'),
      powerOn: async () => {
        if (m.on) return done('on', true);
        const seconds = m.bootSeconds * (1 + (this.o.jitter ?? 0) * (2 * this.random() - 1));
        m.on = true;
        m.readyAt = this.now + seconds * 1000;
        this.boots.push({ machine: name, requestedAt: this.now, seconds });
        return done('on', false);
      },
      powerOff: async () => {
        if (!m.on) return done('off', true);
        m.on = false;
        delete m.readyAt;
        this.powerOffs.push({ machine: name, at: this.now });
        this.nodes.delete(name);
        for (const [key, p] of this.pods) if (p.spec?.nodeName === name) this.deletePod(key);
        return done('off', false);
      },
      close: async () => undefined,
    };
  }

  private boot(): void {
    for (const [name, m] of this.machines) {
      if (m.readyAt === undefined || this.now < m.readyAt) continue;
      delete m.readyAt;
      const entry = this.o.machines.find((x) => x.name === name);
      this.nodes.set(name, {
        metadata: { name, uid: `node-${name}-${++this.seq}`, labels: { 'kubernetes.io/hostname': name }, creationTimestamp: new Date(this.now), resourceVersion: String(++this.rv) },
        spec: {},
        status: { allocatable: { cpu: String(entry?.cpu ?? 16), memory: `${entry?.memoryGi ?? 64}Gi`, pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
      });
      this.readyAt.push({ machine: name, at: this.now });
      this.dirty = true;
    }
  }

  deletePod(key: string): void {
    this.pods.delete(key);
    const t = this.times.get(key);
    if (t && t.bound === undefined) t.bound = this.now;
    this.dirty = true;
  }

  private keepReplicas(): void {
    const want = this.o.replicas(this.now);
    const live = [...this.pods.keys()];
    for (let i = live.length; i < want; i++) {
      const name = `w-${++this.seq}`;
      this.pods.set(`default/${name}`, {
        metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: String(++this.rv), ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'w', uid: 'rs', controller: true }] },
        spec: { containers: [{ name: 'c', resources: { requests: { cpu: this.o.podCpu, memory: this.o.podMemory } } }] },
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(this.now) }] },
      });
      this.times.set(`default/${name}`, { created: this.now });
      this.dirty = true;
    }
    // Scaled in: pending pods go first, then the newest.
    const excess = live.length - want;
    if (excess > 0) {
      const order = live.sort((a, b) => Number(!!this.pods.get(a)?.spec?.nodeName) - Number(!!this.pods.get(b)?.spec?.nodeName) || b.localeCompare(a, 'en', { numeric: true }));
      for (const key of order.slice(0, excess)) this.deletePod(key);
    }
  }

  private schedule(): void {
    const machines = new Map((this.status()?.machines ?? []).map((m) => [m.name, m]));
    for (const [key, pod] of this.pods) {
      if (pod.spec?.nodeName) continue;
      const compiled = compilePod(pod);
      const ready = [...this.nodes.values()].filter((n) => {
        const name = n.metadata?.name ?? '';
        return isNodeReady(n) && !n.spec?.taints?.some((t) => t.key === DRAINING_TAINT) && machines.get(name)?.disruption !== 'Next';
      });
      const rooms = ready.map((n) => ({ n, c: compileCandidate(candidateFromNode(n, [...this.pods.values()].filter((p) => p.spec?.nodeName === n.metadata?.name))) }));
      // Candidates for scale-down last (the extender scores them lower), then the fullest.
      const fit = rooms
        .filter((r) => fits(compiled, r.c))
        .sort((a, b) => Number(machines.get(a.n.metadata?.name ?? '')?.disruption === 'Candidate') - Number(machines.get(b.n.metadata?.name ?? '')?.disruption === 'Candidate') || Number((a.c.free.get('cpu') ?? 0n) - (b.c.free.get('cpu') ?? 0n)))[0];
      if (!fit) continue;
      this.pods.set(key, { ...pod, metadata: { ...pod.metadata, resourceVersion: String(++this.rv) }, spec: { ...pod.spec, containers: pod.spec?.containers ?? [], nodeName: fit.n.metadata?.name ?? '' }, status: { phase: 'Running' } });
      const t = this.times.get(key);
      if (t) t.bound = this.now;
      this.dirty = true;
    }
  }
}

/** Events with the virtual time they were emitted at. */
class TimedEvents extends KeptEvents {
  sink: (reason: string, message: string) => void = () => undefined;
  override emit(_obj: InvolvedObject, _type: EventType, reason: string, message: string): void {
    this.sink(reason, message);
  }
}

/** The drain's API calls on the virtual cluster: evicted pods go (the workload makes new ones). */
class MemoryDrainer extends Drainer {
  constructor(
    private readonly cluster: VirtualCluster,
    opts: ConstructorParameters<typeof Drainer>[0],
  ) {
    super(opts);
  }

  override evict(_autoscaler: string, _machine: string, pods: readonly k8s.V1Pod[]): number | undefined {
    for (const p of pods) this.cluster.deletePod(`${p.metadata?.namespace}/${p.metadata?.name}`);
    return undefined;
  }

  override async taint(name: string): Promise<boolean> {
    return this.retaint(name, (t) => [...t.filter((x) => x.key !== DRAINING_TAINT), { key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' }]);
  }

  override async untaint(name: string): Promise<boolean> {
    return this.retaint(name, (t) => t.filter((x) => x.key !== DRAINING_TAINT));
  }

  override async deleteNode(name: string): Promise<void> {
    this.cluster.nodes.delete(name);
  }

  private retaint(name: string, change: (t: k8s.V1Taint[]) => k8s.V1Taint[]): boolean {
    const n = this.cluster.nodes.get(name);
    if (!n) return false;
    this.cluster.nodes.set(name, { ...n, spec: { ...n.spec, taints: change(n.spec?.taints ?? []) } });
    return true;
  }
}
