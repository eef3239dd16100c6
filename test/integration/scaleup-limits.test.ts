import t from 'tap';
import { waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase, type Scene } from './helpers/scene.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function onCount(scene: Scene): number {
  return Object.keys(scene.names).filter((short) => scene.powerOns(short) > 0).length;
}

t.test('20 pending pods at once: exactly as many machines as needed', async (t) => {
  const machines = Array.from({ length: 8 }, (_, i) => ({ name: `m${i}`, cpu: 16, memory: '64Gi', maxWatts: 400 + i }));
  const scene = await startScene(t, 'batch', machines);
  const bma = `batch-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: 8, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 8 }, scaleDown: { enabled: false } });
  scene.startManager();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');
  // 20 pods × 6 cores: two fit on a 16-core machine, so 10 would be needed; 8 machines exist.
  // Use 4 cores instead: four per machine, exactly 5 machines.
  await Promise.all(Array.from({ length: 20 }, (_, i) => scene.createPod(`p${i}`, { cpu: '4', memory: '1Gi' })));
  await waitFor('all 20 pods running', 120_000, async () => {
    const pods = await scene.core.listNamespacedPod({ namespace: scene.ns });
    return pods.items.filter((p) => p.status?.phase === 'Running').length === 20;
  }, 500);
  await sleep(3000);
  t.equal(onCount(scene), 5, 'five machines powered on for 20 four-core pods on 16-core machines');
  for (const short of Object.keys(scene.names)) t.ok(scene.powerOns(short) <= 1, `${short} powered on at most once`);
});

t.test('minMachines from zero, maxMachines, cooldown and dryRun', async (t) => {
  const machines = Array.from({ length: 5 }, (_, i) => ({ name: `m${i}`, cpu: 8, memory: '32Gi', maxWatts: 300 + i * 10 }));
  const scene = await startScene(t, 'lim', machines);
  const bma = `lim-${scene.ns.slice(-12)}`;
  // minMachines 2 from zero: the two cheapest machines come on with no pod at all.
  await scene.createAutoscaler(bma, { minMachines: 2, maxMachines: 3, scaleUp: { cooldownSeconds: 20, maxConcurrentPowerOns: 3 }, scaleDown: { enabled: false } });
  scene.startManager();
  const two = await waitFor('two machines Ready for minMachines', 120_000, async () => {
    const a = await scene.autoscaler(bma);
    return a.status?.readyMachines === 2 ? a : false;
  }, 500);
  const ready = (two.status?.machines ?? []).filter((m) => m.phase === 'Ready').map((m) => m.name).sort();
  t.same(ready, [scene.names.m0, scene.names.m1], 'the two lowest-draw machines');
  t.equal(onCount(scene), 2, 'minMachines: exactly two powered on');
  t.equal((await scene.autoscaler(bma)).status?.lastScaleEvent?.reason.includes('minMachines'), true);

  // The minMachines power-ons started a cooldown: a pod that needs a machine waits for it.
  const before = Date.now();
  await scene.createPod('a', { cpu: '7' });
  await scene.createPod('b', { cpu: '7' });
  await scene.createPod('c', { cpu: '7' });
  const limited = await waitFor('ScalingLimited by the cooldown', 30_000, async () => {
    const c = (await scene.autoscaler(bma)).status?.conditions?.find((x) => x.type === 'ScalingLimited');
    return c?.status === 'True' && c.reason === 'Cooldown' ? c : false;
  });
  t.match(limited.message, /scale-up cooldown until/);
  // Two pods fit on m0 and m1 (8 cores each, 7 requested): only one needs a new machine.
  await waitFor('a third machine', 60_000, async () => onCount(scene) === 3, 500);
  const lastUp = Date.parse((await scene.autoscaler(bma)).status?.lastScaleEvent?.time ?? '');
  t.ok(lastUp - before >= 15_000, `the next scale-up waited for the cooldown (${lastUp - before} ms after the pods)`);

  // maxMachines 3: more pods wait, ScalingLimited says why, nothing more powers on.
  await scene.createPod('d', { cpu: '7' });
  await scene.createPod('e', { cpu: '7' });
  const max = await waitFor('ScalingLimited by maxMachines', 60_000, async () => {
    const c = (await scene.autoscaler(bma)).status?.conditions?.find((x) => x.type === 'ScalingLimited');
    return c?.status === 'True' && c.reason === 'MaxMachines' ? c : false;
  });
  t.match(max.message, /maxMachines \(3\) reached/);
  await sleep(5000);
  t.equal(onCount(scene), 3, 'maxMachines never exceeded');

  // dryRun: decides and reports, never actuates.
  await scene.custom.patchClusterCustomObject(
    { group: 'autoscaling.bamel.io', version: 'v1alpha1', plural: 'baremetalautoscalers', name: bma, body: { spec: { dryRun: true, maxMachines: 5 } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  const dry = await waitFor('dry-run decision reported', 60_000, async () => {
    const c = (await scene.autoscaler(bma)).status?.conditions?.find((x) => x.type === 'Ready');
    return c?.reason === 'DryRun' && c.message.includes('would power on') ? c : false;
  });
  t.match(dry.message, /would power on .*\(PendingPods\)/);
  // Events are sent after the status is written: wait for it rather than race it.
  const would = await waitFor('a WouldPowerOn event', 30_000, async () => (await scene.autoscalerEvents(bma)).some((e) => e.reason === 'WouldPowerOn')).catch(() => false);
  t.ok(would, 'a WouldPowerOn event');
  await sleep(5000);
  t.equal(onCount(scene), 3, 'dryRun powered nothing on (counted from the simulator)');
  t.equal(scene.sim.powerEvents().length, 3, 'the BMCs received exactly three power requests in all');
});
