import t from 'tap';
import { ResourceInformer } from '../../kube/informer.js';
import { localCluster, testNamespace, waitFor } from './helpers/cluster.js';

// The controller watches credentials Secrets for changes only: their data never enters its memory.
t.test('a metadata-only informer sees Secrets without their data', async (t) => {
  const { kc, core } = await localCluster();
  const ns = await testNamespace(t, 'meta');
  const inf = new ResourceInformer<{ metadata?: { name?: string; resourceVersion?: string }; data?: unknown; kind?: string }>({
    kc,
    path: `/api/v1/namespaces/${ns}/secrets`,
    metadataOnly: true,
  });
  const seen: string[] = [];
  inf.on('add', (s) => seen.push(`add ${s.metadata?.name}`));
  inf.on('update', (s) => seen.push(`update ${s.metadata?.name}`));
  inf.start();
  t.teardown(() => inf.stop());
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password: 'hunter2-secret' } } });
  const s = await waitFor('the Secret in the cache', 20_000, async () => inf.get(`${ns}/bmc`));
  t.equal(s.kind, 'PartialObjectMetadata', 'the API server sent metadata only');
  t.equal(s.data, undefined, 'no data in the cache');
  t.notOk(JSON.stringify(inf.list()).includes('hunter2'), 'the password is nowhere in the cache');
  await core.patchNamespacedSecret(
    { name: 'bmc', namespace: ns, body: { stringData: { password: 'rotated' } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  await waitFor('the change seen', 20_000, async () => seen.includes('update bmc'));
  t.pass('a changed Secret is an update event');
});
