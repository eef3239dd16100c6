// Run (`make build` done; no cluster needed):
//   BAMEL_TEST_USE_DIST=1 TS_NODE_TRANSPILE_ONLY=1 node \
//     --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/extender-handler.bench.ts
//        [--sizes 1000,5000] [--requests N] [--profile DIR] [--json]
//
// The extender's own CPU per kube-scheduler request, without kube-scheduler: the real HTTP
// server (extender/server.ts) over in-memory caches of N Nodes, asked by a client in another
// process (so that its CPU is not counted) what kube-scheduler v1.36 asks with
// nodeCacheCapable: true: the captured pod of test/fixtures/extender and as many Node names
// as its percentageOfNodesToScore lets through (max(100, N × (50 − N/125) %), at least 5 %),
// a filter then a prioritize for each pod. Prints the server's CPU per request (user +
// system, process.cpuUsage) and the client's round trip, per verb; --profile DIR writes a
// .cpuprofile of the timed requests only (node:inspector), one per size.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { DRAINING_TAINT } from '../api/v1alpha1/baremetalautoscaler.js';
import { Extender } from '../extender/extender.js';
import { ExtenderMetrics } from '../extender/metrics.js';
import { buildExtenderServer } from '../extender/server.js';
import { MemoryCache } from '../test/extender/memory-cache.js';
import { ms, table } from './helpers/stats.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

const SIZES = flag('sizes', '1000,5000').split(',').map(Number);
const REQUESTS = Number(flag('requests', '2000'));
const PROFILE = flag('profile', '');
const here = dirname(fileURLToPath(import.meta.url));

/** How many feasible Nodes kube-scheduler looks for before it stops (numFeasibleNodesToFind). */
export function namesPerRequest(nodes: number): number {
  if (nodes < 100) return nodes;
  const pct = Math.max(5, 50 - Math.floor(nodes / 125));
  return Math.min(nodes, Math.max(100, Math.floor((nodes * pct) / 100)));
}

function node(name: string, i: number): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'bench-extender': 'x' }, annotations: { 'kwok.x-k8s.io/node': 'fake' }, resourceVersion: String(i) },
    spec: i % 97 === 0 ? { taints: [{ key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' }] } : {},
    status: { capacity: { cpu: '32', memory: '128Gi', pods: '110' }, allocatable: { cpu: '32', memory: '128Gi', pods: '110' } },
  };
}

function pod(name: string, nodeName: string): V1Pod {
  return {
    metadata: { name, namespace: 'bench', uid: `uid-${name}`, resourceVersion: '1' },
    spec: { nodeName, containers: [{ name: 'c', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] },
    status: { phase: 'Running' },
  };
}

/** The client, in its own process: posts the bodies in turn on one keep-alive connection. */
const CLIENT = `
const http = require('node:http');
const [port, n] = process.argv.slice(1).map(Number);
const bodies = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const post = (path, body) => new Promise((resolve, reject) => {
  const t0 = performance.now();
  const req = http.request({ port, host: '127.0.0.1', path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(path + ' ' + res.statusCode + ' ' + Buffer.concat(chunks))));
  });
  req.on('error', reject);
  req.end(body);
});
(async () => {
  const times = { filter: [], prioritize: [] };
  for (let i = 0; i < n; i++) {
    const b = bodies[i % bodies.length];
    times.filter.push(await post('/extender/filter', b));
    times.prioritize.push(await post('/extender/prioritize', b));
  }
  process.stdout.write(JSON.stringify(times));
})().catch((e) => { console.error(e); process.exit(1); });
`;

async function runClient(port: number, n: number, bodies: string[]): Promise<{ filter: number[]; prioritize: number[] }> {
  const child = spawn(process.execPath, ['-e', CLIENT, String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify(bodies));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`client exited ${code}`);
  return JSON.parse(out) as { filter: number[]; prioritize: number[] };
}

const p = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

async function measure(size: number): Promise<Record<string, number>> {
  const names = Array.from({ length: size }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
  const nodes = new MemoryCache<V1Node>(names.map(node));
  const pods = new MemoryCache<V1Pod>(names.flatMap((n, i) => [pod(`a-${i}`, n), pod(`b-${i}`, n)]));
  // One autoscaler managing every 10th Node: a few draining, quarantined, next or candidates.
  const phases = ['Ready', 'Ready', 'Draining', 'Failed', 'Ready', 'Ready', 'Ready', 'Ready'] as const;
  const machines = names.filter((_, i) => i % 10 === 0).map((name, j) => ({
    name,
    phase: phases[j % phases.length] ?? 'Ready',
    since: '2026-01-01T00:00:00Z',
    ...(j % 7 === 0 ? { disruption: 'Next' as const, reason: 'Unneeded' } : j % 5 === 0 ? { disruption: 'Candidate' as const } : {}),
  }));
  const autoscalers = new MemoryCache<BareMetalAutoscaler>([
    { metadata: { name: 'rack' }, spec: { inventory: { namespace: 'bamel-system', name: 'machines' } } as BareMetalAutoscaler['spec'], status: { machines } },
  ]);
  const registry = new Registry();
  const metrics = new ExtenderMetrics(registry);
  const extender = new Extender({ autoscalers, nodes, pods }, metrics);
  const app = buildExtenderServer({ extender, metrics, logger: pino({ level: 'silent' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const captured = JSON.parse(readFileSync(join(here, '..', 'test', 'fixtures', 'extender', 'filter-names-deployment.json'), 'utf8')) as { Pod: V1Pod };
  const per = namesPerRequest(size);
  // kube-scheduler starts each search where the last one stopped: a rotating window of names.
  const bodies = Array.from({ length: 20 }, (_, k) => {
    const start = (k * per) % size;
    const window = [...names.slice(start), ...names.slice(0, start)].slice(0, per);
    const Pod = { ...captured.Pod, metadata: { ...captured.Pod.metadata, name: `bench-${k}`, uid: `u-${k}` } };
    return JSON.stringify({ Pod, Nodes: null, NodeNames: window });
  });
  await runClient(port, Math.min(200, REQUESTS), bodies); // warm-up
  const session = PROFILE ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const times = await runClient(port, REQUESTS, bodies);
  const cpu = process.cpuUsage(cpu0);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(PROFILE, { recursive: true });
    writeFileSync(join(PROFILE, `extender-${size}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  await app.close();
  const cpuPerPairMs = (cpu.user + cpu.system) / 1000 / REQUESTS;
  return {
    nodes: size,
    namesPerRequest: per,
    requestKiB: Math.round((bodies[0]?.length ?? 0) / 1024),
    serverCpuMsPerPair: Number(cpuPerPairMs.toFixed(3)),
    filterP50Ms: Number(p(times.filter, 0.5).toFixed(3)),
    filterP99Ms: Number(p(times.filter, 0.99).toFixed(3)),
    prioritizeP50Ms: Number(p(times.prioritize, 0.5).toFixed(3)),
    prioritizeP99Ms: Number(p(times.prioritize, 0.99).toFixed(3)),
  };
}

const results: Record<string, number>[] = [];
for (const size of SIZES) results.push(await measure(size));
process.stdout.write(
  `${table(
    ['Nodes', 'names/request', 'body', 'server CPU per filter+prioritize', 'filter p50', 'filter p99', 'prioritize p50', 'prioritize p99'],
    results.map((r) => [String(r.nodes), String(r.namesPerRequest), `${r.requestKiB} KiB`, ms(r.serverCpuMsPerPair ?? NaN), ms(r.filterP50Ms ?? NaN), ms(r.filterP99Ms ?? NaN), ms(r.prioritizeP50Ms ?? NaN), ms(r.prioritizeP99Ms ?? NaN)]),
  )}\n`,
);
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ bench: 'extender-handler', sizes: results })}\n`);
