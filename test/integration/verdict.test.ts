import t from 'tap';
import { FEASIBILITY_ANNOTATION, FEASIBILITY_EVENT_REASON, parseMark } from '../../controller/verdict.js';
import { createKwokNodes, waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase } from './helpers/scene.js';

/**
 * kube-scheduler does not call extenders for a pod its own filters leave no Node for, so the
 * leader flags such pods from its pod watch: one annotation with the verdict against every
 * powered-off machine, and an event.
 */
t.test('an unplaceable pod is marked with the powered-off machines that could host it, and why not the others', async (t) => {
  const scene = await startScene(t, 'verdict', [
    { name: 'c8', cpu: 8, memory: '32Gi' },
    { name: 'c16', cpu: 16, memory: '64Gi' },
    { name: 'gpu', cpu: 32, memory: '64Gi', taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] },
  ]);
  const bma = `verdict-${scene.ns.slice(-12)}`;
  // dryRun: the machines stay off, so the verdict holds still while the test reads it.
  await scene.createAutoscaler(bma, { dryRun: true, maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');

  await scene.createPod('fits-some', { cpu: '12' });
  await scene.createPod('fits-none', { cpu: '100' });
  const markOf = async (pod: string): Promise<string | undefined> =>
    (await scene.core.readNamespacedPod({ name: pod, namespace: scene.ns })).metadata?.annotations?.[FEASIBILITY_ANNOTATION];

  const ourMark = async (pod: string) => {
    const mark = parseMark(await markOf(pod));
    return mark[bma] ? mark : undefined;
  };
  const some = await waitFor('fits-some marked', 30_000, () => ourMark('fits-some'));
  t.same(some[bma], {
    machines: 3,
    feasible: { count: 1, names: [scene.names.c16] },
    infeasible: [
      { count: 1, reasons: ['insufficient cpu (needs 12, has 8 free of 8)'], names: [scene.names.c8] },
      { count: 1, reasons: ['taint gpu=true:NoSchedule not tolerated'], names: [scene.names.gpu] },
    ],
  });
  const none = await waitFor('fits-none marked', 30_000, () => ourMark('fits-none'));
  t.same(none[bma]?.feasible, { count: 0, names: [] });
  t.equal(none[bma]?.infeasible.reduce((n, g) => n + g.count, 0), 3, 'each machine is explained');

  const event = async (pod: string) =>
    waitFor(`${FEASIBILITY_EVENT_REASON} event on ${pod}`, 30_000, async () =>
      (await scene.podEvents(pod)).find((e) => e.reason === FEASIBILITY_EVENT_REASON && (e.message ?? '').startsWith(`${bma}: `)),
    );
  const e1 = await event('fits-some');
  t.equal(e1.type, 'Normal');
  t.match(e1.message, new RegExp(`^${bma}: could run on 1 of 3 powered-off machines: ${scene.names.c16}; not on `));
  const e2 = await event('fits-none');
  t.equal(e2.type, 'Warning');
  t.match(e2.message, new RegExp(`^${bma}: fits none of the 3 powered-off machines; not on .*insufficient cpu`));

  // Nothing changes: nothing more is written (the reconciler keeps looking, the scheduler retries).
  // Only this autoscaler's part of the mark and its events: the managers of tests running
  // beside this one watch every pod too, and mark this one for their own autoscalers.
  const ours = async (): Promise<string> => JSON.stringify(parseMark(await markOf('fits-some'))[bma]);
  const before = await ours();
  await new Promise((r) => setTimeout(r, 4000));
  t.equal(await ours(), before, 'the mark stays as it is');
  const events = (await scene.podEvents('fits-some')).filter((e) => e.reason === FEASIBILITY_EVENT_REASON && (e.message ?? '').startsWith(`${bma}: `));
  t.equal(events.length, 1, 'one event');
  t.equal(events[0]?.count ?? 1, 1, 'written once');

  // Room appears (a Node joins by other means): the pod is scheduled and its mark goes.
  await createKwokNodes(t, [{ name: `${scene.ns.slice(-20)}-extra`, capacity: { cpu: '16', memory: '64Gi', pods: '110' }, labels: scene.poolLabel }]);
  await waitFor('fits-some scheduled and unmarked', 60_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: 'fits-some', namespace: scene.ns });
    return p.spec?.nodeName !== undefined && p.metadata?.annotations?.[FEASIBILITY_ANNOTATION] === undefined;
  });
  t.pass('the mark is removed once the pod is scheduled');
  t.ok(await markOf('fits-none'), 'the pod that still fits nowhere keeps its mark');
});
