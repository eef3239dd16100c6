import t from 'tap';
import { waitFor } from './helpers/cluster.js';
import { Replicas } from './helpers/replicas.js';
import { startScene, waitForPhase } from './helpers/scene.js';

// Pods arrive in waves for three minutes while the leader is paused, resumed and killed at
// random (the replicas kept at two, as a Deployment would). At every sample no more than
// maxMachines machines are on (as the simulated BMCs say, not as status says); at the end
// exactly the machines the pods need are on, each powered on once, and every pod is bound.

const SECONDS = Number(process.env.BAMEL_CHAOS_SECONDS ?? 180);
const MACHINES = 8;
const MAX = 5;
const LEASE = ['--leader-elect', '--lease-duration', '2', '--renew-deadline', '1.5', '--retry-period', '0.25', '--bmc-operation-timeout', '5', '--settle-grace', '0.5'];

t.test(`chaos for ${SECONDS} s: pods in waves, the leader paused, resumed and killed at random`, async (t) => {
  // A seeded sequence, printed, so a failing run can be replayed (BAMEL_CHAOS_SEED).
  const seed = Number(process.env.BAMEL_CHAOS_SEED ?? Date.now() % 100_000);
  let state = seed || 1;
  const random = (): number => ((state = (state * 48271) % 2147483647) / 2147483647);
  t.comment(`seed ${seed}`);
  const machines = Array.from({ length: MACHINES }, (_, i) => ({ name: `m${i}`, cpu: 8, memory: '32Gi', maxWatts: 100 + i, bootSeconds: 1 }));
  const scene = await startScene(t, 'chaos', machines);
  const bma = `chaos-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: MAX, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 3 }, scaleDown: { enabled: false } });
  const replicas = new Replicas((id) => scene.startManager([...LEASE, '--identity', id]), 2, 'chaos');
  t.teardown(() => replicas.stop());
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 90_000);

  const onNow = async (): Promise<string[]> => {
    const res = await fetch(`${scene.sim.control}/machines`);
    const list = (await res.json()) as { machine: string; power: string }[];
    return list.filter((m) => m.power === 'on').map((m) => m.machine);
  };
  let samples = 0;
  let mostOn = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const on = (await onNow()).length;
      samples++;
      mostOn = Math.max(mostOn, on);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const leader = async (): Promise<string | undefined> => {
    const leases = (await scene.custom
      .listNamespacedCustomObject({ group: 'coordination.k8s.io', version: 'v1', namespace: scene.ns, plural: 'leases' })
      .catch(() => ({}))) as { items?: { spec?: { holderIdentity?: string } }[] };
    const items = leases.items ?? [];
    return items.map((l) => l.spec?.holderIdentity).find((h) => h !== undefined && replicas.get(h) !== undefined);
  };
  const end = Date.now() + SECONDS * 1000;
  const waveEvery = (SECONDS * 1000) / (MAX + 1);
  let pods = 0;
  let nextWave = Date.now();
  const actions: string[] = [];
  while (Date.now() < end) {
    if (Date.now() >= nextWave && pods < MAX) {
      const wave = Math.min(MAX - pods, 1 + Math.floor(random() * 2));
      for (let i = 0; i < wave; i++) await scene.createPod(`p${pods++}`, { cpu: '6' });
      nextWave += waveEvery;
    }
    const target = (await leader()) ?? replicas.identities()[0];
    const roll = random();
    if (target) {
      if (roll < 0.3) {
        actions.push(`kill ${target}`);
        await replicas.kill(target);
      } else if (roll < 0.8) {
        // Shorter or longer than the lease: a hiccup, or a takeover and a stale leader resumed.
        const ms = 500 + Math.floor(random() * 4000);
        actions.push(`pause ${target} ${ms} ms`);
        replicas.pause(target);
        await new Promise((r) => setTimeout(r, ms));
        replicas.resume(target);
      }
    }
    await new Promise((r) => setTimeout(r, 2000 + Math.floor(random() * 4000)));
  }
  t.comment(`${actions.length} actions: ${actions.filter((a) => a.startsWith('kill')).length} kills, ${actions.filter((a) => a.startsWith('pause')).length} pauses`);

  for (let i = 0; i < pods; i++) {
    await waitFor(`pod p${i} bound`, 120_000, async () => (await scene.core.readNamespacedPod({ name: `p${i}`, namespace: scene.ns })).spec?.nodeName !== undefined);
  }
  // Settled: what is on stays on, nothing more lands.
  await new Promise((r) => setTimeout(r, 8000));
  sampling = false;
  await sampler;
  const on = await onNow();
  t.equal(on.length, pods, `exactly the ${pods} machines the ${pods} pods need are on (${on.join(', ')})`);
  const ons = scene.sim.powerEvents().filter((e) => e.action === 'on' && e.result !== 'refused');
  t.equal(new Set(ons.map((e) => e.machine)).size, ons.length, 'no machine powered on twice');
  t.ok(mostOn <= MAX, `maxMachines (${MAX}) never exceeded: at most ${mostOn} on over ${samples} samples`);
  t.ok(samples > SECONDS, `sampled throughout (${samples} samples)`);
});
