import t from 'tap';
import { p90 } from '../../../controller/boot-times.js';
import { VirtualCluster } from './virtual-cluster.js';

/**
 * Learned boot times on the real Reconciler (virtual clock, 1 s steps): the inventory says
 * 300 s for every machine, but they boot in 90, 150 and 240 s (±5 %). A load that needs all
 * three comes and goes; each machine's learned boot (power-on request → Node Ready) converges
 * on what the simulated machine really took.
 */

const START = Date.parse('2026-11-30T00:00:00Z');
const TRUE_BOOT: Record<string, number> = { m1: 90, m2: 150, m3: 240 };
const MACHINES = Object.keys(TRUE_BOOT).map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 300, trueBootSeconds: TRUE_BOOT[name] as number }));
const replicas = (now: number): number => ((now - START) % 1_800_000 < 1_200_000 ? 3 : 0);

t.test('learned boot times converge on the machines\' real boot times within 10 %', async (t) => {
  const c = new VirtualCluster({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 3 }, scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, maxConcurrentDrains: 3, breakEven: { enabled: false } } },
    start: START,
    replicas,
    podCpu: '12',
    podMemory: '8Gi',
    jitter: 0.05,
    seed: 5,
    stepMs: 1000,
  });
  await c.runUntil(START + 6 * 3_600_000);
  for (const s of c.status()?.machines ?? []) {
    const real = c.boots.filter((b) => b.machine === s.name && b.requestedAt < c.now - 400_000).map((b) => b.seconds);
    const boot = s.boot;
    t.ok(boot && boot.samples >= 5, `${s.name}: ${boot?.samples} boots measured`);
    if (!boot) continue;
    const truthP90 = p90(real.slice(-16));
    const err = Math.abs(boot.p90Seconds - truthP90) / truthP90;
    const lastErr = Math.abs(boot.lastSeconds - (real[real.length - 1] ?? 0)) / (real[real.length - 1] ?? 1);
    t.comment(`${s.name}: inventory 300s, really ${TRUE_BOOT[s.name]}s ±5%: learned p90 ${boot.p90Seconds}s vs real p90 ${truthP90.toFixed(1)}s (error ${(err * 100).toFixed(1)}%), last ${boot.lastSeconds}s (error ${(lastErr * 100).toFixed(1)}%)`);
    t.ok(err <= 0.1, `${s.name}: p90 within 10 %`);
    t.ok(lastErr <= 0.1, `${s.name}: last boot within 10 %`);
  }
  const eta = c.events.filter((e) => e.reason === 'PowerOn').at(-1)?.message ?? '';
  t.match(eta, /expected Ready in ~(\d+)s/, 'the power-on event gives the learned ETA');
});
