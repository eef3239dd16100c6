import t, { type Test } from 'tap';
import type * as k8s from '@kubernetes/client-node';
import { ResourceInformer, type ResourceInformerOptions } from '../../kube/informer.js';
import { localCluster, testNamespace, waitFor } from './helpers/cluster.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

// Every test has its own namespace and informer, and breaks only its own connections
// (through a TCP relay): the shared kube-apiserver is never stopped or restarted.

type Cm = k8s.V1ConfigMap;

interface Seen {
  type: 'add' | 'update' | 'delete';
  name: string;
  rv: string;
  oldRv?: string;
  data?: Record<string, string>;
}

/** Starts an informer on the namespace's ConfigMaps and records its events (except the root CA one). */
function informerFor(t: Test, kc: k8s.KubeConfig, namespace: string, extra: Partial<ResourceInformerOptions> = {}) {
  const informer = new ResourceInformer<Cm>({ kc, path: `/api/v1/namespaces/${namespace}/configmaps`, backoffInitialMs: 100, backoffMaxMs: 1000, ...extra });
  const seen: Seen[] = [];
  const errors: Error[] = [];
  const record = (type: Seen['type'], obj: Cm, old?: Cm): void => {
    const name = obj.metadata?.name ?? '';
    if (name === 'kube-root-ca.crt') return;
    seen.push({
      type,
      name,
      rv: obj.metadata?.resourceVersion ?? '',
      ...(old ? { oldRv: old.metadata?.resourceVersion ?? '' } : {}),
      ...(obj.data ? { data: obj.data } : {}),
    });
  };
  informer.on('add', (o) => record('add', o));
  informer.on('update', (o, old) => record('update', o, old));
  informer.on('delete', (o) => record('delete', o));
  informer.on('error', (e) => errors.push(e));
  informer.start();
  t.teardown(() => informer.stop());
  return { informer, seen, errors };
}

function cm(name: string, data: Record<string, string>, labels?: Record<string, string>): Cm {
  return { metadata: { name, ...(labels ? { labels } : {}) }, data };
}

/** What the API server holds now: name → resourceVersion. */
async function serverState(namespace: string, labelSelector?: string): Promise<Map<string, string>> {
  const { core } = await localCluster();
  const list = await core.listNamespacedConfigMap({ namespace, ...(labelSelector ? { labelSelector } : {}) });
  return new Map(
    list.items.filter((c) => c.metadata?.name !== 'kube-root-ca.crt').map((c) => [c.metadata?.name ?? '', c.metadata?.resourceVersion ?? '']),
  );
}

function cacheState(informer: ResourceInformer<Cm>): Map<string, string> {
  return new Map(
    informer
      .list()
      .filter((c) => c.metadata?.name !== 'kube-root-ca.crt')
      .map((c) => [c.metadata?.name ?? '', c.metadata?.resourceVersion ?? '']),
  );
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** Each (name, resourceVersion) reported at most once, and never an update that goes backwards. */
function checkNoDuplicates(t: Test, seen: Seen[]): void {
  const pairs = seen.filter((s) => s.type !== 'delete').map((s) => `${s.name}@${s.rv}`);
  t.equal(new Set(pairs).size, pairs.length, 'no object version was reported twice');
  for (const s of seen.filter((x) => x.type === 'update')) {
    if (s.oldRv !== undefined && BigInt(s.rv) <= BigInt(s.oldRv)) t.fail(`update of ${s.name} went from ${s.oldRv} to ${s.rv}`);
  }
}

t.test('add, update and delete of ConfigMaps arrive as events and in the cache', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('before', { v: '0' }) });
  const { informer, seen, errors } = informerFor(t, kc, ns);
  let synced = 0;
  informer.on('synced', () => synced++);

  await waitFor('synced', 15_000, async () => informer.hasSynced());
  t.equal(synced, 1);
  t.ok(informer.get(`${ns}/before`), 'the object that existed before start is in the cache');
  t.same(seen, [{ type: 'add', name: 'before', rv: seen[0]?.rv, data: { v: '0' } }], 'and was reported as added');
  const listed = informer.get(`${ns}/before`);
  t.equal(listed?.kind, 'ConfigMap', 'listed items get their kind back');
  t.equal(listed?.apiVersion, 'v1');

  const created = await core.createNamespacedConfigMap({ namespace: ns, body: cm('a', { v: '1' }) });
  await waitFor('add of a', 15_000, async () => seen.some((s) => s.type === 'add' && s.name === 'a'));
  t.equal(informer.get(`${ns}/a`)?.data?.v, '1');

  const updated = await core.replaceNamespacedConfigMap({ name: 'a', namespace: ns, body: { ...created, data: { v: '2' } } });
  await waitFor('update of a', 15_000, async () => seen.some((s) => s.type === 'update' && s.name === 'a'));
  const update = seen.find((s) => s.type === 'update');
  t.equal(update?.oldRv, created.metadata?.resourceVersion, 'the update carries the old object');
  t.equal(update?.rv, updated.metadata?.resourceVersion);
  t.same(update?.data, { v: '2' });

  await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
  await waitFor('delete of a', 15_000, async () => seen.some((s) => s.type === 'delete' && s.name === 'a'));
  t.equal(informer.get(`${ns}/a`), undefined);
  t.same(
    seen.map((s) => `${s.type}:${s.name}`),
    ['add:before', 'add:a', 'update:a', 'delete:a'],
    'exactly these events, in order',
  );
  t.same(errors, []);
  t.equal(informer.stats().lists, 1);
});

t.test('a periodic relist reports nothing for unchanged objects, and what changed', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  for (const n of ['x', 'y']) await core.createNamespacedConfigMap({ namespace: ns, body: cm(n, { v: n }) });
  const { informer, seen } = informerFor(t, kc, ns, { resyncMs: 400 });
  await waitFor('three relists', 20_000, async () => informer.stats().lists >= 3);
  t.same(seen.map((s) => `${s.type}:${s.name}`).sort(), ['add:x', 'add:y'], 'relists of unchanged objects are silent');
  await core.patchNamespacedConfigMap({ name: 'x', namespace: ns, body: [{ op: 'replace', path: '/data/v', value: 'x2' }] });
  await waitFor('update of x', 15_000, async () => seen.some((s) => s.type === 'update' && s.name === 'x'));
  const lists = informer.stats().lists;
  await waitFor('two more relists', 20_000, async () => informer.stats().lists >= lists + 2);
  t.same(seen.map((s) => `${s.type}:${s.name}`).sort(), ['add:x', 'add:y', 'update:x'], 'one update, whether seen by watch or relist');
});

t.test('a watch whose connection is reset resumes from its resourceVersion: nothing lost, nothing twice', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  const proxy = await startTcpProxy(kc);
  t.teardown(() => proxy.close());
  const { informer, seen } = informerFor(t, proxy.kc, ns, { resyncMs: 0 });
  await waitFor('synced', 15_000, async () => informer.hasSynced());

  const names = Array.from({ length: 12 }, (_, i) => `cm-${i}`);
  let cuts = 0;
  for (const [i, name] of names.entries()) {
    const created = await core.createNamespacedConfigMap({ namespace: ns, body: cm(name, { v: '1' }) });
    await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...created, data: { v: '2' } } });
    if (i % 3 === 2) {
      // Cut only an established watch, so that every break is of a stream, not of an open.
      const watches = informer.stats().watches;
      await waitFor('a watch to be open', 15_000, async () => proxy.openConnections() > 0);
      proxy.cut();
      cuts++;
      await waitFor('the watch to reopen', 15_000, async () => informer.stats().watches > watches);
    }
  }
  const state = await serverState(ns);
  await waitFor('the cache to match the server', 20_000, async () => sameMap(cacheState(informer), state));

  for (const name of names) {
    const mine = seen.filter((s) => s.name === name).map((s) => s.type);
    // The create and the update may be folded into one add when both happened during a
    // break; but each is reported at most once and the last state always arrives.
    t.ok(
      JSON.stringify(mine) === JSON.stringify(['add', 'update']) || JSON.stringify(mine) === JSON.stringify(['add']),
      `${name}: ${mine.join(',')}`,
    );
    t.equal(informer.get(`${ns}/${name}`)?.data?.v, '2');
  }
  checkNoDuplicates(t, seen);
  t.ok(informer.stats().watches >= cuts + 1, `the watch was reopened after each of ${cuts} cuts`);
  t.equal(informer.stats().lists, 1, 'resumed from the resourceVersion, without relisting');
});

t.test('a tiny server-side watch timeout: watches end and resume without loss or duplicates', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  const { informer, seen, errors } = informerFor(t, kc, ns, { resyncMs: 0, watchTimeoutSeconds: 1 });
  await waitFor('synced', 15_000, async () => informer.hasSynced());
  const deadline = Date.now() + 4000;
  let i = 0;
  while (Date.now() < deadline) {
    const name = `t-${i++}`;
    const created = await core.createNamespacedConfigMap({ namespace: ns, body: cm(name, { v: '1' }) });
    await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...created, data: { v: '2' } } });
    if (i % 2 === 0) await core.deleteNamespacedConfigMap({ name, namespace: ns });
    await new Promise((r) => setTimeout(r, 100));
  }
  const state = await serverState(ns);
  await waitFor('the cache to match the server', 20_000, async () => sameMap(cacheState(informer), state));
  await waitFor('every delete', 20_000, async () => seen.filter((s) => s.type === 'delete').length === Math.floor(i / 2));
  for (let k = 0; k < i; k++) {
    const types = seen.filter((s) => s.name === `t-${k}`).map((s) => s.type);
    t.same(types, k % 2 === 1 ? ['add', 'update', 'delete'] : ['add', 'update'], `t-${k}`);
  }
  checkNoDuplicates(t, seen);
  t.ok(informer.stats().watches >= 3, `${informer.stats().watches} watches over ~4 s`);
  t.equal(informer.stats().lists, 1, 'each watch resumed where the last one ended');
  t.same(errors, [], 'a server-side timeout is not an error');
});

t.test('deletions while disconnected are reported after the relist', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  const proxy = await startTcpProxy(kc);
  t.teardown(() => proxy.close());
  for (const n of ['keep', 'gone', 'changed']) await core.createNamespacedConfigMap({ namespace: ns, body: cm(n, { v: '1' }) });
  const { informer, seen, errors } = informerFor(t, proxy.kc, ns, { resyncMs: 0 });
  await waitFor('synced', 15_000, async () => informer.hasSynced());
  t.equal(seen.length, 3);
  const lastKnownGone = informer.get(`${ns}/gone`);

  proxy.partition(true);
  proxy.cut();
  await waitFor('an error from the cut-off informer', 15_000, async () => errors.length > 0);
  await core.deleteNamespacedConfigMap({ name: 'gone', namespace: ns });
  await core.patchNamespacedConfigMap({ name: 'changed', namespace: ns, body: [{ op: 'replace', path: '/data/v', value: '2' }] });
  await new Promise((r) => setTimeout(r, 500));
  t.equal(seen.length, 3, 'nothing arrives while cut off');
  proxy.partition(false);

  await waitFor('the delete', 20_000, async () => seen.some((s) => s.type === 'delete' && s.name === 'gone'));
  await waitFor('the update', 20_000, async () => seen.some((s) => s.type === 'update' && s.name === 'changed'));
  const del = seen.find((s) => s.type === 'delete');
  t.equal(del?.rv, lastKnownGone?.metadata?.resourceVersion, 'the delete carries the last state the cache knew');
  t.ok(informer.stats().lists >= 2, 'the informer relisted after failing to reconnect');
  t.equal(informer.get(`${ns}/gone`), undefined);
  t.equal(seen.filter((s) => s.name === 'keep').length, 1, 'the unchanged object was not reported again');
  t.ok(
    errors.every((e) => e instanceof Error && e.message.length > 0),
    'errors are reported as informational events',
  );
});

t.test('a label selector filters what is cached; objects entering and leaving it are added and deleted', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('in-1', {}, { tier: 'gold' }) });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('out-1', {}, { tier: 'bronze' }) });
  const { informer, seen } = informerFor(t, kc, ns, { labelSelector: 'tier=gold' });
  await waitFor('synced', 15_000, async () => informer.hasSynced());
  t.same(
    informer.list().map((c) => c.metadata?.name),
    ['in-1'],
  );

  await core.createNamespacedConfigMap({ namespace: ns, body: cm('in-2', {}, { tier: 'gold' }) });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('out-2', {}, { tier: 'bronze' }) });
  await core.patchNamespacedConfigMap({ name: 'out-1', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/tier', value: 'gold' }] });
  await core.patchNamespacedConfigMap({ name: 'in-1', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/tier', value: 'silver' }] });

  await waitFor('the cache to follow the selector', 15_000, async () =>
    sameMap(cacheState(informer), await serverState(ns, 'tier=gold')),
  );
  t.same(informer.list().map((c) => c.metadata?.name).sort(), ['in-2', 'out-1']);
  t.same(
    seen.map((s) => `${s.type}:${s.name}`),
    ['add:in-1', 'add:in-2', 'add:out-1', 'delete:in-1'],
    'out-2 never appears; out-1 joins and in-1 leaves',
  );
});

t.test('stop aborts the open watch and a stopped informer stays quiet', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'inf');
  const proxy = await startTcpProxy(kc);
  t.teardown(() => proxy.close());
  const { informer, seen } = informerFor(t, proxy.kc, ns);
  await waitFor('synced and watching', 15_000, async () => informer.hasSynced() && proxy.openConnections() > 0);
  const started = Date.now();
  await informer.stop();
  t.ok(Date.now() - started < 2000, 'stop returns promptly');
  await waitFor('the watch connection to close', 5000, async () => proxy.openConnections() === 0);
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('late', {}) });
  await new Promise((r) => setTimeout(r, 500));
  t.same(seen, []);

  informer.start();
  await waitFor('the late object after a restart', 15_000, async () => seen.some((s) => s.name === 'late'));
  t.same(
    seen.map((s) => `${s.type}:${s.name}`),
    ['add:late'],
  );
});
