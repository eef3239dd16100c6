import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { binDir, createKwokNodes, isNodeReady, localCluster, testNamespace, uniqueName, waitFor } from './helpers/cluster.js';

const execFileP = promisify(execFile);

t.test('the binaries report their pinned versions', async (t) => {
  for (const [bin, expect] of [
    ['kube-apiserver', /^Kubernetes v1\.36\.\d+$/m],
    ['kube-controller-manager', /^Kubernetes v1\.36\.\d+$/m],
    ['kube-scheduler', /^Kubernetes v1\.36\.\d+$/m],
    ['etcd', /etcd Version: 3\.6\.\d+/],
    ['kwok', /v0\.8\.\d+/],
  ] as const) {
    const { stdout } = await execFileP(join(binDir, bin), ['--version']);
    t.match(stdout, expect, `${bin} --version`);
  }
});

t.test('kwok Nodes become Ready and a Deployment runs on them', async (t) => {
  const { core, apps } = await localCluster();
  const ns = await testNamespace(t, 'cp');
  const nodes = [uniqueName('kwok-a'), uniqueName('kwok-b')];
  await createKwokNodes(
    t,
    nodes.map((name) => ({ name, capacity: { cpu: '8', memory: '32Gi', pods: '110' }, labels: { 'bamel.io/test-pool': ns } })),
  );
  for (const name of nodes) {
    await waitFor(`Node ${name} Ready`, 30_000, async () => isNodeReady(await core.readNode({ name })));
  }
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 4,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            nodeSelector: { 'bamel.io/test-pool': ns },
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists' }],
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'web', image: 'registry.invalid/web:1', resources: { requests: { cpu: '500m', memory: '1Gi' } } }],
          },
        },
      },
    },
  });
  const pods = await waitFor('4 running pods', 60_000, async () => {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
    const running = list.items.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName);
    return running.length === 4 ? running : false;
  });
  for (const p of pods) t.ok(nodes.includes(p.spec?.nodeName ?? ''), `${p.metadata?.name} bound to a kwok node by kube-scheduler`);
  const bound = pods[0]?.status?.conditions?.find((c) => c.type === 'PodScheduled');
  t.equal(bound?.status, 'True', 'PodScheduled is True');
});

t.test('an eviction against a PDB with minAvailable = replicas is refused with 429', async (t) => {
  const { core, apps, policy } = await localCluster();
  const ns = await testNamespace(t, 'pdb');
  const node = uniqueName('kwok-pdb');
  await createKwokNodes(t, [{ name: node, capacity: { cpu: '8', memory: '32Gi', pods: '110' }, labels: { 'bamel.io/test-pool': ns } }]);
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'db' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'db' } },
        template: {
          metadata: { labels: { app: 'db' } },
          spec: {
            nodeSelector: { 'bamel.io/test-pool': ns },
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'db', image: 'registry.invalid/db:1' }],
          },
        },
      },
    },
  });
  await policy.createNamespacedPodDisruptionBudget({
    namespace: ns,
    body: { metadata: { name: 'db' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'db' } } } },
  });
  const pods = await waitFor('2 running pods', 60_000, async () => {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=db' });
    const ready = list.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === 2 ? ready : false;
  });
  // The disruption controller (kube-controller-manager) must have observed the pods.
  const pdb = await waitFor('PDB status computed', 60_000, async () => {
    const p = await policy.readNamespacedPodDisruptionBudget({ name: 'db', namespace: ns });
    return p.status?.observedGeneration === p.metadata?.generation && p.status?.currentHealthy === 2 ? p : false;
  });
  t.equal(pdb.status?.disruptionsAllowed, 0, 'no disruption allowed');
  const victim = pods[0]?.metadata?.name ?? '';
  let status = 0;
  let message = '';
  try {
    await core.createNamespacedPodEviction({
      name: victim,
      namespace: ns,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: victim, namespace: ns } },
    });
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      status = err.code;
      message = String(err.body);
    } else throw err;
  }
  t.equal(status, 429, 'eviction refused with 429 Too Many Requests');
  t.match(message, /disruption budget/i, 'the refusal names the disruption budget');
  const still = await core.readNamespacedPod({ name: victim, namespace: ns });
  t.notOk(still.metadata?.deletionTimestamp, 'the pod was not deleted');
});
