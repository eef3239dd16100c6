import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The node agent must not load @kubernetes/client-node: importing it costs a process ~70 MiB,
 * more than the agent's whole budget (issue #18: 64 MiB with 500 pods). Type-only imports
 * are free; a value import anywhere in the agent's module graph (cmd/ → bpf/ → kube/ → api/)
 * is caught here. Each check runs a child process with a resolve hook that writes down
 * every module it loads; only the ApiException class file (kube/errors.ts) may come from
 * client-node.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tracer = pathToFileURL(join(root, 'test', 'fixtures', 'cmd', 'trace-imports.mjs')).href;
const ALLOWED = new Set(['dist/gen/apis/exception.js']);

interface Traced {
  code: number;
  stderr: string;
  /** client-node's files the process loaded, relative to the package. */
  clientNode: string[];
  modules: string[];
}

async function traced(t: { teardown(fn: () => void): void }, args: string[]): Promise<Traced> {
  const dir = mkdtempSync(join(tmpdir(), 'bamel-imports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'modules.txt');
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [...process.execArgv, '--import', tracer, ...args], { cwd: root, env: { ...process.env, BAMEL_TRACE_IMPORTS: file } }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  let modules: string[] = [];
  try {
    modules = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    // nothing resolved: the assertions below say so
  }
  const marker = '/node_modules/@kubernetes/client-node/';
  const clientNode = [...new Set(modules.filter((u) => u.includes(marker)).map((u) => u.slice(u.indexOf(marker) + marker.length)))];
  return { code, stderr, clientNode, modules };
}

const disallowed = (r: Traced): string[] => r.clientNode.filter((f) => !ALLOWED.has(f));

t.test('the tracer sees client-node when it is loaded (the check can fail)', async (t) => {
  const r = await traced(t, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(root, 'kube', 'client.ts')).href)});`]);
  t.equal(r.code, 0, r.stderr);
  t.ok(r.clientNode.includes('dist/index.js'), 'kube/client.ts loads client-node');
  t.ok(disallowed(r).length > 0);
});

t.test('`bamel agent` loads no client-node: the CLI up to the kubeconfig', async (t) => {
  // Fails at the kubeconfig, after its module graph (the agent command's, loaded on demand) is in.
  const r = await traced(t, ['cmd/bamel.ts', 'agent', '--node-name', 'n1', '--kubeconfig', join(root, 'test', 'fixtures', 'kubeconfig', 'absent.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot read kubeconfig .*absent\.yaml/);
  t.ok(r.modules.some((u) => /\/bpf\/agent\.(ts|js)$/.test(u)), 'the agent module was loaded');
  t.ok(r.modules.some((u) => /\/kube\/informer\.(ts|js)$/.test(u)), 'the informer was loaded');
  t.same(disallowed(r), [], 'no client-node module beyond ApiException');
  t.same(r.modules.filter((u) => u.includes('/node_modules/@sinclair/typebox/')).slice(0, 3), [], 'no TypeBox (the API schemas)');
  t.notOk(r.modules.some((u) => /\/(manager|controller|extender|webhook)\//.test(u) && !u.includes('/node_modules/')), "none of the manager's modules");
});

t.test('the agent at work loads no client-node: Pod watch, poll, TrafficReport write', async (t) => {
  const url = (p: string): string => JSON.stringify(pathToFileURL(join(root, p)).href);
  // An API server that refuses everything: the informer lists (and retries), the write fails;
  // every module those paths need is loaded by then.
  const script = `
    import { createServer } from 'node:http';
    const { TrafficAgent, AgentMetrics } = await import(${url('bpf/agent.ts')});
    const { KubeAccess } = await import(${url('kube/kubeconfig.ts')});
    const { zeroCounters } = await import(${url('bpf/counters.ts')});
    const { pino } = await import('pino');
    let requests = 0;
    const server = createServer((req, res) => { requests++; res.writeHead(403, { 'content-type': 'application/json' }).end('{"kind":"Status","code":403,"message":"no"}'); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeAccess({ server: 'http://127.0.0.1:' + server.address().port, token: 't', source: 'test' });
    let now = 0;
    const c = zeroCounters(); const source = { read: () => { c.rxBytes += 1000; return new Map([[1n, c]]); }, overflow: () => ({ countersFull: 0, h2Resync: 0 }), forget: () => 0 };
    const agent = new TrafficAgent({ source, cgroupRoot: '/nonexistent', nodeName: 'n1', pollIntervalMs: 1000, reportIntervalMs: 1000, kc, metrics: new AgentMetrics(), logger: pino({ level: 'silent' }), now: () => now });
    await agent.start();
    now += 1000; await agent.poll();
    await agent.stop(); server.close();
    if (requests < 2) throw new Error('expected the list and the write to reach the server, got ' + requests + ' requests');`;
  const r = await traced(t, ['--input-type=module', '-e', script]);
  t.equal(r.code, 0, r.stderr);
  t.ok(r.modules.some((u) => /\/bpf\/report-writer\.(ts|js)$/.test(u)), 'the report writer was loaded');
  t.same(disallowed(r), [], 'no client-node module beyond ApiException');
  // The schemas are the manager's and the webhook's: the agent names the API from plain constants.
  t.same(r.modules.filter((u) => u.includes('/node_modules/@sinclair/typebox/')).slice(0, 3), [], 'no TypeBox (the API schemas)');
});
