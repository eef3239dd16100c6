import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { ResourceInformer } from '../../kube/informer.js';

// The informer against a scripted fake API server: the protocol corners a real server
// will not produce on demand (410 as a status and as an ERROR event, expired continue
// tokens, bookmarks). The real API server is exercised in test/integration/informer.test.ts.

type Handler = (url: URL, req: IncomingMessage, res: ServerResponse) => void;

interface FakeServer {
  kc: k8s.KubeConfig;
  requests: URL[];
  openWatches: () => number;
  close(): Promise<void>;
}

async function fakeApiServer(script: Handler[]): Promise<FakeServer> {
  const requests: URL[] = [];
  let open = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push(url);
    const next = script.shift();
    if (!next) {
      res.writeHead(500).end('script exhausted');
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      open++;
      res.on('close', () => open--);
    }
    next(url, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'token' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return {
    kc,
    requests,
    openWatches: () => open,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cm = (name: string, rv: string, v = rv): k8s.V1ConfigMap => ({ metadata: { name, namespace: 'ns', resourceVersion: rv }, data: { v } });

function list(items: k8s.V1ConfigMap[], rv: string, cont?: string): Handler {
  return (_url, _req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMapList', metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) }, items }));
  };
}

function status(code: number, reason: string, message: string): Handler {
  return (_url, _req, res) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
  };
}

/** A watch that sends these events and ends, or stays open when `hold`. */
function watch(events: { type: string; object: unknown }[], hold = false): Handler {
  return (_url, _req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    for (const e of events) res.write(`${JSON.stringify(e)}\n`);
    if (!hold) res.end();
  };
}

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('410 as an ERROR event and as a status, expired continue tokens and bookmarks', async (t) => {
  const server = await fakeApiServer([
    // the first list, in pages of one
    list([cm('a', '5')], '', 'page-2'),
    list([cm('b', '6')], '10'),
    watch([
      { type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '12' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 10 (15)' } },
    ]),
    // relist: b is gone
    list([cm('a', '5')], '20'),
    status(410, 'Expired', 'too old resource version: 20 (21)'),
    // relist whose continue token expires half way: listed again whole
    list([cm('a', '21')], '', 'page-2'),
    status(410, 'Expired', 'The provided continue parameter is too old'),
    list([cm('a', '21')], '22'),
    watch([
      { type: 'MODIFIED', object: { apiVersion: 'v1', kind: 'ConfigMap', ...cm('a', '23') } },
      { type: 'MODIFIED', object: { apiVersion: 'v1', kind: 'ConfigMap', ...cm('a', '23') } },
      { type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '30' } } },
    ]),
    watch([], true),
  ]);
  t.teardown(() => server.close());

  const informer = new ResourceInformer<k8s.V1ConfigMap>({
    kc: server.kc,
    path: '/api/v1/namespaces/ns/configmaps',
    labelSelector: 'app=x',
    pageSize: 1,
    watchTimeoutSeconds: 60,
    backoffInitialMs: 10,
  });
  const events: string[] = [];
  const errors: Error[] = [];
  informer.on('add', (o) => events.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  informer.on('update', (o, old) => events.push(`update ${o.metadata?.name}@${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`));
  informer.on('delete', (o) => events.push(`delete ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  informer.on('error', (e) => errors.push(e));
  informer.start();
  t.teardown(() => informer.stop());

  await until('the last watch to open', () => server.openWatches() === 1 && server.requests.length === 10);
  t.same(events, ['add a@5', 'add b@6', 'delete b@6', 'update a@5->21', 'update a@21->23'], 'a duplicate MODIFIED is not reported twice');
  t.equal(informer.lastResourceVersion(), '30', 'bookmarks move the resourceVersion');
  t.same(errors, [], '410 is routine, not an error');
  t.equal(informer.stats().lists, 3);

  const q = server.requests.map((u) => Object.fromEntries(u.searchParams));
  t.match(q[0], { labelSelector: 'app=x', limit: '1' });
  t.notOk(q[0]?.continue);
  t.match(q[1], { continue: 'page-2', limit: '1' });
  t.match(q[2], { watch: 'true', resourceVersion: '10', allowWatchBookmarks: 'true', labelSelector: 'app=x' });
  const timeout = Number(q[2]?.timeoutSeconds);
  t.ok(timeout >= 60 && timeout < 120, `the watch timeout ${timeout} is jittered within [60, 120)`);
  t.match(q[4], { watch: 'true', resourceVersion: '20' });
  t.notOk(q[7]?.limit, 'after an expired continue token the list is not paged');
  t.notOk(q[7]?.continue);
  t.match(q[9], { watch: 'true', resourceVersion: '30' });

  await informer.stop();
  await until('the watch to be closed', () => server.openWatches() === 0, 2000);
  t.pass('stop closed the open watch');
});

t.test('errors other than 410: reported, backed off, and the informer carries on', async (t) => {
  const server = await fakeApiServer([
    status(500, 'InternalError', 'etcd is sad'),
    list([cm('a', '1')], '2'),
    status(503, 'ServiceUnavailable', 'try later'),
    // a watch that could not be opened is followed by a relist
    list([cm('a', '1'), cm('b', '3')], '4'),
    watch([{ type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'watch broke' } }]),
    // an ERROR event other than 410 resumes from the last resourceVersion, no relist
    watch([{ type: 'ADDED', object: cm('c', '5') }]),
    (_u, _r, res) => {
      res.writeHead(200);
      res.write('this is not json\n');
    },
    watch([], true),
  ]);
  t.teardown(() => server.close());
  const informer = new ResourceInformer<k8s.V1ConfigMap>({ kc: server.kc, path: '/api/v1/namespaces/ns/configmaps', backoffInitialMs: 10 });
  const events: string[] = [];
  const errors: Error[] = [];
  let synced = 0;
  informer.on('add', (o) => events.push(`add ${o.metadata?.name}`));
  informer.on('synced', () => synced++);
  informer.on('error', (e) => errors.push(e));
  informer.on('add', () => {
    throw new Error('a broken handler');
  });
  informer.start();
  t.teardown(() => informer.stop());

  await until('the last watch', () => server.requests.length === 8 && server.openWatches() === 1);
  t.same(events, ['add a', 'add b', 'add c'], 'a throwing handler does not stop the others');
  t.equal(synced, 1);
  t.equal(errors.length, 4);
  t.match(errors[0]?.message, /listing \/api\/v1\/namespaces\/ns\/configmaps: 500 etcd is sad/);
  t.match(errors[1]?.message, /watching .*: 503 try later/);
  t.match(errors[2]?.message, /watch broke/);
  t.match(errors[3]?.message, /undecodable event/);
  const q = server.requests.map((u) => Object.fromEntries(u.searchParams));
  t.match(q[5], { watch: 'true', resourceVersion: '4' });
  t.match(q[6], { watch: 'true', resourceVersion: '5' });
  t.equal(informer.stats().lists, 2);
});

t.test('an error with no listener for it is harmless', async (t) => {
  const server = await fakeApiServer([status(403, 'Forbidden', 'no'), list([], '1'), watch([], true)]);
  t.teardown(() => server.close());
  const informer = new ResourceInformer<k8s.V1ConfigMap>({ kc: server.kc, path: '/api/v1/configmaps', backoffInitialMs: 10 });
  informer.start();
  t.teardown(() => informer.stop());
  await until('synced', () => informer.hasSynced());
  t.same(informer.list(), []);
  t.equal(informer.stats().errors, 1);
});
