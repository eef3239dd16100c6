import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { podIdentityOnly } from '../../bpf/agent.js';

/** The agent caches of each Pod on its node only what it reads: name, namespace, UID, version, owners. */

t.test('a Pod is cached as its identity and owners', async (t) => {
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: 'u1',
      resourceVersion: '42',
      labels: { app: 'web' },
      annotations: { big: 'x'.repeat(10_000) },
      managedFields: [{ manager: 'kubelet', operation: 'Update' }],
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node' },
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: 'rs', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: { nodeName: 'n1', containers: [{ name: 'web', image: 'web:1' }] },
    status: { phase: 'Running', podIP: '10.0.0.1' },
  };
  t.same(podIdentityOnly(pod), {
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: 'u1',
      resourceVersion: '42',
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node' },
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: 'rs', controller: true },
      ],
    },
  });
  t.same(podIdentityOnly({ metadata: { name: 'bare', namespace: 'ns', uid: 'u2', resourceVersion: '1' } }), { metadata: { name: 'bare', namespace: 'ns', uid: 'u2', resourceVersion: '1' } });
  t.same(podIdentityOnly({}), { metadata: {} });
});
