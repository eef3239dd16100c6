// Run (the local cluster up, `make build` done):
//   BAMEL_TEST_USE_DIST=1 TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/extender.bench.ts
//        [--pods N] [--sizes 1000,5000] [--latency-requests N] [--repeats N] [--json]
//
// What the scheduler extender costs kube-scheduler, printed (nothing is asserted):
// (a) pods scheduled per second by the real kube-scheduler with and without the extender,
//     on the same 1,000 and then 5,000 kwok Nodes, in the same run, and their ratio. Each
//     measurement has its own kube-scheduler process (the shipped configuration, with or
//     without its `extenders:` part) started once its N pods wait for it, and times the
//     first to the last binding, so neither pod creation nor start-up is counted;
// (b) filter latency at 5,000 Nodes, p50 / p99, asked as kube-scheduler would with every
//     Node in the request (it sends only the Nodes its own filters passed, at most
//     percentageOfNodesToScore of them: this is the worst case), in both nodeCacheCapable
//     modes, and the manager's own histogram for the requests of run (a);
// (c) where the CPU goes in (a): the manager's and that kube-scheduler's CPU time (user +
//     system, /proc/PID/stat) per pod: the manager's from just before the scheduler starts to the
//     last binding, the scheduler's whole life (its start-up, the same in both, included), with
//     and without the extender (their difference is what the extender costs).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type * as k8s from '@kubernetes/client-node';
import { ResourceInformer } from '../kube/informer.js';
import { join } from 'node:path';
import { kubectl, kwokNode, localCluster, repoRoot, testNamespace, waitFor } from '../test/integration/helpers/cluster.js';
import { heldLease, startSecondScheduler } from '../test/integration/helpers/extender.js';
import { startManager } from '../test/integration/helpers/manager.js';
import { freeTcpPort } from '../test/helpers/ports.js';
import { ms, summarize, table } from './helpers/stats.js';
import { errorMessage } from '../kube/errors.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

const PODS = Number(flag('pods', '400'));
const SIZES = flag('sizes', '1000,5000').split(',').map(Number);
const LATENCY_REQUESTS = Number(flag('latency-requests', '200'));
/** Alternated with/without pairs per size; the ratio reported is their median. */
const REPEATS = Number(flag('repeats', '3'));
const log = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** A process's CPU time so far (user + system) in ms, from /proc; 0 when it is gone. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}
const TICKS_PER_SECOND = 100;

/** Runs fn over items, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** The API server of a busy 2-CPU machine sometimes drops a request: try again a few times. */
async function retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= 5 || code === 409 || code === 404) throw err;
      log(`${what}: ${errorMessage(err)}; again`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

const teardowns: (() => unknown)[] = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };

async function main(): Promise<void> {
  const { core, kc } = await localCluster();
  const ns = await testNamespace(t, 'bench-ext');
  const id = ns.split('-').slice(-2).join('');
  const label = `bench-extender=${id}`;
  const port = await freeTcpPort();
  const address = `127.0.0.1:${port}`;
  // The manager's autoscaler informer needs the CRD; without it the extender answers 503
  // (caches not synced) and kube-scheduler goes on without it: nothing would be measured.
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'config/crd/bases')]);
  await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/baremetalautoscalers.autoscaling.bamel.io']);
  await heldLease(ns, 'bamel-bench');
  const manager = startManager(['--namespace', ns, '--leader-elect', '--leader-election-id', 'bamel-bench', '--autoscaler-selector', `bench=${id}`, '--extender-bind-address', address]);
  t.teardown(() => manager.stop());
  t.teardown(async () => {
    log('deleting the bench Nodes');
    await core.deleteCollectionNode({ labelSelector: label }).catch(() => undefined);
  });
  await manager.waitForLog((l) => l.msg === 'scheduler extender serving', 60_000);
  const metricsAddress = ((await manager.waitForLog((l) => l.msg === 'manager started')).addresses as string[])[0] as string;

  let created = 0;
  const addNodes = async (total: number): Promise<void> => {
    const names = Array.from({ length: total - created }, (_, i) => `bench-${id}-${String(created + i).padStart(5, '0')}`);
    log(`creating ${names.length} kwok Nodes (${total} in all)`);
    const t0 = performance.now();
    await pool(names, 24, async (name) => {
      const node = kwokNode({ name, capacity: { cpu: '32', memory: '128Gi', pods: '110' }, labels: { 'bench-extender': id } });
      await retry(`creating Node ${name}`, () => core.createNode({ body: node }));
    });
    created = total;
    // kwok heartbeats every Node through its Lease; on a busy machine a few lag behind and are
    // NotReady for a while (tainted, so the scheduler skips them): 95 % is enough to measure.
    await waitFor(`${total} Nodes Ready`, 600_000, async () => (await readyNodes()) >= 0.95 * total, 2000);
    log(`${await readyNodes()} of ${total} Nodes Ready after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  };
  const readyNodes = async (): Promise<number> => {
    const list = await core.listNode({ labelSelector: label, resourceVersion: '0' });
    return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  };

  /** N pods for a scheduler not running yet; then the scheduler; first to last binding. */
  const measure = async (variant: 'with' | 'without', size: number): Promise<{ rate: number; managerCpuMsPerPod: number; schedulerCpuMsPerPod: number }> => {
    const schedulerName = `bench-${variant}-${size}-${id}`;
    const names = Array.from({ length: PODS }, (_, i) => `${variant}-${size}-${i}`);
    await pool(names, 24, (name) =>
      retry(`creating pod ${name}`, () => core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { run: schedulerName } },
          spec: {
            schedulerName,
            nodeSelector: { 'bench-extender': id },
            terminationGracePeriodSeconds: 0,
            containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: '100m', memory: '128Mi' } } }],
          },
        },
      })),
    );
    const bindings: number[] = [];
    const seen = new Set<string>();
    // The project's informer (list, then watch from that resourceVersion): no binding is missed.
    const informer = new ResourceInformer<k8s.V1Pod>({ kc, path: `/api/v1/namespaces/${ns}/pods`, labelSelector: `run=${schedulerName}` });
    const done = new Promise<void>((resolve) => {
      const saw = (pod: k8s.V1Pod): void => {
        const name = pod.metadata?.name ?? '';
        if (pod.spec?.nodeName && !seen.has(name)) {
          seen.add(name);
          bindings.push(performance.now());
          if (seen.size === PODS) resolve();
        }
      };
      informer.on('add', saw);
      informer.on('update', saw);
    });
    informer.start();
    t.teardown(() => informer.stop());
    await waitFor('the pod informer synced', 60_000, async () => informer.hasSynced(), 50);
    log(`${PODS} pods waiting for ${schedulerName}`);
    const managerCpu0 = cpuMs(manager.child.pid);
    const scheduler = startSecondScheduler(schedulerName, { extender: variant === 'with', extenderAddress: address });
    await scheduler.started;
    const progress = setInterval(() => log(`${schedulerName}: ${seen.size} of ${PODS} bound`), 10_000);
    const timeout = new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`${schedulerName}: only ${seen.size} of ${PODS} pods bound in 10 min`)), 600_000));
    await Promise.race([done, timeout]).finally(() => clearInterval(progress));
    const managerCpuMsPerPod = (cpuMs(manager.child.pid) - managerCpu0) / PODS;
    const schedulerCpuMsPerPod = cpuMs(scheduler.child.pid) / PODS;
    await scheduler.stop();
    await informer.stop();
    bindings.sort((a, b) => a - b);
    const span = ((bindings.at(-1) ?? 0) - (bindings[0] ?? 0)) / 1000;
    const rate = (PODS - 1) / span;
    log(`${variant} the extender, ${size} Nodes (${await readyNodes()} Ready): ${PODS} pods in ${span.toFixed(2)} s = ${rate.toFixed(1)} pods/s; CPU per pod: manager ${managerCpuMsPerPod.toFixed(2)} ms, kube-scheduler ${schedulerCpuMsPerPod.toFixed(2)} ms`);
    await retry('deleting the pods', () => core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: `run=${schedulerName}`, gracePeriodSeconds: 0 }));
    await waitFor('bench pods gone', 300_000, async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: `run=${schedulerName}` })).items.length === 0, 1000);
    return { rate, managerCpuMsPerPod, schedulerCpuMsPerPod };
  };

  const rows: string[][] = [];
  const cpuRows: string[][] = [];
  const sizes: {
    nodes: number;
    withoutPodsPerSecond: number;
    withPodsPerSecond: number;
    ratio: number;
    ratios: number[];
    cpuMsPerPod: { managerWithout: number; managerWith: number; schedulerWithout: number; schedulerWith: number };
  }[] = [];
  for (const size of SIZES) {
    await addNodes(size);
    const pairs: { without: number; with: number }[] = [];
    const cpu = { managerWithout: [] as number[], managerWith: [] as number[], schedulerWithout: [] as number[], schedulerWith: [] as number[] };
    for (let r = 0; r < REPEATS; r++) {
      // Alternate the order so that a slow-down over the run does not favour one side.
      const order: ('with' | 'without')[] = r % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
      const rates: Record<string, number> = {};
      for (const v of order) {
        const m = await measure(v, size);
        rates[v] = m.rate;
        (v === 'with' ? cpu.managerWith : cpu.managerWithout).push(m.managerCpuMsPerPod);
        (v === 'with' ? cpu.schedulerWith : cpu.schedulerWithout).push(m.schedulerCpuMsPerPod);
      }
      pairs.push({ without: rates.without ?? 0, with: rates.with ?? 0 });
    }
    const ratios = pairs.map((p) => p.with / p.without);
    const mid = pairs[medianIndex(ratios)] ?? { without: 0, with: 0 };
    const ratio = mid.with / mid.without;
    const med = (xs: number[]): number => round(xs[medianIndex(xs)] ?? 0);
    const cpuMsPerPod = { managerWithout: med(cpu.managerWithout), managerWith: med(cpu.managerWith), schedulerWithout: med(cpu.schedulerWithout), schedulerWith: med(cpu.schedulerWith) };
    sizes.push({ nodes: size, withoutPodsPerSecond: round(mid.without), withPodsPerSecond: round(mid.with), ratio: round(ratio), ratios: ratios.map(round), cpuMsPerPod });
    rows.push([String(size), mid.without.toFixed(1), mid.with.toFixed(1), ratio.toFixed(2), ratios.map((x) => x.toFixed(2)).join(' ')]);
    cpuRows.push([String(size), ...Object.values(cpuMsPerPod).map((x) => ms(x))]);
  }

  const histogram = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const refused = [...histogram.matchAll(/^bamel_extender_requests_total\{[^}]*code="(?!200")\d+"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  if (refused > 0) throw new Error(`the extender answered ${refused} of kube-scheduler's requests with an error: the "with" figures are not the extender's`);

  // (b) filter latency with every Node of the cluster in the request.
  const allNodes = (await core.listNode({ labelSelector: label })).items;
  const pod = { metadata: { name: 'probe', namespace: ns }, spec: { containers: [{ name: 'c', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] } };
  const time = async (body: string, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await fetch(`http://${address}/extender/filter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`filter answered ${res.status}`);
      out.push(performance.now() - t0);
    }
    return out;
  };
  const namesBody = JSON.stringify({ Pod: pod, Nodes: null, NodeNames: allNodes.map((n) => n.metadata?.name) });
  const nodesBody = JSON.stringify({ Pod: pod, Nodes: { metadata: {}, items: allNodes }, NodeNames: null });
  await time(namesBody, 10);
  const names = summarize(await time(namesBody, LATENCY_REQUESTS));
  const nodes = summarize(await time(nodesBody, Math.max(10, Math.floor(LATENCY_REQUESTS / 10))));

  process.stdout.write(`\n(a) pods scheduled per second by kube-scheduler v1.36, ${PODS} pods per measurement, same kwok Nodes\n`);
  process.stdout.write(`${table(['Nodes', 'without extender (pods/s)', 'with extender (pods/s)', `ratio with/without (median of ${REPEATS})`, 'every ratio'], rows)}\n`);
  process.stdout.write(`\n(c) CPU time per pod scheduled (median of ${REPEATS}), manager and kube-scheduler\n`);
  process.stdout.write(`${table(['Nodes', 'manager without', 'manager with', 'kube-scheduler without', 'kube-scheduler with'], cpuRows)}\n`);
  process.stdout.write(`\n(b) filter latency at ${allNodes.length} Nodes, every Node in the request (client-side, HTTP on loopback)\n`);
  process.stdout.write(
    `${table(
      ['mode', 'body', 'requests', 'p50', 'p99'],
      [
        ['nodeCacheCapable: true (names)', `${(namesBody.length / 1024).toFixed(0)} KiB`, String(names.n), ms(names.p50), ms(names.p99)],
        ['nodeCacheCapable: false (Nodes)', `${(nodesBody.length / 2 ** 20).toFixed(1)} MiB`, String(nodes.n), ms(nodes.p50), ms(nodes.p99)],
      ],
    )}\n`,
  );
  process.stdout.write("\nthe manager's histogram (server side) over the requests kube-scheduler sent in (a):\n");
  for (const verb of ['filter', 'prioritize']) {
    const buckets = [...histogram.matchAll(new RegExp(`^bamel_extender_request_duration_seconds_bucket\\{le="([^"]+)",verb="${verb}"\\} (\\d+)`, 'gm'))].map((m) => ({
      le: Number(m[1] === '+Inf' ? Infinity : m[1]),
      n: Number(m[2]),
    }));
    const count = buckets.at(-1)?.n ?? 0;
    const bound = (q: number): string => {
      const b = buckets.find((x) => x.n >= q * count);
      return b === undefined ? '-' : Number.isFinite(b.le) ? `≤ ${ms(b.le * 1000)}` : '> 5 s';
    };
    process.stdout.write(`  ${verb}: ${count} requests, p50 ${bound(0.5)}, p99 ${bound(0.99)}\n`);
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ bench: 'extender', sizes, filterP99Ms: round(names.p99), filterNodesP99Ms: round(nodes.p99) })}\n`);
}

/** The index of the median (the lower middle of an even count). */
function medianIndex(xs: number[]): number {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  return order[Math.floor((order.length - 1) / 2)]?.[1] ?? 0;
}

function round(x: number): number {
  return Number(x.toFixed(3));
}

try {
  await main();
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
