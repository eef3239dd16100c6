import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { BareMetalAutoscaler } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { loadInputs } from '../../../cmd/simulate.js';
import { isNodeReady } from '../../../controller/observe.js';
import { Reconciler, type ReconcilerDeps } from '../../../controller/reconcile/reconciler.js';
import type { EventType, InvolvedObject } from '../../../kube/events.js';
import { simulate, SIMULATION_START, type Summary } from '../../../sim/simulate/index.js';

/**
 * Scenarios of the energy-aware decisions on `bamel simulate` (the real Reconciler on a
 * virtual clock over a workload trace, in-memory cluster): the inventory, autoscaler and
 * trace are written as files and read the way the CLI reads them. The Reconciler is the real
 * one, subclassed only to watch: the event messages with their virtual times, when each Node
 * is first seen Ready, when each pod is first seen bound, and the autoscaler's last status.
 */

export const START = SIMULATION_START;

export interface ScenarioMachine {
  name: string;
  cpu: number;
  memoryGi: number;
  bootSeconds: number;
  idleWatts?: number;
  maxWatts?: number;
}

export interface ScenarioPod {
  at: number;
  cpu: string;
  memory: string;
  duration: number;
}

export interface Scenario {
  machines: ScenarioMachine[];
  spec: Record<string, unknown>;
  pods: ScenarioPod[];
  seed?: number;
  jitter?: number;
  /** Every machine really boots this long, whatever the inventory says. */
  bootSeconds?: number;
}

export interface Observed {
  events: { at: number; reason: string; message: string }[];
  readyAt: { machine: string; at: number }[];
  /** Pod name → first seen bound (ms). */
  bound: Map<string, number>;
  status?: BareMetalAutoscaler['status'];
}

/** The real Reconciler, watched from outside: nothing it decides is changed. */
function watched(obs: Observed) {
  return class WatchedReconciler extends Reconciler {
    private readonly seen = new Set<string>();
    private readonly watchedDeps: ReconcilerDeps;

    constructor(deps: ReconcilerDeps) {
      const clock = deps.now ?? Date.now;
      const recorder = Object.create(deps.recorder) as ReconcilerDeps['recorder'];
      recorder.emit = (obj: InvolvedObject, type: EventType, reason: string, message: string) => {
        obs.events.push({ at: clock(), reason, message });
        deps.recorder.emit(obj, type, reason, message);
      };
      super({ ...deps, recorder });
      this.watchedDeps = deps;
    }

    override async reconcile(name: string) {
      const { stores } = this.watchedDeps;
      const now = (this.watchedDeps.now ?? Date.now)();
      const ready = new Set(stores.nodes.list().filter(isNodeReady).map((n) => n.metadata?.name ?? ''));
      for (const n of ready) if (!this.seen.has(n)) obs.readyAt.push({ machine: n, at: now });
      this.seen.clear();
      for (const n of ready) this.seen.add(n);
      for (const p of stores.pods.list()) if (p.spec?.nodeName && !obs.bound.has(p.metadata?.name ?? '')) obs.bound.set(p.metadata?.name ?? '', now);
      const r = await super.reconcile(name);
      obs.status = stores.autoscalers.get(name)?.status;
      return r;
    }
  };
}

export async function runScenario(s: Scenario): Promise<{ summary: Summary; obs: Observed; pods: ScenarioPod[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'bamel-energy-'));
  try {
    const inventory = {
      machines: s.machines.map((m) => ({
        name: m.name,
        bmc: { address: `redfish+https://10.0.0.${s.machines.indexOf(m) + 1}/redfish/v1/Systems/1`, credentialsSecret: 'bmc' },
        capacity: { cpu: String(m.cpu), memory: `${m.memoryGi}Gi`, pods: '110' },
        ...(m.idleWatts !== undefined || m.maxWatts !== undefined ? { power: { ...(m.idleWatts !== undefined ? { idleWatts: m.idleWatts } : {}), ...(m.maxWatts !== undefined ? { maxWatts: m.maxWatts } : {}) } } : {}),
        bootSeconds: m.bootSeconds,
      })),
    };
    const autoscaler = { apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', metadata: { name: 'energy' }, spec: { inventory: { namespace: 'bamel-system', name: 'machines' }, ...s.spec } };
    const trace = ['at,name,cpu,memory,duration', ...s.pods.map((p, i) => `${p.at},p-${i},${p.cpu},${p.memory},${p.duration}`)].join('\n');
    await writeFile(join(dir, 'inventory.yaml'), stringify(inventory));
    await writeFile(join(dir, 'autoscaler.yaml'), stringify(autoscaler));
    await writeFile(join(dir, 'trace.csv'), `${trace}\n`);
    const inputs = await loadInputs({ trace: join(dir, 'trace.csv'), inventory: join(dir, 'inventory.yaml'), autoscaler: join(dir, 'autoscaler.yaml') });
    const obs: Observed = { events: [], readyAt: [], bound: new Map() };
    const { summary } = await simulate({
      ...inputs,
      policy: 'bamel',
      seed: s.seed ?? 1,
      jitter: s.jitter ?? 0.05,
      ...(s.bootSeconds !== undefined ? { bootSeconds: s.bootSeconds } : {}),
      reconcilerClass: watched(obs),
    });
    return { summary, obs, pods: s.pods };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Seconds each pod waited to be bound (as the watching reconciler saw it, to a second or so). */
export function waits(r: { obs: Observed; pods: ScenarioPod[] }, from = 0, to = Number.POSITIVE_INFINITY): number[] {
  return r.pods.flatMap((p, i) => {
    if (p.at < from || p.at >= to) return [];
    const bound = r.obs.bound.get(`p-${i}`);
    return bound === undefined ? [Number.POSITIVE_INFINITY] : [Math.max(0, (bound - START) / 1000 - p.at)];
  });
}

/** Power-offs per machine, from the PowerOff events. */
export function powerOffsOf(obs: Observed, machine: string): number {
  return obs.events.filter((e) => e.reason === 'PowerOff' && e.message.startsWith(`powering off ${machine}:`)).length;
}
