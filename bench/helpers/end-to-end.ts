import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL } from '../../api/v1alpha1/baremetalautoscaler.js';
import { kubectl, localCluster, waitFor } from '../../test/integration/helpers/cluster.js';
import { startScene, type SceneMachine } from '../../test/integration/helpers/scene.js';
import { mib, ms, summarize, table, versus } from './stats.js';
import { errorMessage } from '../../kube/errors.js';

/**
 * Part a of the decision benchmark: the local control plane, `bamel sim` with Redfish
 * machines and `bamel manager` as child processes (the integration tests' scene), one
 * BareMetalAutoscaler. Pods are created one at a time, each too big to share a machine, and
 * each is timed from the moment it was marked Unschedulable to the sim's `power` line for
 * the machine powered on for it.
 *
 * Machines boot for an hour: none joins during the run, so every pod stays pending and the
 * next pod's machine is decided with all the earlier ones still on their way (the
 * reconciler must not count their pods twice), and no Node or binding adds noise.
 */

export interface EndToEndOptions {
  machines: number;
  pods: number;
  log: (message: string) => void;
}

export interface PodTiming {
  pod: string;
  machine: string;
  created: number;
  /** PodScheduled=False lastTransitionTime: whole seconds, so up to 1 s before the truth. */
  condition: number;
  /** When this process's watch delivered the Unschedulable condition: at most a little after the truth. */
  seen: number;
  /**
   * The manager's log lines "scale-up decided" (written after the status write, as events
   * are) and "power operation sent to the BMC" (after the credentials Secret is read).
   */
  decided?: number;
  sent?: number;
  /** The sim's JSON `power` line (action on) for the machine. */
  power: number;
}

export interface EndToEndResult {
  machines: number;
  timings: PodTiming[];
  setupMs: number;
  managerRss?: { rss: number; peak: number };
}

const SHAPES = [
  { cpu: 16, memory: '64Gi', share: 0.4 },
  { cpu: 20, memory: '80Gi', share: 0.4 },
  { cpu: 24, memory: '96Gi', share: 0.2 },
];
/** More than half of the largest machine: no two pods share one. */
const POD_CPU = '13';
const POD_MEMORY = '8Gi';

function sceneMachines(count: number): SceneMachine[] {
  return Array.from({ length: count }, (_, i) => {
    const shape = i < count * 0.4 ? SHAPES[0] : i < count * 0.8 ? SHAPES[1] : SHAPES[2];
    return {
      name: `m${String(i).padStart(3, '0')}`,
      cpu: shape?.cpu ?? 16,
      memory: shape?.memory ?? '64Gi',
      protocol: 'redfish',
      labels: { 'node.bamel.io/class': `c${shape?.cpu ?? 16}` },
      bootSeconds: 3600,
      maxWatts: 300 + (shape?.cpu ?? 16) * 10,
    };
  });
}

/** Teardown in reverse order of setup, as tap would, whatever fails on the way. */
export class Teardowns {
  private readonly fns: (() => unknown)[] = [];
  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`teardown: ${errorMessage(err)}\n`);
      }
    }
  }
}

function unschedulableAt(pod: k8s.V1Pod): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (c?.status !== 'False' || c.reason !== 'Unschedulable' || !c.lastTransitionTime) return undefined;
  return new Date(c.lastTransitionTime).getTime();
}

/** The RSS of another process, from /proc (Linux): now, and its peak. */
function processRss(pid: number | undefined): { rss: number; peak: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function endToEnd(opts: EndToEndOptions): Promise<EndToEndResult> {
  const setupStart = Date.now();
  opts.log('end to end: starting the local control plane (hack/cluster.sh up) if it is not up');
  const { kc } = await localCluster();
  const teardowns = new Teardowns();
  try {
    opts.log(`end to end: ${opts.machines} Redfish machines in bamel sim`);
    const scene = await startScene(teardowns, 'bench', sceneMachines(opts.machines));
    const name = `bench-${scene.ns.slice(-12)}`;
    // On a fresh cluster the scene's CRD was applied a moment ago: it serves once Established.
    const crd = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${PLURAL}.${GROUP}`]);
    if (crd.code !== 0) throw new Error(`the BareMetalAutoscaler CRD is not established: ${crd.stderr}`);
    await scene.createAutoscaler(name, {
      minMachines: 0,
      maxMachines: opts.machines,
      scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: opts.machines, joinTimeoutSeconds: 3600 },
      scaleDown: { enabled: false },
    });
    const identity = `bench-${scene.ns.slice(-12)}`;
    const manager = scene.startManager(['--identity', identity]);
    await manager.waitForLog((l) => l.msg === 'leading: reconciling autoscalers', 120_000);
    opts.log('end to end: waiting for the manager to find every machine off');
    await waitFor('every machine Off', 180_000, async () => {
      const machines = (await scene.autoscaler(name)).status?.machines ?? [];
      return machines.length === opts.machines && machines.every((m) => m.phase === 'Off');
    }, 500);
    const setupMs = Date.now() - setupStart;

    // When this process learns that a pod is unschedulable, as the manager's informer would.
    const seen = new Map<string, { seen: number; condition: number }>();
    const watch = new k8s.Watch(kc);
    const request = await watch.watch(`/api/v1/namespaces/${scene.ns}/pods`, {}, (_type: string, pod: k8s.V1Pod) => {
      const podName = pod.metadata?.name ?? '';
      const at = unschedulableAt(pod);
      if (at !== undefined && !seen.has(podName)) seen.set(podName, { seen: Date.now(), condition: at });
    }, () => undefined);
    teardowns.teardown(() => request.abort());

    const timings: PodTiming[] = [];
    const taken = new Set<string>();
    for (let i = 0; i < opts.pods; i++) {
      // Created just after a second boundary, so that the condition's whole-second
      // lastTransitionTime lies only a little before the real moment.
      await sleep((1020 - (Date.now() % 1000)) % 1000);
      const pod = `p${String(i).padStart(3, '0')}`;
      const created = Date.now();
      await scene.createPod(pod, { cpu: POD_CPU, memory: POD_MEMORY });
      const power = await scene.sim.waitForEvent((e) => e.event === 'power' && e.action === 'on' && e.result === 'ok' && !taken.has(e.machine ?? ''), 60_000);
      const machine = power.machine ?? '';
      taken.add(machine);
      const saw = await waitFor(`the watch to see ${pod} unschedulable`, 10_000, async () => seen.get(pod), 20);
      const logTime = (msg: string): number | undefined => {
        const line = manager.logs.find((l) => l.msg === msg && l.machine === machine);
        return typeof line?.time === 'number' ? line.time : undefined;
      };
      // The next pod starts from a settled state: this machine recorded as Joining.
      await waitFor(`${machine} Joining`, 30_000, async () => {
        const machines = (await scene.autoscaler(name)).status?.machines ?? [];
        return machines.find((m) => m.name === machine)?.phase === 'Joining';
      }, 100);
      // A manager started without --autoscaler-selector (make demo's) reconciles every
      // autoscaler in the cluster, this one too: its decisions are not this measurement.
      const decidedHere = await manager.waitForLog((l) => l.msg === 'scale-up decided' && l.machine === machine, 5_000).then(
        () => true,
        () => false,
      );
      await manager.waitForLog((l) => l.msg === 'power operation sent to the BMC' && l.machine === machine, 5_000).catch(() => undefined);
      const powerOns = scene.sim.powerEvents(machine).filter((e) => e.action === 'on').length;
      if (!decidedHere || powerOns !== 1) {
        throw new Error(
          `${machine}: ${decidedHere ? `${powerOns} power-on requests` : 'powered on by another bamel manager than the one under test'}; ` +
            'a manager running without --autoscaler-selector (e.g. make demo) manages every autoscaler in the cluster: stop it and run again',
        );
      }
      const decided = logTime('scale-up decided');
      const sent = logTime('power operation sent to the BMC');
      const timing: PodTiming = { pod, machine, created, condition: saw.condition, seen: saw.seen, power: Date.parse(power.time), ...(decided !== undefined ? { decided } : {}), ...(sent !== undefined ? { sent } : {}) };
      timings.push(timing);
      opts.log(`  ${pod} → ${machine}: ${timing.power - timing.seen} ms after the watch saw it, ${timing.power - timing.condition} ms after lastTransitionTime`);
    }
    const managerRss = processRss(manager.child.pid);
    return { machines: opts.machines, timings, setupMs, ...(managerRss ? { managerRss } : {}) };
  } finally {
    opts.log('end to end: tearing down');
    await teardowns.run();
  }
}

const CLUSTER_AUTOSCALER_SLO_MS = 30_000;

export function printEndToEnd(r: EndToEndResult): void {
  const n = r.timings.length;
  console.log(`\na. End to end on the local control plane: ${r.machines} Redfish machines (bamel sim), bamel manager, ${n} pods one at a time (setup ${ms(r.setupMs)})`);
  const rows: [string, number[]][] = [
    ['lastTransitionTime → power-on (upper bound)', r.timings.map((t) => t.power - t.condition)],
    ['watch saw Unschedulable → power-on (lower bound)', r.timings.map((t) => t.power - t.seen)],
    ['pod created → power-on', r.timings.map((t) => t.power - t.created)],
    ['  created → watch saw Unschedulable (scheduler)', r.timings.map((t) => t.seen - t.created)],
    ['  watch saw → "scale-up decided" (informer, batching, reconcile, status write)', r.timings.flatMap((t) => (t.decided !== undefined ? [t.decided - t.seen] : []))],
    ['  "scale-up decided" → "sent to the BMC" (credentials Secret read)', r.timings.flatMap((t) => (t.decided !== undefined && t.sent !== undefined ? [t.sent - t.decided] : []))],
    ['  "sent to the BMC" → sim power line (Redfish)', r.timings.flatMap((t) => (t.sent !== undefined ? [t.power - t.sent] : []))],
  ];
  console.log(
    table(
      ['interval', 'n', 'p50', 'p99', 'max'],
      rows.map(([label, samples]) => {
        const s = summarize(samples);
        return [label, String(s.n), ms(s.p50), ms(s.p99), ms(s.max)];
      }),
    ),
  );
  const upper = summarize(r.timings.map((t) => t.power - t.condition));
  const lower = summarize(r.timings.map((t) => t.power - t.seen));
  console.log(
    `   vs Cluster Autoscaler's 30 s scale-up SLO (under 100 nodes): p99 is ${versus(CLUSTER_AUTOSCALER_SLO_MS, upper.p99)} it on the upper bound, ` +
      `${versus(CLUSTER_AUTOSCALER_SLO_MS, lower.p99)} on the lower bound.`,
  );
  console.log('   The Unschedulable condition carries whole seconds; the true moment lies between the two bounds. Manager times are from its log lines.');
  if (r.managerRss) console.log(`   manager RSS at the end: ${mib(r.managerRss.rss)} (peak ${mib(r.managerRss.peak)}), running from TypeScript sources through the tap loader`);
}
