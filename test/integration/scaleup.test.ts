import t from 'tap';
import { isNodeReady, waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase } from './helpers/scene.js';

const gpuToleration = [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }];

t.test('a pending pod powers on the machine closest to ideal, its Node joins, the scheduler binds the pod', async (t) => {
  const scene = await startScene(t, 'up', [
    { name: 'gpu', cpu: 16, memory: '64Gi', taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }], maxWatts: 900 },
    { name: 'c32', cpu: 32, memory: '128Gi', maxWatts: 450 },
    { name: 'c64', cpu: 64, memory: '256Gi', maxWatts: 650 },
  ]);
  await scene.createAutoscaler('up-' + scene.ns.slice(-12), { minMachines: 0, maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  const bma = 'up-' + scene.ns.slice(-12);
  scene.startManager();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');

  await scene.createPod('wants-gpu', { cpu: '8', tolerations: gpuToleration });
  const gpu = scene.names.gpu as string;
  await waitForPhase(scene, bma, gpu, 'Ready', 60_000);
  const pod = await waitFor('pod bound and running', 60_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: 'wants-gpu', namespace: scene.ns });
    return p.spec?.nodeName && p.status?.phase === 'Running' ? p : false;
  });
  t.equal(pod.spec?.nodeName, gpu, 'the real kube-scheduler bound the pod to the gpu machine');
  t.ok(isNodeReady(await scene.core.readNode({ name: gpu })), 'its Node is Ready');
  t.equal(scene.powerOns('gpu'), 1, 'the gpu machine was powered on once');
  t.equal(scene.powerOns('c32') + scene.powerOns('c64'), 0, 'the bigger machines stayed off');

  const status = (await scene.autoscaler(bma)).status;
  t.equal(status?.readyMachines, 1);
  t.equal(status?.lastScaleEvent?.machine, gpu);
  t.equal(status?.lastScaleEvent?.direction, 'Up');
  t.match(status?.lastScaleEvent?.reason, /pending pod/);
  const podEvents = await scene.podEvents('wants-gpu');
  t.ok(
    podEvents.some((e) => e.reason === 'TriggeredPowerOn' && e.message?.startsWith(`${gpu}, expected Ready in ~2s`)),
    'the pod has a TriggeredPowerOn event naming the machine',
  );
  const bmaEvents = await scene.autoscalerEvents(bma);
  t.ok(bmaEvents.some((e) => e.reason === 'PowerOn' && e.message?.includes(gpu)), 'the autoscaler has a PowerOn event');
  t.ok(bmaEvents.some((e) => e.reason === 'MachineJoined' && e.message?.includes(gpu)), 'and a MachineJoined event');

  // A pod without the toleration never powers on the gpu machine.
  await scene.createPod('plain', { cpu: '20' });
  await waitForPhase(scene, bma, scene.names.c32 as string, 'Ready', 60_000);
  t.equal(scene.powerOns('gpu'), 1, 'the gpu machine was not powered on again');
  t.equal(scene.powerOns('c64'), 0, 'the 64-core machine stayed off (32 cores are closer to 20)');
  const plain = await waitFor('plain bound', 60_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: 'plain', namespace: scene.ns });
    return p.spec?.nodeName ? p : false;
  });
  t.equal(plain.spec?.nodeName, scene.names.c32);

  // A pod no machine can host gets an explanation instead of a power-on.
  await scene.createPod('too-big', { cpu: '200' });
  // Managers of other autoscalers (other tests running beside this one, other shards) may say
  // the same of their machines: this manager's event is the one that names this autoscaler.
  const ev = await waitFor('NoFeasibleMachine event', 30_000, async () => {
    const e = (await scene.podEvents('too-big')).find((x) => x.reason === 'NoFeasibleMachine' && (x.message ?? '').startsWith(`${bma}: `));
    return e ?? false;
  });
  t.match(ev.message, new RegExp(`^${bma}: `), 'it names the autoscaler');
  t.match(ev.message, /insufficient cpu/);
  t.match(ev.message, /taint gpu=true:NoSchedule not tolerated/);
});
