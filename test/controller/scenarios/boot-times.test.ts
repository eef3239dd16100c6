import t from 'tap';
import { runScenario } from './simulated.js';

/**
 * Learned boot times on `bamel simulate`: the inventory says 300 s, the simulated machines
 * boot in 150 s (±5 %). A load that needs all three machines comes and goes; each
 * machine's learned boot (power-on request → Node Ready) converges on the simulator's.
 */

const REAL = 150;
const MACHINES = ['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 300, idleWatts: 100, maxWatts: 300 }));
const PODS = Array.from({ length: 12 }, (_, k) => [0, 1, 2].map(() => ({ at: 60 + k * 1800, cpu: '12', memory: '8Gi', duration: 1200 }))).flat();

t.test("learned boot times converge on the simulator's boot times within 10 %", async (t) => {
  const r = await runScenario({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 3 }, scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, maxConcurrentDrains: 3, maxPowerCyclesPerDay: 48, breakEven: { enabled: false } } },
    pods: PODS,
    bootSeconds: REAL,
    seed: 5,
  });
  t.comment(`inventory bootSeconds 300, the simulated machines boot in ${REAL} s ±5%:`);
  for (const s of r.obs.status?.machines ?? []) {
    const boot = s.boot;
    t.ok(boot && boot.samples >= 5, `${s.name}: ${boot?.samples} boots measured`);
    if (!boot) continue;
    const err = Math.abs(boot.p90Seconds - REAL) / REAL;
    const spread = (boot.recentSeconds ?? []).map((x) => Math.abs(x - REAL) / REAL);
    t.comment(`  ${s.name}: learned p90 ${boot.p90Seconds} s (error ${(err * 100).toFixed(1)} %), last ${boot.lastSeconds} s, recent ${(boot.recentSeconds ?? []).join(' ')}`);
    t.ok(err <= 0.1, `${s.name}: p90 within 10 % of ${REAL} s`);
    t.ok(spread.every((x) => x <= 0.1), `${s.name}: every measured boot within 10 %`);
  }
  const first = r.obs.events.find((e) => e.reason === 'PowerOn')?.message ?? '';
  const last = r.obs.events.filter((e) => e.reason === 'PowerOn').at(-1)?.message ?? '';
  t.match(first, /expected Ready in ~300s/, 'before any boot: the inventory');
  const eta = Number(/expected Ready in ~(\d+)s/.exec(last)?.[1]);
  t.ok(Math.abs(eta - REAL) / REAL <= 0.1, `after: the learned ETA (${eta} s)`);
});
