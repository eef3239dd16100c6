import t from 'tap';
import { runScenario, waits } from './simulated.js';

/**
 * A flapping workload on `bamel simulate`: one machine's worth of load for 9 minutes that
 * returns 2 minutes after leaving (a boot of 60 s included), for 4 hours. Without break-even
 * every gap powers a machine off and the return powers one on; with it, a power-off that did
 * not pay back grows the hold of the machine that went off too soon, and the cycling stops.
 * (The wear limit is set out of the way, at 48 a day, to measure break-even alone.)
 */

const BOOT = 60;
const HOURS = 4;
const PERIOD = 720;
const MACHINES = ['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: BOOT, idleWatts: 100, maxWatts: 300 }));
const PODS = Array.from({ length: (HOURS * 3600) / PERIOD }, (_, k) => ({ at: 60 + k * PERIOD, cpu: '12', memory: '8Gi', duration: PERIOD - 180 }));

const run = (breakEven: boolean) =>
  runScenario({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, maxPowerCyclesPerDay: 48, breakEven: { enabled: breakEven } } },
    pods: PODS,
    seed: 7,
  });

t.test('flapping load: far fewer power cycles with break-even, pods never pending past boot + 30 s', async (t) => {
  const off = await run(false);
  const on = await run(true);
  const maxWait = (r: typeof on) => Math.max(...waits(r));
  t.comment(`flapping load for ${HOURS} h (${PODS.length} returns, 2 minutes after leaving), boots of ${BOOT} s ±5%, break-even ${BOOT * 3 + 60} s:`);
  t.comment(`  break-even off: ${off.summary.powerCycles.total} power-ons, ${off.summary.flaps} flaps, pods pending at most ${maxWait(off).toFixed(0)} s (simulator: ${off.summary.pendingSeconds.max} s), ${off.summary.energyKWh} kWh`);
  t.comment(`  break-even on:  ${on.summary.powerCycles.total} power-ons, ${on.summary.flaps} flaps, pods pending at most ${maxWait(on).toFixed(0)} s (simulator: ${on.summary.pendingSeconds.max} s), ${on.summary.energyKWh} kWh`);
  t.ok(off.summary.powerCycles.total >= PODS.length - 2, `without break-even nearly every return is a power-on (${off.summary.powerCycles.total} of ${PODS.length})`);
  t.ok(on.summary.powerCycles.total * 4 <= off.summary.powerCycles.total, `with break-even at most a quarter as many (${on.summary.powerCycles.total} vs ${off.summary.powerCycles.total})`);
  t.ok(on.summary.pendingSeconds.max <= BOOT * 1.05 + 30, `with break-even pods pending at most boot + 30 s (${on.summary.pendingSeconds.max} s)`);
  t.equal(on.summary.unplacedPods, 0);
  t.ok(on.summary.energyKWh < off.summary.energyKWh, `and less energy (${on.summary.energyKWh} vs ${off.summary.energyKWh} kWh: the boots cost more than the idle minutes)`);
  const held = (on.obs.status?.machines ?? []).filter((m) => (m.breakEven?.holdSeconds ?? 0) > 0);
  t.ok(held.length > 0, `the machines that went off too soon carry a hold (${held.map((m) => `${m.name} ${m.breakEven?.holdSeconds}s`).join(', ')})`);
  const said = on.obs.events.find((e) => /held on until .*: its last power-off paid back too late/.test(e.message));
  t.ok(said, `the hold is said in words: ${said?.reason}: ${said?.message}`);
});
