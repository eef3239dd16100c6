/**
 * The three autoscalers of bench/peers.bench.ts, each set up on the local control plane for
 * the same inventory: bamel (bamel sim's Redfish machines and `bamel manager`), Karpenter's
 * kwok provider and Cluster Autoscaler's kwok provider (built by `make peers`). Each tells
 * the bench when it acted to add capacity (its scale-up actions) and removes all it made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Machine } from '../../api/inventory.js';
import { binDir, cacheDir, kubeconfigPath, kubectl, localCluster, repoRoot, testNamespace, waitFor } from '../../test/integration/helpers/cluster.js';
import { startScene, type SceneMachine } from '../../test/integration/helpers/scene.js';
import { freeTcpPort } from '../../test/helpers/ports.js';
import { errorMessage } from '../../kube/errors.js';
import { ResourceInformer } from '../../kube/informer.js';
import type { Teardowns } from './end-to-end.js';
import { clusterAutoscalerProviderConfig, clusterAutoscalerTemplates, karpenterInstanceTypes, karpenterObjects, machineShapes } from './peer-config.js';

export type ToolName = 'bamel' | 'cluster-autoscaler' | 'karpenter';
export type ScaleDownMode = 'matched' | 'defaults';

/** The label every machine of a shape carries (inventory, NodePool template, CA template). */
export const SHAPE_LABEL = 'bench.bamel.io/shape';
/** The label the pods select their pool by; its value is the run's namespace. */
export const POOL_LABEL = 'bamel.io/test';
export const TAINT = { key: 'bench.bamel.io/reserved', value: 'batch', effect: 'NoSchedule' } as const;

export interface Action {
  at: number;
  /** The machine, NodeClaim or Node the action was for. */
  what: string;
}

export interface RunningTool {
  tool: ToolName;
  /** Where the bench creates its pods; also the value of POOL_LABEL on the tool's machines. */
  ns: string;
  /** Scale-up actions so far, in the order they were seen. */
  actions(): Action[];
  /** What a reader of the results should know about this tool's settings. */
  settings: string;
  /** Counters of the tool's own metrics now (bamel: its reconciles), for where the time goes. */
  probe?: () => Promise<Record<string, number>>;
}

/** Sums of the samples of some metrics in a Prometheus text page, by metric name. */
export function metricSums(text: string, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (m && (m[1] as string) in out) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  }
  return out;
}

const BAMEL_METRICS = ['bamel_controller_reconcile_duration_seconds_sum', 'bamel_controller_reconcile_duration_seconds_count', 'bamel_controller_decision_latency_seconds_sum', 'bamel_controller_decision_latency_seconds_count'];

export interface ToolOptions {
  machines: SceneMachine[];
  scaleDown: ScaleDownMode;
  teardowns: Teardowns;
  log: (m: string) => void;
}

/** The inventory of the bench: three untainted shapes that no two pods share, and one tainted. */
export function benchMachines(untainted: number, tainted: number): SceneMachine[] {
  const shapes = [
    { cpu: 16, memory: '64Gi', share: 0.4 },
    { cpu: 20, memory: '80Gi', share: 0.4 },
    { cpu: 24, memory: '96Gi', share: 0.2 },
  ];
  const out: SceneMachine[] = [];
  let i = 0;
  for (const [k, s] of shapes.entries()) {
    const n = k === shapes.length - 1 ? untainted - out.length : Math.round(untainted * s.share);
    for (let j = 0; j < n; j++, i++) {
      out.push({ name: `m${String(i).padStart(3, '0')}`, cpu: s.cpu, memory: s.memory, protocol: 'redfish', labels: { [SHAPE_LABEL]: `c${s.cpu}` }, bootSeconds: 2, maxWatts: 300 + s.cpu * 10 });
    }
  }
  for (let j = 0; j < tainted; j++, i++) {
    out.push({ name: `m${String(i).padStart(3, '0')}`, cpu: 32, memory: '128Gi', protocol: 'redfish', labels: { [SHAPE_LABEL]: 'c32-reserved' }, taints: [{ ...TAINT }], bootSeconds: 2, maxWatts: 620 });
  }
  return out;
}

/** The machines as the inventory's documents name them, for the peers' shapes. */
function inventoryMachines(machines: SceneMachine[], ns: string): Pick<Machine, 'capacity' | 'labels' | 'taints'>[] {
  return machines.map((m) => ({ capacity: { cpu: String(m.cpu), memory: m.memory, pods: '110' }, labels: { [POOL_LABEL]: ns, ...m.labels }, ...(m.taints ? { taints: m.taints as NonNullable<Machine['taints']> } : {}) }));
}

// ---- bamel ----

export async function startBamel(o: ToolOptions): Promise<RunningTool> {
  const scene = await startScene(o.teardowns, 'peers', o.machines);
  const name = `peers-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(name, {
    minMachines: 0,
    maxMachines: o.machines.length,
    // No cooldown and no cap on power-ons: a burst is answered at once, as the peers do.
    scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: Math.min(1000, o.machines.length), joinTimeoutSeconds: 600 },
    scaleDown: o.scaleDown === 'matched' ? { enabled: true, unneededSeconds: 60, cooldownSeconds: 0, maxConcurrentDrains: 100 } : { enabled: true },
  });
  const manager = scene.startManager(['--identity', name]);
  const metricsAddress = ((await manager.waitForLog((l) => l.msg === 'manager started', 120_000)).addresses as string[])[0] as string;
  await manager.waitForLog((l) => l.msg === 'leading: reconciling autoscalers', 120_000);
  o.log(`bamel: waiting for the manager to find the ${o.machines.length} machines off`);
  await waitFor('every machine Off', 300_000, async () => {
    const machines = (await scene.autoscaler(name)).status?.machines ?? [];
    return machines.length === o.machines.length && machines.every((m) => m.phase === 'Off');
  }, 1000);
  return {
    tool: 'bamel',
    ns: scene.ns,
    actions: () => scene.sim.events.filter((e) => e.event === 'power' && e.action === 'on' && e.result === 'ok').map((e) => ({ at: Date.parse(e.time), what: e.machine ?? '' })),
    probe: async () => metricSums(await (await fetch(`http://${metricsAddress}/metrics`)).text(), BAMEL_METRICS),
    settings: `scaleUp cooldown 0 s, maxConcurrentPowerOns ${Math.min(1000, o.machines.length)}; scaleDown ${o.scaleDown === 'matched' ? 'unneeded 60 s, cooldown 0 s, 100 drains at once' : 'defaults (unneeded 600 s, cooldown 600 s, 1 drain at once)'}`,
  };
}

// ---- a peer process and a watch of its actions ----

function peerLog(name: string, child: ChildProcess): () => string {
  const dir = join(repoRoot, '.local', 'test-results', 'logs');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${child.pid ?? 'x'}.log`);
  const out = createWriteStream(file);
  let tail = '';
  const keep = (d: Buffer): void => {
    out.write(d);
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => out.end());
  return () => `${file}:\n${tail}`;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Records each object that appears at a path (the time this process learned of it) until the
 * teardown. The project's informer: it lists first and reconnects by itself, so a watch
 * opened just as a CRD is established, or one the API server drops, loses nothing.
 */
export async function watchAdded(kc: k8s.KubeConfig, path: string, labelSelector: string | undefined, teardowns: Teardowns): Promise<Action[]> {
  const seen: Action[] = [];
  const informer = new ResourceInformer<k8s.KubernetesObject>({ kc, path, ...(labelSelector ? { labelSelector } : {}) });
  informer.on('add', (obj) => void seen.push({ at: Date.now(), what: obj.metadata?.name ?? '' }));
  informer.start();
  teardowns.teardown(() => informer.stop());
  await waitFor(`the informer of ${path} synced`, 120_000, async () => informer.hasSynced(), 100);
  return seen;
}

/** The peer binary's error file from make peers, or a missing binary: why it cannot run. */
export function peerMissing(binary: string, peer: string): string | undefined {
  const errorFile = join(cacheDir, 'peers', `${peer}.error`);
  if (existsSync(join(binDir, binary))) return undefined;
  if (existsSync(errorFile)) return `not built (make peers):\n${readFileSync(errorFile, 'utf8').trim()}`;
  return `${join(binDir, binary)} is missing: run make peers`;
}

async function deleteAll(kind: string, selector: string, timeoutMs: number): Promise<void> {
  const r = await kubectl(['delete', kind, '-l', selector, '--ignore-not-found', `--timeout=${Math.round(timeoutMs / 1000)}s`], { timeoutMs: timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`kubectl delete ${kind} -l ${selector}: ${r.stderr.trim()}`);
}

// ---- Karpenter ----

export function karpenterCrdDir(): string {
  return join(cacheDir, 'peers', 'karpenter', 'crds');
}

export async function startKarpenter(o: ToolOptions): Promise<RunningTool> {
  const missing = peerMissing('karpenter-kwok', 'karpenter');
  if (missing) throw new Error(`karpenter ${missing}`);
  const { kc } = await localCluster();
  const ns = await testNamespace(o.teardowns, 'peers-karpenter');
  const owner = { 'bench.bamel.io/run': ns };
  const crds = karpenterCrdDir();
  // CRDs last out of the teardown (registered first): the objects go before them.
  o.teardowns.teardown(async () => {
    for (const f of readdirSync(crds).filter((x) => x.endsWith('.yaml'))) await kubectl(['delete', '-f', join(crds, f), '--ignore-not-found', '--wait=false']);
  });
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crds]);
  if (applied.code !== 0) throw new Error(`applying Karpenter's CRDs: ${applied.stderr}`);
  const est = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/nodepools.karpenter.sh', 'crd/nodeclaims.karpenter.sh', 'crd/kwoknodeclasses.karpenter.kwok.sh']);
  if (est.code !== 0) throw new Error(`Karpenter's CRDs not established: ${est.stderr}`);

  const shapes = machineShapes(inventoryMachines(o.machines, ns));
  const dir = mkdtempSync(join(tmpdir(), 'bamel-peers-karpenter-'));
  const typesFile = join(dir, 'instance-types.json');
  writeFileSync(typesFile, JSON.stringify(karpenterInstanceTypes(shapes), null, 2));
  const disruption = o.scaleDown === 'matched' ? { consolidationPolicy: 'WhenEmpty' as const, consolidateAfter: '60s' } : { consolidationPolicy: 'WhenEmptyOrUnderutilized' as const, consolidateAfter: '0s' };
  const objects = karpenterObjects(shapes, { prefix: `peers-${ns.slice(-10)}`, labels: owner, disruption });
  if (o.scaleDown === 'matched') {
    // Every empty node at once, as bamel drains 100 machines at a time (Karpenter's default budget is 10 %).
    for (const obj of objects) if (obj.kind === 'NodePool') ((obj.spec as Record<string, Record<string, unknown>>).disruption as Record<string, unknown>).budgets = [{ nodes: '100%' }];
  }
  const nodeClaims = await watchAdded(kc, '/apis/karpenter.sh/v1/nodeclaims', undefined, o.teardowns);
  const [metrics, health] = [await freeTcpPort(), await freeTcpPort()];
  const child = spawn(join(binDir, 'karpenter-kwok'), [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      SYSTEM_NAMESPACE: ns,
      DISABLE_LEADER_ELECTION: 'true',
      METRICS_PORT: String(metrics),
      HEALTH_PROBE_PORT: String(health),
      INSTANCE_TYPES_FILE_PATH: typesFile,
      LOG_LEVEL: 'info',
    },
  });
  const tail = peerLog('karpenter', child);
  // Teardown: the NodePools go (Karpenter deletes their NodeClaims and Nodes), then Karpenter.
  o.teardowns.teardown(async () => {
    await stopChild(child);
    // Whatever Karpenter left: finalizers off, then the objects.
    for (const kind of ['nodeclaims.karpenter.sh', 'nodes']) {
      const list = await kubectl(['get', kind, '-l', `${POOL_LABEL}=${ns}`, '-o', 'name']);
      for (const n of list.stdout.split('\n').filter(Boolean)) {
        await kubectl(['patch', n, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
        await kubectl(['delete', n, '--ignore-not-found', '--wait=false']);
      }
    }
  });
  o.teardowns.teardown(async () => {
    await deleteAll('nodepools.karpenter.sh', `bench.bamel.io/run=${ns}`, 180_000).catch((err: unknown) => o.log(`karpenter teardown: ${errorMessage(err)}`));
    await kubectl(['delete', 'kwoknodeclasses.karpenter.kwok.sh', objects[0]?.metadata ? (objects[0].metadata as { name: string }).name : '', '--ignore-not-found', '--timeout=60s']);
  });
  await waitFor('Karpenter healthy', 120_000, async () => {
    if (child.exitCode !== null) throw new Error(`karpenter-kwok exited with ${child.exitCode}: ${tail()}`);
    const r = await fetch(`http://127.0.0.1:${health}/healthz`).catch(() => undefined);
    return r?.ok === true;
  }, 500).catch((err: unknown) => {
    throw new Error(`${errorMessage(err)}; ${tail()}`);
  });
  const r = await kubectl(['apply', '--server-side', '-f', '-'], { input: objects.map((x) => stringify(x)).join('---\n') });
  if (r.code !== 0) throw new Error(`applying the NodePools: ${r.stderr}`);
  // Karpenter ignores a NodePool until it is Ready (its node class resolved): the bursts start after.
  const ready = await kubectl(['wait', '--for=condition=Ready', '--timeout=120s', 'nodepools.karpenter.sh', '-l', `bench.bamel.io/run=${ns}`], { timeoutMs: 130_000 });
  if (ready.code !== 0) throw new Error(`the NodePools are not Ready: ${ready.stderr}; ${tail()}`);
  return {
    tool: 'karpenter',
    ns,
    actions: () => nodeClaims,
    settings: `batch idle 1 s / max 10 s (defaults); ${shapes.length} NodePools; ${o.scaleDown === 'matched' ? 'WhenEmpty after 60 s, budget 100 %' : 'defaults (WhenEmptyOrUnderutilized after 0 s, budget 10 %)'}`,
  };
}

// ---- Cluster Autoscaler ----

export async function startClusterAutoscaler(o: ToolOptions): Promise<RunningTool> {
  const missing = peerMissing('cluster-autoscaler-kwok', 'cluster-autoscaler');
  if (missing) throw new Error(`cluster-autoscaler ${missing}`);
  const { kc, core } = await localCluster();
  const ns = await testNamespace(o.teardowns, 'peers-ca');
  const shapes = machineShapes(inventoryMachines(o.machines, ns));
  const templates = 'kwok-provider-templates';
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'kwok-provider-config' }, data: { config: clusterAutoscalerProviderConfig(templates) } } });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: templates }, data: { templates: stringify(clusterAutoscalerTemplates(shapes, `peers-${ns.slice(-10)}`)) } } });
  const nodes = await watchAdded(kc, '/api/v1/nodes', `${POOL_LABEL}=${ns}`, o.teardowns);
  const port = await freeTcpPort();
  const matched = o.scaleDown === 'matched'
    ? ['--scale-down-unneeded-time=60s', '--scale-down-delay-after-add=0s', '--max-empty-bulk-delete=100', '--max-scale-down-parallelism=100']
    : [];
  const child = spawn(join(binDir, 'cluster-autoscaler-kwok'), [
    '--cloud-provider=kwok', `--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', `--address=127.0.0.1:${port}`,
    '--expander=least-waste', '--namespace', ns, ...matched,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POD_NAMESPACE: ns } });
  const tail = peerLog('cluster-autoscaler', child);
  o.teardowns.teardown(async () => {
    await stopChild(child);
    await deleteAll('nodes', `${POOL_LABEL}=${ns}`, 120_000).catch((err: unknown) => o.log(`cluster-autoscaler teardown: ${errorMessage(err)}`));
  });
  await waitFor('Cluster Autoscaler healthy', 120_000, async () => {
    if (child.exitCode !== null) throw new Error(`cluster-autoscaler-kwok exited with ${child.exitCode}: ${tail()}`);
    const r = await fetch(`http://127.0.0.1:${port}/health-check`).catch(() => undefined);
    return r?.ok === true;
  }, 500);
  return {
    tool: 'cluster-autoscaler',
    ns,
    actions: () => nodes,
    settings: `scan interval 10 s (default), expander least-waste; ${o.scaleDown === 'matched' ? 'unneeded 60 s, no delay after add, 100 deletions at once' : 'defaults (unneeded 10 min, delay after add 10 min)'}`,
  };
}
