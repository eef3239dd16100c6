// Run (the local cluster is started if it is not up; `make peers` first for the peers):
//   TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/peers.bench.ts [--json]
// Options: --bursts 1,30,300  --tools bamel,cluster-autoscaler,karpenter  --raw FILE (every time, as JSON)
//   --scale-down matched|defaults|both (default matched; defaults waits out each tool's own
//   settings, 20 minutes and more for bamel and Cluster Autoscaler, on one burst of 30)
//
// bamel side by side with Cluster Autoscaler and Karpenter (their kwok providers), one after
// the other on the same control plane, for the same inventory: machines of three untainted
// shapes (16, 20 and 24 cores) and one tainted shape (32 cores, bench.bamel.io/reserved). The
// inventory's shapes become Karpenter's instance types and NodePools and CA's node-group
// templates (bench/helpers/peer-config.ts). For each burst of N pods, each too big to share a
// machine (13 cores), created at once:
// - decision latency: from the moment this process's watch saw each pod PodScheduled=False
//   (Unschedulable) to a scale-up action: bamel's power-on request (bamel sim's Redfish log
//   line), Karpenter's NodeClaim, CA's Node (its kwok provider creates the Node when the
//   node group grows), as this process's watch saw it. The k-th pod to be marked is paired
//   with the k-th action (a burst's pods are alike); p50 and p99 over the burst;
// - machines used (powered on, or NodeClaims / Nodes created) once every pod runs, against
//   the N needed;
// - scale-down: from the last pod gone to the last machine powered off or Node deleted.
// Then the taint case: one pod of 28 cores (only the tainted shape fits) and one of 13, both
// tolerating the taint: the shape each tool picks.
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import { localCluster, waitFor } from '../test/integration/helpers/cluster.js';
import { errorMessage } from '../kube/errors.js';
import { ResourceInformer } from '../kube/informer.js';
import { Teardowns } from './helpers/end-to-end.js';
import { benchMachines, POOL_LABEL, SHAPE_LABEL, startBamel, startClusterAutoscaler, startKarpenter, TAINT, type Action, type RunningTool, type ScaleDownMode, type ToolName, type ToolOptions } from './helpers/peers-tools.js';
import { ms, summarize, table } from './helpers/stats.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};
const JSON_OUT = argv.includes('--json');
const BURSTS = option('--bursts', '1,30,300').split(',').map(Number);
const TOOLS = option('--tools', 'bamel,cluster-autoscaler,karpenter').split(',') as ToolName[];
const SCALE_DOWN = option('--scale-down', 'matched');
const RAW = option('--raw', '');
const POD_CPU = '13';
const log = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

for (const b of BURSTS) if (!Number.isInteger(b) || b <= 0) throw new Error(`--bursts: ${b} is not a positive whole number`);
for (const t of TOOLS) if (!['bamel', 'cluster-autoscaler', 'karpenter'].includes(t)) throw new Error(`--tools: unknown tool ${t}`);
if (!['matched', 'defaults', 'both'].includes(SCALE_DOWN)) throw new Error('--scale-down: matched, defaults or both');

interface BurstResult {
  tool: ToolName;
  burst: number;
  mode: ScaleDownMode;
  decisions: number[];
  machinesUsed: number;
  machinesNeeded: number;
  /** Pods bound when the bench stopped waiting. */
  bound: number;
  scaleDownMs?: number;
  note?: string;
  /** For --raw: ms from the burst's start at which each pod was seen Unschedulable, and each action. */
  raw: { seen: number[]; actions: number[] };
}

interface TaintResult {
  tool: ToolName;
  big?: string;
  small?: string;
}

/** Every pod of a namespace: when this process first saw it Unschedulable, and bound (the project's informer). */
class PodWatch {
  readonly unschedulable = new Map<string, number>();
  readonly bound = new Map<string, string>();
  readonly present = new Set<string>();
  private informer?: ResourceInformer<k8s.V1Pod>;
  async start(kc: k8s.KubeConfig, ns: string): Promise<void> {
    const saw = (pod: k8s.V1Pod): void => {
      const name = pod.metadata?.name ?? '';
      this.present.add(name);
      const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
      if (c?.status === 'False' && c.reason === 'Unschedulable' && !this.unschedulable.has(name)) this.unschedulable.set(name, Date.now());
      if (pod.spec?.nodeName && !this.bound.has(name)) this.bound.set(name, pod.spec.nodeName);
    };
    this.informer = new ResourceInformer<k8s.V1Pod>({ kc, path: `/api/v1/namespaces/${ns}/pods` });
    this.informer.on('add', saw).on('update', saw).on('delete', (pod) => void this.present.delete(pod.metadata?.name ?? ''));
    this.informer.start();
    await waitFor('the pod informer synced', 60_000, async () => this.informer?.hasSynced(), 100);
  }
  async stop(): Promise<void> {
    await this.informer?.stop();
  }
}

async function createPods(core: k8s.CoreV1Api, ns: string, names: string[], cpu: string, tolerate: boolean): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 24 }, async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { burst: name.split('-')[0] ?? name } },
          spec: {
            nodeSelector: { [POOL_LABEL]: ns },
            ...(tolerate ? { tolerations: [{ key: TAINT.key, operator: 'Equal', value: TAINT.value, effect: TAINT.effect }] } : {}),
            terminationGracePeriodSeconds: 0,
            containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu, memory: '8Gi' } } }],
          },
        },
      });
    }
  }));
}

/** The tool's machines (Nodes of its pool) now. */
async function poolNodes(core: k8s.CoreV1Api, ns: string): Promise<k8s.V1Node[]> {
  return (await core.listNode({ labelSelector: `${POOL_LABEL}=${ns}` })).items;
}

async function deletePodsAndTimeScaleDown(core: k8s.CoreV1Api, tool: RunningTool, pods: PodWatch, label: string, timeoutMs: number): Promise<number | undefined> {
  try {
    // The API server of a busy 2-core machine sometimes drops a request: again, a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await core.deleteCollectionNamespacedPod({ namespace: tool.ns, labelSelector: `burst=${label}`, gracePeriodSeconds: 0 });
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        log(`${tool.tool}: deleting the ${label} pods: ${errorMessage(err)}; again`);
        await sleep(2000 * attempt);
      }
    }
    await waitFor(`the ${label} pods gone`, 180_000, async () => ![...pods.present].some((p) => p.startsWith(`${label}-`)), 100);
  } catch (err) {
    log(`${tool.tool}: ${errorMessage(err)}`);
    return undefined;
  }
  const gone = Date.now();
  try {
    await waitFor(`${tool.tool}: every machine of the pool removed or off`, timeoutMs, async () => (await poolNodes(core, tool.ns)).length === 0, 1000);
    return Date.now() - gone;
  } catch (err) {
    log(`${tool.tool}: ${errorMessage(err)}`);
    return undefined;
  }
}

async function burst(core: k8s.CoreV1Api, tool: RunningTool, pods: PodWatch, n: number, mode: ScaleDownMode): Promise<BurstResult> {
  const label = `b${n}${mode === 'defaults' ? 'd' : ''}`;
  const names = Array.from({ length: n }, (_, i) => `${label}-${String(i).padStart(3, '0')}`);
  const before = tool.actions().length;
  const probed = await tool.probe?.();
  const start = Date.now();
  log(`${tool.tool}: burst of ${n} pods`);
  await createPods(core, tool.ns, names, POD_CPU, false);
  const mine = (): Action[] => tool.actions().slice(before);
  const note: string[] = [];
  await waitFor(`${tool.tool}: ${n} scale-up actions`, 180_000 + n * 1000, async () => mine().length >= n, 200).catch((err: unknown) => note.push(errorMessage(err)));
  await waitFor(`${tool.tool}: ${n} pods bound`, 300_000 + n * 2000, async () => names.every((p) => pods.bound.has(p)), 500).catch((err: unknown) => note.push(errorMessage(err)));
  await sleep(5000); // an action the tool takes late still counts as used
  const seen = names.map((p) => pods.unschedulable.get(p)).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const acts = mine().map((a) => a.at).sort((a, b) => a - b);
  const decisions = seen.slice(0, acts.length).map((s, i) => (acts[i] as number) - s);
  if (seen.length < n) note.push(`${n - seen.length} pods never seen Unschedulable (bound first)`);
  const bound = names.filter((p) => pods.bound.has(p)).length;
  if (probed && tool.probe) {
    // bamel's own account: its reconciles during the burst, and its decision-latency histogram.
    const now = await tool.probe();
    const d = (k: string): number => (now[k] ?? 0) - (probed[k] ?? 0);
    const reconciles = d('bamel_controller_reconcile_duration_seconds_count');
    const decided = d('bamel_controller_decision_latency_seconds_count');
    note.push(`${reconciles} reconciles, ${ms((1000 * d('bamel_controller_reconcile_duration_seconds_sum')) / Math.max(1, reconciles))} each on average (${ms(1000 * d('bamel_controller_reconcile_duration_seconds_sum'))} in all); its own decision latency (lastTransitionTime → power-on request) ${ms((1000 * d('bamel_controller_decision_latency_seconds_sum')) / Math.max(1, decided))} on average over ${decided} pods`);
  }
  const machinesUsed = mine().length;
  log(`${tool.tool}: ${n} pods, ${machinesUsed} machines, ${bound} bound, decision p50 ${ms(summarize(decisions).p50)} p99 ${ms(summarize(decisions).p99)} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  const scaleDownMs = await deletePodsAndTimeScaleDown(core, tool, pods, label, mode === 'matched' ? 600_000 : 2_400_000);
  log(`${tool.tool}: scale-down after the ${n} pods went: ${scaleDownMs === undefined ? 'not done' : ms(scaleDownMs)}`);
  const raw = { seen: seen.map((x) => x - start), actions: acts.map((x) => x - start) };
  return { tool: tool.tool, burst: n, mode, decisions, machinesUsed, machinesNeeded: n, bound, raw, ...(scaleDownMs !== undefined ? { scaleDownMs } : {}), ...(note.length ? { note: note.join('; ') } : {}) };
}

async function taintCase(core: k8s.CoreV1Api, tool: RunningTool, pods: PodWatch): Promise<TaintResult> {
  log(`${tool.tool}: taint case`);
  await createPods(core, tool.ns, ['t-big'], '28', true);
  await createPods(core, tool.ns, ['t-small'], POD_CPU, true);
  const shapeOf = async (pod: string): Promise<string | undefined> => {
    try {
      const node = await waitFor(`${pod} bound`, 180_000, async () => pods.bound.get(pod), 500);
      return (await core.readNode({ name: node })).metadata?.labels?.[SHAPE_LABEL];
    } catch (err) {
      log(`${tool.tool}: ${errorMessage(err)}`);
      return undefined;
    }
  };
  const [big, small] = [await shapeOf('t-big'), await shapeOf('t-small')];
  await deletePodsAndTimeScaleDown(core, tool, pods, 't', 600_000);
  return { tool: tool.tool, ...(big ? { big } : {}), ...(small ? { small } : {}) };
}

const STARTERS: Record<ToolName, (o: ToolOptions) => Promise<RunningTool>> = { bamel: startBamel, 'cluster-autoscaler': startClusterAutoscaler, karpenter: startKarpenter };

/** The tool being run: on SIGINT or SIGTERM its objects and processes go before the bench exits. */
let current: Teardowns | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void (current?.run() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function runTool(name: ToolName, mode: ScaleDownMode, bursts: number[], results: BurstResult[], taints: TaintResult[], failures: Map<string, string>, settings: Map<string, string>): Promise<void> {
  const teardowns = new Teardowns();
  current = teardowns;
  const { core, kc } = await localCluster();
  try {
    const untainted = Math.max(...bursts) + Math.ceil(Math.max(...bursts) / 10) + 2;
    log(`${name} (${mode} scale-down): setting up ${untainted + 4} machines`);
    const tool = await STARTERS[name]({ machines: benchMachines(untainted, 4), scaleDown: mode, teardowns, log });
    settings.set(`${name} ${mode}`, tool.settings);
    const pods = new PodWatch();
    await pods.start(kc, tool.ns);
    teardowns.teardown(() => pods.stop());
    for (const n of bursts) results.push(await burst(core, tool, pods, n, mode));
    if (mode === 'matched') taints.push(await taintCase(core, tool, pods));
  } catch (err) {
    failures.set(name, errorMessage(err));
    log(`${name}: ${errorMessage(err)}`);
  } finally {
    log(`${name}: cleaning up`);
    await teardowns.run();
  }
}

function print(results: BurstResult[], taints: TaintResult[], failures: Map<string, string>, settings: Map<string, string>): void {
  const sd = (r?: BurstResult): string => (r?.scaleDownMs === undefined ? '-' : ms(r.scaleDownMs));
  const matched = results.filter((r) => r.mode === 'matched');
  console.log('\nDecision latency (watch saw the pod Unschedulable → scale-up action), machines, scale-down (last pod gone → last machine off or deleted)');
  console.log(table(
    ['tool', 'burst', 'n', 'p50', 'p99', 'max', 'machines used / needed', 'pods bound', 'scale-down (matched)', 'scale-down (defaults)'],
    matched.map((r) => {
      const s = summarize(r.decisions);
      const d = results.find((x) => x.mode === 'defaults' && x.tool === r.tool && x.burst === r.burst);
      return [r.tool, String(r.burst), String(s.n), ms(s.p50), ms(s.p99), ms(s.max), `${r.machinesUsed} / ${r.machinesNeeded}`, `${r.bound} / ${r.burst}`, sd(r), sd(d)];
    }),
  ));
  for (const r of results) if (r.note) console.log(`  ${r.tool} burst ${r.burst} (${r.mode}): ${r.note}`);
  for (const [tool, why] of failures) console.log(`  ${tool} did not run: ${why}`);
  console.log('\nTaint case (pods tolerating bench.bamel.io/reserved): the shape each tool picked');
  console.log(table(['tool', '28 cores (only c32-reserved fits)', '13 cores (any shape fits)'], taints.map((t) => [t.tool, t.big ?? 'none', t.small ?? 'none'])));
  console.log('\nSettings:');
  for (const [k, v] of settings) console.log(`  ${k}: ${v}`);
  console.log('  Documented scale-down defaults: bamel unneededSeconds 600 + cooldownSeconds 600 after a scale-up; Cluster Autoscaler --scale-down-unneeded-time 10m and --scale-down-delay-after-add 10m; Karpenter consolidateAfter 0s (WhenEmptyOrUnderutilized), disruption budget 10 % of nodes.');
  // bamel against the better peer, burst by burst.
  for (const n of BURSTS) {
    const p99 = (t: ToolName): number | undefined => {
      const r = matched.find((x) => x.tool === t && x.burst === n);
      return r && r.decisions.length ? summarize(r.decisions).p99 : undefined;
    };
    const peers = (['cluster-autoscaler', 'karpenter'] as const).map(p99).filter((x): x is number => x !== undefined);
    const ours = p99('bamel');
    if (ours !== undefined && peers.length) {
      const best = Math.min(...peers);
      console.log(`  burst ${n}: bamel p99 ${ms(ours)} is ${(ours / best).toFixed(3)} of the better peer's ${ms(best)} (target ≤ 0.1)`);
    }
  }
}

async function main(): Promise<void> {
  const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(`peers benchmark: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), load ${load()}, ${new Date().toISOString()}`);
  const results: BurstResult[] = [];
  const taints: TaintResult[] = [];
  const failures = new Map<string, string>();
  const settings = new Map<string, string>();
  const modes: ScaleDownMode[] = SCALE_DOWN === 'both' ? ['matched', 'defaults'] : [SCALE_DOWN as ScaleDownMode];
  for (const mode of modes) {
    for (const tool of TOOLS) {
      if (failures.has(tool)) continue;
      // Defaults take long: one burst of 30 (or the smallest asked) when matched runs too.
      const bursts = mode === 'defaults' && modes.length > 1 ? [BURSTS.includes(30) ? 30 : (BURSTS[0] as number)] : BURSTS;
      await runTool(tool, mode, bursts, results, taints, failures, settings);
    }
  }
  if (RAW) writeFileSync(RAW, JSON.stringify({ results, taints, failures: Object.fromEntries(failures), settings: Object.fromEntries(settings) }, null, 1));
  print(results, taints, failures, settings);
  console.log(`\nload average at the end: ${load()}`);
  if (JSON_OUT) {
    const rows = results.filter((r) => r.mode === modes[0]).map((r) => {
      const s = summarize(r.decisions);
      return { tool: r.tool, burst: r.burst, decisionP50Ms: Math.round(s.p50), decisionP99Ms: Math.round(s.p99), machinesUsed: r.machinesUsed, machinesNeeded: r.machinesNeeded };
    });
    console.log(JSON.stringify({ bench: 'peers', results: rows }));
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`peers benchmark: ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
