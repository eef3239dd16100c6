import type { V1Pod } from '@kubernetes/client-node';
import t from 'tap';
import { slimPod } from '../../controller/pod-shape.js';
import { podRequests } from '../../scheduling/index.js';
import { ForeignIntents } from '../../controller/reconcile/settle.js';

t.test('slimPod keeps what the controller reads and drops the rest', async (t) => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'n', uid: 'u', resourceVersion: '7', labels: { app: 'a' }, annotations: { k: 'v' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'r', controller: true }], managedFields: [{ manager: 'kubectl' }] },
    spec: {
      nodeName: 'node-1',
      tolerations: [{ key: 'gpu', operator: 'Exists' }],
      volumes: [{ name: 'scratch', emptyDir: {} }],
      containers: [{ name: 'c', image: 'x', env: [{ name: 'SECRET', value: 's' }], command: ['run'], resources: { requests: { cpu: '2', memory: '1Gi' } }, ports: [{ containerPort: 80, hostPort: 8080 }] }],
      initContainers: [{ name: 'side', image: 'y', restartPolicy: 'Always', resources: { requests: { cpu: '500m' } } }],
      ephemeralContainers: [{ name: 'debug', image: 'z' }],
    },
    status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'PodScheduled', status: 'True', reason: 'Done', message: 'long text', lastTransitionTime: new Date(0) }], containerStatuses: [{ name: 'c', ready: true, restartCount: 3, image: 'x', imageID: 'sha', allocatedResources: { cpu: '2' } }] },
  };
  const before = JSON.stringify(pod);
  const slim = slimPod(pod) as V1Pod;
  t.equal(JSON.stringify(pod), before, 'the input is not changed');
  t.equal(slim.metadata?.managedFields, undefined, 'managedFields dropped');
  t.same([slim.metadata?.labels, slim.metadata?.annotations, slim.metadata?.ownerReferences?.[0]?.kind, slim.metadata?.resourceVersion], [{ app: 'a' }, { k: 'v' }, 'ReplicaSet', '7']);
  t.same(slim.spec?.containers, [{ name: 'c', resources: { requests: { cpu: '2', memory: '1Gi' } }, ports: [{ containerPort: 80, hostPort: 8080 }] }], 'runtime details dropped, resources and ports kept');
  t.same(slim.spec?.initContainers, [{ name: 'side', resources: { requests: { cpu: '500m' } }, restartPolicy: 'Always' }], 'a sidecar stays a sidecar');
  t.equal(slim.spec?.ephemeralContainers, undefined);
  t.same([slim.spec?.nodeName, slim.spec?.tolerations, slim.spec?.volumes], ['node-1', [{ key: 'gpu', operator: 'Exists' }], [{ name: 'scratch', emptyDir: {} }]]);
  t.same(slim.status?.conditions, [{ type: 'PodScheduled', status: 'True', reason: 'Done', lastTransitionTime: new Date(0) }]);
  t.equal(slim.status?.podIP, undefined);
  t.same(slim.status?.containerStatuses?.[0]?.allocatedResources, { cpu: '2' });
  t.same([...podRequests(slim)], [...podRequests(pod)], 'the requests the feasibility engine computes are the same');
});

t.test('ForeignIntents: an intent may land until the window has passed since it was first seen, on the monotonic clock', async (t) => {
  let mono = 1_000;
  const f = new ForeignIntents(() => mono, 10_000);
  t.equal(f.mayLandUntil('op-1', 50_000), 60_000, 'first seen now: the whole window ahead');
  mono += 4_000;
  t.equal(f.mayLandUntil('op-1', 54_000), 60_000, 'the same deadline 4 s later');
  t.equal(f.mayLandUntil('op-1', 999_000), 1_005_000, 'a wall clock that jumped does not shorten the window');
  t.equal(f.size, 1);
  f.retain(new Set(['op-2']));
  t.equal(f.size, 0, 'operations no longer in any status are forgotten');
});
