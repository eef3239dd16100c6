import * as k8s from '@kubernetes/client-node';
import t from 'tap';
import { NamespacedInformers, parseNamespaceList } from '../../kube/namespaced-informers.js';

t.test('--inventory-namespaces: a comma-separated list of namespace names', async (t) => {
  t.same(parseNamespaceList('bamel-system, racks ,', '--inventory-namespaces'), ['bamel-system', 'racks']);
  t.equal(parseNamespaceList(undefined, '--inventory-namespaces'), undefined, 'absent: every namespace');
  t.equal(parseNamespaceList(' , ', '--inventory-namespaces'), undefined, 'empty: every namespace');
  t.throws(() => parseNamespaceList('Racks', '--inventory-namespaces'), /--inventory-namespaces: "Racks" is not a namespace name/);
});

t.test('one informer per namespace, one cache, synced when all are', async (t) => {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  t.throws(() => new NamespacedInformers({ kc, groupVersionPath: '/api/v1', resource: 'secrets', namespaces: [] }), RangeError);
  const inf = new NamespacedInformers<k8s.V1Secret>({ kc, groupVersionPath: '/api/v1', resource: 'secrets', namespaces: ['a', 'b', 'a'] });
  t.notOk(inf.hasSynced(), 'not synced before any list');
  t.same(inf.list(), []);
  t.equal(inf.get('a/x'), undefined);
});
