import { readFileSync } from 'node:fs';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import t from 'tap';
import { slimNode, slimPod } from '../../controller/pod-shape.js';
import { isMovable, mustLeave, nodeBlocker, podBlockers } from '../../controller/blockers.js';
import { compiledSignature, isDaemonSetPod, isMirrorPod, isNodeReady, unschedulableSince } from '../../controller/observe.js';
import { candidateFromNode, check, compileCandidate, compilePod, isTerminated, podRequests } from '../../scheduling/index.js';
import { ForeignIntents } from '../../controller/reconcile/settle.js';
import { node, pendingPod, runningPod } from './reconcile/fixtures.js';
import { container, pod as schedulingPod, requesting } from '../scheduling/fixtures/builders.js';

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

t.test('slimNode keeps what the controller and the extender read and drops the rest', async (t) => {
  const full: V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u', resourceVersion: '9', labels: { zone: 'a' }, annotations: { 'bamel.io/x': 'y' }, creationTimestamp: new Date(5), managedFields: [{ manager: 'kubelet' }] },
    spec: { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }], unschedulable: true, providerID: 'p' },
    status: {
      capacity: { cpu: '8', memory: '16Gi' },
      allocatable: { cpu: '7', memory: '15Gi' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: new Date(1), lastTransitionTime: new Date(2) }],
      images: [{ names: ['registry.example/big:1'], sizeBytes: 1e9 }],
      nodeInfo: { architecture: 'amd64', bootID: '', containerRuntimeVersion: '', kernelVersion: '', kubeProxyVersion: '', kubeletVersion: '', machineID: '', operatingSystem: 'linux', osImage: '', systemUUID: '' },
      addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    },
  };
  const before = JSON.stringify(full);
  const slim = slimNode(full) as V1Node;
  t.equal(JSON.stringify(full), before, 'the input is not changed');
  t.same(slim, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u', resourceVersion: '9', labels: { zone: 'a' }, annotations: { 'bamel.io/x': 'y' }, creationTimestamp: new Date(5) },
    spec: { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }], unschedulable: true, providerID: 'p' },
    status: { capacity: { cpu: '8', memory: '16Gi' }, allocatable: { cpu: '7', memory: '15Gi' }, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: new Date(2) }] },
  });
  t.ok(isNodeReady(slim));
});

t.test('replicas share what they repeat, frozen', async (t) => {
  const a = slimPod(pendingPod('2', { tolerations: [{ key: 'gpu', operator: 'Exists' }] })) as V1Pod;
  const b = slimPod(pendingPod('2', { tolerations: [{ key: 'gpu', operator: 'Exists' }] })) as V1Pod;
  t.equal(a.spec?.tolerations, b.spec?.tolerations, 'one tolerations array');
  t.equal(a.spec?.containers[0]?.resources, b.spec?.containers[0]?.resources, 'one resources object');
  t.equal(a.metadata?.ownerReferences, b.metadata?.ownerReferences);
  t.ok(Object.isFrozen(a.spec?.tolerations?.[0]), 'shared parts cannot be changed by one reader');
  t.not(a.metadata, b.metadata, 'what differs is their own');
  t.not(a.metadata?.name, b.metadata?.name);
});

/**
 * Every Pod and Node the tests build, and the Pods and Nodes kube-scheduler sent in the
 * captured extender requests: through the transforms (as the API server's JSON, as the
 * informer gets it), the feasibility engine, the drain's checks and the pod index's
 * questions answer alike.
 */
t.test('what feasibility and drain read survives the transforms', async (t) => {
  const json = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
  const pods: V1Pod[] = [
    pendingPod('3', { nodeSelector: { disk: 'ssd' }, tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }] }),
    runningPod('n1', '1', { annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false' } }),
    runningPod('n1', '1', { owner: 'DaemonSet' }),
    runningPod('n1', '1', { owner: 'none', namespace: 'kube-system' }),
    runningPod('n1', '1', { owner: 'Job', deleting: true }),
    requesting({ cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' }, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } } }),
    schedulingPod({ containers: [container('app', { cpu: '1' })], initContainers: [{ ...container('init', { cpu: '4' }) }, { ...container('side', { memory: '1Gi' }), restartPolicy: 'Always' }], overhead: { cpu: '250m' }, volumes: [{ name: 'd', emptyDir: {} }, { name: 'h', hostPath: { path: '/x' } }] }),
    { ...runningPod('n1', '1'), metadata: { ...runningPod('n1').metadata, annotations: { 'kubernetes.io/config.mirror': 'x' } } },
  ];
  const nodes: V1Node[] = [node('n1', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }], annotations: { 'autoscaling.bamel.io/scale-down-disabled': 'true' }, created: 1 }), node('n2', { ready: false, cpu: '64' })];
  for (const file of ['filter-nodes-deployment.json', 'filter-nodes-web.json', 'prioritize-nodes-web.json']) {
    const captured = JSON.parse(readFileSync(new URL(`../fixtures/extender/${file}`, import.meta.url), 'utf8')) as { Pod: V1Pod; Nodes: { items: V1Node[] } };
    pods.push(captured.Pod);
    nodes.push(...captured.Nodes.items);
  }
  t.ok(nodes.length >= 5 && pods.length >= 11);
  const slimPods = pods.map((p) => slimPod(json(p)) as V1Pod);
  const slimNodes = nodes.map((n) => slimNode(json(n)) as V1Node);
  const podFacts = (p: V1Pod): unknown => {
    const c = compilePod(p);
    return [compiledSignature(p, c), isDaemonSetPod(p), isMirrorPod(p), isTerminated(p), unschedulableSince(p), isMovable(p), mustLeave(p), podBlockers(p, { pdbs: [] })];
  };
  const nodeFacts = (n: V1Node, onIt: V1Pod[]): unknown => {
    const c = compileCandidate(candidateFromNode(n, onIt));
    return [isNodeReady(n), nodeBlocker(n), n.metadata?.creationTimestamp, c.labels, c.blockingTaints, [...c.allocatable], [...c.free]];
  };
  for (const [i, p] of pods.entries()) t.same(podFacts(slimPods[i] as V1Pod), podFacts(json(p)), `pod ${p.metadata?.name}`);
  for (const [j, n] of nodes.entries()) {
    t.same(nodeFacts(slimNodes[j] as V1Node, slimPods), nodeFacts(json(n), pods.map(json)), `node ${n.metadata?.name}`);
    for (const [i, p] of pods.entries()) {
      const verdict = (pod: V1Pod, nd: V1Node): unknown => check(compilePod(pod), compileCandidate(candidateFromNode(nd))).reasons.map((r) => r.message);
      t.same(verdict(slimPods[i] as V1Pod, slimNodes[j] as V1Node), verdict(json(p), json(n)), `pod ${p.metadata?.name} on node ${n.metadata?.name}`);
    }
  }
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
