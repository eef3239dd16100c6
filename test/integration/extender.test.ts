import * as k8s from '@kubernetes/client-node';
import t from 'tap';
import { DRAINING_TAINT } from '../../api/v1alpha1/baremetalautoscaler.js';
import { createKwokNodes, isNodeReady, localCluster, testNamespace, waitFor } from './helpers/cluster.js';
import {
  askFilter,
  createAutoscaler,
  deleteAutoscaler,
  extenderAddress,
  heldLease,
  setMachines,
  startSecondScheduler,
  waitForExtenderView,
} from './helpers/extender.js';
import { managerMetrics, startManager } from './helpers/manager.js';

/**
 * The real kube-scheduler of the local control plane, configured with bamel's extender
 * (config/scheduler/), against a real `bamel manager` serving it. The manager never leads:
 * it elects on a Lease the test holds, so nothing reconciles the autoscaler and the test
 * writes the machines' standings (Draining, disruption Next/Candidate) into its status as
 * the scale-down controller would; the manager still watches it, as every replica does.
 */

t.test('kube-scheduler with the extender: drain-aware filtering, packing, both nodeCacheCapable modes, ignorable', async (t) => {
  const { core, apps } = await localCluster();
  const ns = await testNamespace(t, 'ext');
  const id = ns.split('-').slice(-2).join('');
  const node = (n: string): string => `ext-${id}-${n}`;
  const autoscaler = `ext-${id}`;
  const label = { 'bamel.io/test': ns };

  await heldLease(ns, 'bamel-ext');
  await createAutoscaler(autoscaler, { 'bamel.io/test-extender': ns }, ns);
  t.teardown(() => deleteAutoscaler(autoscaler));
  const manager = startManager([
    '--namespace', ns,
    '--leader-elect', '--leader-election-id', 'bamel-ext',
    '--autoscaler-selector', `bamel.io/test-extender=${ns}`,
    '--extender-bind-address', extenderAddress,
  ]);
  t.teardown(() => manager.stop());

  const cap = (cpu: number): Record<string, string> => ({ cpu: String(cpu), memory: `${cpu * 4}Gi`, pods: '110' });
  const drainingTaint = { key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' };
  await createKwokNodes(t, [
    // Filter group: three roomy Nodes that must get nothing, one small one that gets everything.
    { name: node('next'), capacity: cap(32), labels: { ...label, group: 'filter' } },
    { name: node('drain'), capacity: cap(32), labels: { ...label, group: 'filter' } },
    { name: node('taint'), capacity: cap(32), labels: { ...label, group: 'filter' }, taints: [drainingTaint] },
    { name: node('small'), capacity: cap(4), labels: { ...label, group: 'filter' } },
    // Packing group: two Nodes of the same size, one of them partly used.
    { name: node('full'), capacity: cap(8), labels: { ...label, group: 'pack' } },
    { name: node('empty'), capacity: cap(8), labels: { ...label, group: 'pack' } },
  ]);
  await waitFor('kwok Nodes Ready', 60_000, async () => {
    const nodes = await core.listNode({ labelSelector: `bamel.io/test=${ns}` });
    return nodes.items.length === 6 && nodes.items.every(isNodeReady);
  });
  await setMachines(autoscaler, [
    { name: node('next'), disruption: 'Next', reason: 'Unneeded' },
    { name: node('drain'), phase: 'Draining', reason: 'Unneeded' },
    { name: node('small') },
    { name: node('full') },
    { name: node('empty') },
  ]);
  await manager.waitForLog((l) => l.msg === 'scheduler extender serving');
  await waitForExtenderView([node('next'), node('drain'), node('taint')], [node('small'), node('full'), node('empty')]);

  // 5 of the 8 cpu of "full" are taken by a pod placed there directly.
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'filler' },
      spec: { nodeName: node('full'), terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'registry.invalid/x:1', resources: { requests: { cpu: '5', memory: '1Gi' } } }] },
    },
  });

  const tolerateDraining: k8s.V1Toleration[] = [{ key: DRAINING_TAINT, operator: 'Exists', effect: 'NoSchedule' }];
  const podsOf = async (app: string): Promise<k8s.V1Pod[]> => (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
  const deployment = async (name: string, replicas: number, group: string, cpu: string, schedulerName?: string): Promise<void> => {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: {
              ...(schedulerName ? { schedulerName } : {}),
              nodeSelector: { ...label, group },
              // The pods tolerate the draining taint: only the extender keeps them off.
              tolerations: tolerateDraining,
              terminationGracePeriodSeconds: 0,
              containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu, memory: '256Mi' } } }],
            },
          },
        },
      },
    });
  };
  const bound = (app: string, n: number): Promise<k8s.V1Pod[]> =>
    waitFor(`${n} pods of ${app} bound`, 60_000, async () => {
      const pods = (await podsOf(app)).filter((p) => p.spec?.nodeName);
      return pods.length >= n ? pods : false;
    });

  await t.test('control: the same scheduler without the extender puts the pod on the emptier Node', async (t) => {
    const plain = startSecondScheduler(`bamel-plain-${id}`, { extender: false });
    t.teardown(() => plain.stop());
    await plain.started;
    await deployment('control', 1, 'pack', '1', plain.schedulerName);
    const [p] = await bound('control', 1);
    t.equal(p?.spec?.nodeName, node('empty'), 'default scoring (LeastAllocated) spreads');
    await apps.deleteNamespacedDeployment({ name: 'control', namespace: ns });
    await plain.stop();
    await waitFor('control pod gone', 30_000, async () => (await podsOf('control')).length === 0);
  });

  for (const mode of ['nodeCacheCapable: true (the cluster scheduler)', 'nodeCacheCapable: false (a second kube-scheduler)'] as const) {
    const cached = mode.startsWith('nodeCacheCapable: true');
    const schedulerName = cached ? undefined : `bamel-nocache-${id}`;
    const second = schedulerName ? startSecondScheduler(schedulerName, { nodeCacheCapable: false }) : undefined;
    if (second) {
      t.teardown(() => second.stop());
      await second.started;
    }
    const suffix = cached ? 'c' : 'n';

    await t.test(`${mode}: never on a Node being drained, chosen to be drained next, or tainted draining, though they have the most room`, async (t) => {
      const app = `web-${suffix}`;
      await deployment(app, 4, 'filter', '500m', schedulerName);
      const pods = await bound(app, 4);
      t.same([...new Set(pods.map((p) => p.spec?.nodeName))], [node('small')], 'every replica on the small Node');
      // More than fits: the rest wait, and kube-scheduler says why the roomy Nodes refused.
      await apps.patchNamespacedDeploymentScale(
        { name: app, namespace: ns, body: { spec: { replicas: 12 } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      const pending = await waitFor('a replica left pending', 60_000, async () => {
        const all = await podsOf(app);
        const waiting = all.filter((p) => !p.spec?.nodeName && p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'));
        return all.filter((p) => p.spec?.nodeName).length >= 8 && waiting.length > 0 ? waiting[0] : false;
      });
      const message = pending?.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '';
      t.match(message, /bamel: machine is chosen to be drained next \(autoscaler ext-[^:]+: Unneeded\)/, 'the scheduler reports the extender’s reasons');
      t.match(message, /bamel: machine is being drained/);
      t.match(message, /bamel: Node has the autoscaling\.bamel\.io\/draining taint/);
      const all = await podsOf(app);
      t.same([...new Set(all.filter((p) => p.spec?.nodeName).map((p) => p.spec?.nodeName))], [node('small')], 'still none on the refused Nodes');
      await apps.deleteNamespacedDeployment({ name: app, namespace: ns });
    });

    await t.test(`${mode}: between two Nodes it lands on the one the extender prefers`, async (t) => {
      // Left to its default scoring (LeastAllocated) the scheduler would pick "empty".
      const first = `pack-${suffix}`;
      await deployment(first, 1, 'pack', '1', schedulerName);
      const [p1] = await bound(first, 1);
      t.equal(p1?.spec?.nodeName, node('full'), 'packed onto the fuller Node');
      await apps.deleteNamespacedDeployment({ name: first, namespace: ns });

      // The fuller Node becomes a scale-down candidate: the emptier one that stays on wins.
      await setMachines(autoscaler, [
        { name: node('next'), disruption: 'Next', reason: 'Unneeded' },
        { name: node('drain'), phase: 'Draining', reason: 'Unneeded' },
        { name: node('small') },
        { name: node('full'), disruption: 'Candidate' },
        { name: node('empty') },
      ]);
      await waitFor('the extender scoring the candidate lower', 30_000, async () => {
        const res = await fetch(`http://${extenderAddress}/extender/prioritize`, {
          method: 'POST',
          body: JSON.stringify({ Pod: { metadata: { name: 'probe' }, spec: { containers: [{ name: 'c' }] } }, NodeNames: [node('full'), node('empty')] }),
        });
        const scores = (await res.json()) as { Host: string; Score: number }[];
        return (scores[0]?.Score ?? 10) < (scores[1]?.Score ?? 0);
      });
      const second = `cand-${suffix}`;
      await deployment(second, 1, 'pack', '1', schedulerName);
      const [p2] = await bound(second, 1);
      t.equal(p2?.spec?.nodeName, node('empty'), 'kept off the scale-down candidate');
      await apps.deleteNamespacedDeployment({ name: second, namespace: ns });
      await setMachines(autoscaler, [
        { name: node('next'), disruption: 'Next', reason: 'Unneeded' },
        { name: node('drain'), phase: 'Draining', reason: 'Unneeded' },
        { name: node('small') },
        { name: node('full') },
        { name: node('empty') },
      ]);
      await waitForExtenderView([node('next'), node('drain'), node('taint')], [node('small'), node('full'), node('empty')]);
      // Wait for the deleted replicas to be gone, so the next round sees the same room.
      await waitFor('packing pods gone', 30_000, async () => (await core.listNamespacedPod({ namespace: ns })).items.filter((p) => p.metadata?.name !== 'filler' && p.spec?.nodeSelector?.group === 'pack').length === 0);
      await waitFor('filter pods gone', 30_000, async () => (await core.listNamespacedPod({ namespace: ns })).items.filter((p) => p.spec?.nodeSelector?.group === 'filter').length === 0);
    });
    if (second) await second.stop();
  }

  const metrics = await managerMetrics(manager);
  t.match(metrics, /bamel_extender_requests_total\{verb="filter",code="200"\} [1-9]/, '/metrics counts filter requests');
  t.match(metrics, /bamel_extender_requests_total\{verb="prioritize",code="200"\} [1-9]/, 'and prioritize requests');
  t.match(metrics, /bamel_extender_request_duration_seconds_bucket\{le="0.005",verb="filter"\} [1-9]/, 'with latency histograms');
  t.match(metrics, /bamel_extender_refused_nodes_total\{reason="DrainNext"\} [1-9]/);

  await t.test('the extender stopped (ignorable: true): scheduling goes on', async (t) => {
    await manager.stop();
    const down = await askFilter([node('small')]).catch((err: unknown) => err);
    t.ok(down instanceof Error, 'nothing answers on the extender port');
    await deployment('after', 2, 'pack', '500m');
    const pods = await bound('after', 2);
    t.equal(pods.length, 2, 'both replicas bound without the extender');
  });
});
