import t from 'tap';
import { waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase } from './helpers/scene.js';

t.test('a BMC that cannot be reached: quarantined, the next machine powers on', async (t) => {
  const scene = await startScene(t, 'unr', [
    { name: 'best', cpu: 8, memory: '32Gi', maxWatts: 200 },
    { name: 'next', cpu: 16, memory: '64Gi', maxWatts: 300 },
  ]);
  const bma = `unr-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: 2, scaleUp: { cooldownSeconds: 0, joinTimeoutSeconds: 30 }, scaleDown: { enabled: false } });
  scene.startManager(['--bmc-operation-timeout', '6']);
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');
  await scene.sim.setFaults(scene.names.best as string, { unreachable: true });

  await scene.createPod('p', { cpu: '4' });
  const failed = await waitForPhase(scene, bma, scene.names.best as string, 'Failed', 60_000);
  const best = failed.status?.machines?.find((m) => m.name === scene.names.best);
  t.equal(best?.reason, 'PowerOnFailed');
  t.match(best?.message, /power on/);
  t.ok(best?.retryAfter, 'status says when the quarantine ends');
  await waitForPhase(scene, bma, scene.names.next as string, 'Ready', 60_000);
  const pod = await waitFor('pod bound', 60_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: 'p', namespace: scene.ns });
    return p.spec?.nodeName ? p : false;
  });
  t.equal(pod.spec?.nodeName, scene.names.next, 'the pod runs on the next machine');
  const events = await scene.autoscalerEvents(bma);
  t.ok(events.some((e) => e.reason === 'PowerOnFailed' && e.type === 'Warning' && e.message?.includes(scene.names.best as string)), 'a PowerOnFailed warning event');
  t.equal(scene.powerOns('best'), 0, 'the unreachable BMC never received a power request');
});

t.test('a machine that boots but never joins: powered off after the join timeout, quarantined, the next one', async (t) => {
  const scene = await startScene(t, 'nj', [
    { name: 'best', cpu: 8, memory: '32Gi', maxWatts: 200 },
    { name: 'next', cpu: 16, memory: '64Gi', maxWatts: 300 },
  ]);
  const bma = `nj-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: 2, scaleUp: { cooldownSeconds: 0, joinTimeoutSeconds: 30 }, scaleDown: { enabled: false } });
  scene.startManager();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');
  await scene.sim.setFaults(scene.names.best as string, { neverJoins: true });

  await scene.createPod('p', { cpu: '4' });
  await waitForPhase(scene, bma, scene.names.best as string, 'Joining', 30_000);
  const failed = await waitForPhase(scene, bma, scene.names.best as string, 'Failed', 90_000);
  const best = failed.status?.machines?.find((m) => m.name === scene.names.best);
  t.equal(best?.reason, 'JoinTimeout');
  t.equal(best?.failures, 1);
  t.ok(scene.sim.powerEvents(scene.names.best).some((e) => e.action !== 'on' && e.state === 'off'), 'the machine was powered off again');
  await waitForPhase(scene, bma, scene.names.next as string, 'Ready', 60_000);
  const events = await scene.autoscalerEvents(bma);
  t.ok(events.some((e) => e.reason === 'JoinTimeout' && e.type === 'Warning'), 'a JoinTimeout warning event');
  t.ok(events.some((e) => e.reason === 'PowerOff' && e.message?.includes('did not become Ready')), 'a PowerOff event saying why');
  t.equal(scene.powerOns('best'), 1, 'powered on once, not retried while quarantined');
});
