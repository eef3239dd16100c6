import t from 'tap';
import type { RunningManager } from './helpers/manager.js';
import { waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase } from './helpers/scene.js';

// Two managers; the leader is SIGKILLed right after it writes a power-on intent into
// status. The new leader settles the intent from the BMC's real power state before doing
// anything else: the machine is powered on exactly once (counted from the simulator), and
// the pod that asked for it gets it. Twenty times.

const REPEATS = Number(process.env.BAMEL_FAILOVER_REPEATS ?? 20);

t.test(`leader killed right after writing an intent, ${REPEATS} times: each machine powered on exactly once`, async (t) => {
  const machines = Array.from({ length: REPEATS }, (_, i) => ({ name: `m${String(i).padStart(2, '0')}`, cpu: 8, memory: '32Gi', maxWatts: 100 + i, bootSeconds: 1 }));
  const scene = await startScene(t, 'fo', machines);
  const bma = `fo-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: REPEATS, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 2 }, scaleDown: { enabled: false } });
  const lease = ['--leader-elect', '--lease-duration', '2', '--renew-deadline', '1.5', '--retry-period', '0.25'];
  let serial = 0;
  const managers = new Map<string, RunningManager>();
  const launch = (): void => {
    const id = `mgr-${serial++}`;
    managers.set(id, scene.startManager([...lease, '--identity', id]));
  };
  launch();
  launch();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 90_000);

  for (let i = 0; i < REPEATS; i++) {
    const machine = scene.names[`m${String(i).padStart(2, '0')}`] as string;
    await scene.createPod(`p${i}`, { cpu: '6' });
    // Watch for the intent, then kill its writer at once.
    const intent = await waitFor(`intent for pod p${i}`, 30_000, async () => {
      const a = await scene.autoscaler(bma);
      const m = a.status?.machines?.find((x) => x.phase === 'PoweringOn' && x.operation);
      return m?.operation ? { machine: m.name, holder: m.operation.holder ?? '' } : false;
    }, 10);
    t.equal(intent.machine, machine, `round ${i}: the cheapest free machine was chosen`);
    const leader = managers.get(intent.holder);
    t.ok(leader, `round ${i}: the intent names its writer (${intent.holder})`);
    await leader?.kill();
    managers.delete(intent.holder);
    launch();
    await waitForPhase(scene, bma, machine, 'Ready', 60_000);
    await waitFor(`pod p${i} bound`, 30_000, async () => {
      const p = await scene.core.readNamespacedPod({ name: `p${i}`, namespace: scene.ns });
      return p.spec?.nodeName === machine;
    });
    t.equal(scene.sim.powerEvents(machine).filter((e) => e.action === 'on').length, 1, `round ${i}: ${machine} powered on exactly once`);
  }
  const ons = scene.sim.powerEvents().filter((e) => e.action === 'on');
  t.equal(ons.length, REPEATS, `${REPEATS} power-on requests in all, one per machine`);
  t.equal(new Set(ons.map((e) => e.machine)).size, REPEATS);
  for (const m of managers.values()) await m.stop();
});
