import t from 'tap';
import { VirtualCluster } from './virtual-cluster.js';

/**
 * A flapping workload on the real Reconciler (virtual clock): one machine's worth of pods
 * for 10 minutes, gone for 2, over and over. Without break-even every gap powers a machine
 * off and the return powers one on again; with it, the short off periods grow the hold of
 * the machines that went off too soon, and the cycling stops.
 */

const START = Date.parse('2026-11-30T00:00:00Z');
const HOURS = 4;
const MACHINES = ['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 120, idleWatts: 100, maxWatts: 300 }));
const BOOT_SECONDS = 120;
// 10 minutes of load, 2 minutes without, from minute 1.
const replicas = (now: number): number => {
  const minute = (now - START) / 60_000;
  return minute >= 1 && (minute - 1) % 12 < 10 ? 1 : 0;
};

async function run(breakEven: boolean) {
  const c = new VirtualCluster({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, breakEven: { enabled: breakEven } } },
    start: START,
    replicas,
    podCpu: '12',
    podMemory: '8Gi',
    jitter: 0.05,
    seed: 7,
  });
  await c.runUntil(START + HOURS * 3_600_000);
  return { cycles: c.powerOffs.length, powerOns: c.boots.length, pendingMax: Math.max(...c.pendingSeconds()), cluster: c };
}

t.test('flapping load: far fewer power cycles with break-even, pods never pending past boot + 30 s', async (t) => {
  const off = await run(false);
  const on = await run(true);
  const flaps = Math.floor((HOURS * 60 - 1) / 12);
  t.comment(`flapping workload over ${HOURS} h (${flaps} gaps of 2 minutes), machines booting in ${BOOT_SECONDS}s ±5%:`);
  t.comment(`  break-even off: ${off.cycles} power cycles (${off.powerOns} power-ons), pods pending at most ${off.pendingMax.toFixed(0)}s`);
  t.comment(`  break-even on:  ${on.cycles} power cycles (${on.powerOns} power-ons), pods pending at most ${on.pendingMax.toFixed(0)}s`);
  t.ok(off.cycles >= flaps - 2, `without break-even nearly every gap is a power cycle (${off.cycles} of ${flaps})`);
  t.ok(on.cycles * 4 <= off.cycles, `with break-even at most a quarter of them (${on.cycles} vs ${off.cycles})`);
  t.ok(on.pendingMax <= BOOT_SECONDS * 1.05 + 30, `pods pending at most boot time + 30 s (${on.pendingMax.toFixed(0)}s)`);
  const held = (on.cluster.status()?.machines ?? []).filter((m) => (m.breakEven?.holdSeconds ?? 0) > 0);
  t.ok(held.length > 0, 'the machines that went off too soon carry a hold');
  t.ok(
    on.cluster.status()?.machines?.some((m) => m.blockers?.some((b) => /held on until .*: its last power-off paid back too late/.test(b))) ||
      on.cluster.events.some((e) => /paid back too late/.test(e.message)),
    'the hold is said in words',
  );
});
