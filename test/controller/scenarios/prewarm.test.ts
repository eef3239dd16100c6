import t from 'tap';
import { runScenario, START, waits } from './simulated.js';

/**
 * Pre-warming on a recurring ramp, on `bamel simulate`: every day at 09:00 UTC two
 * machines' worth of pods arrive for two hours. On the first day the autoscaler reacts (the
 * pods wait a boot); from the second it has learned the ramp and powers the machines on a
 * learned boot time plus lookaheadSeconds ahead, so they are Ready before the pods arrive.
 */

const DAY = 86_400;
const RAMP = 9 * 3600;
const BOOT = 240;
const LOOKAHEAD = 120;
const DAYS = 3;
const MACHINES = ['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: BOOT, idleWatts: 100, maxWatts: 300 }));
const PODS = Array.from({ length: DAYS }, (_, d) => [0, 1].map(() => ({ at: d * DAY + RAMP, cpu: '12', memory: '8Gi', duration: 7200 }))).flat();

t.test('pre-warming: the machines are Ready before a recurring ramp arrives', async (t) => {
  const r = await runScenario({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0, predictive: { enabled: true, lookaheadSeconds: LOOKAHEAD } } },
    pods: PODS,
    seed: 11,
  });
  t.comment(`a daily ramp at 09:00 UTC (2 machines' worth for 2 h), boots of ${BOOT} s ±5%, lookaheadSeconds ${LOOKAHEAD}:`);
  for (let d = 0; d < DAYS; d++) {
    const ramp = START + (d * DAY + RAMP) * 1000;
    const around = (at: number): boolean => at > ramp - 3_600_000 && at <= ramp + 3_600_000;
    const margins = r.obs.readyAt.filter((x) => around(x.at)).map((x) => Math.round((ramp - x.at) / 1000));
    const warmed = r.obs.events.filter((e) => e.reason === 'PreWarm' && around(e.at));
    const waited = waits(r, d * DAY, (d + 1) * DAY);
    t.comment(`  day ${d + 1}: ${warmed.length} pre-warmed; Ready ${margins.join(' s and ')} s before the ramp; pods pending at most ${Math.max(...waited).toFixed(0)} s`);
    if (d === 0) {
      t.equal(warmed.length, 0, 'day 1: nothing learned yet');
      t.ok(Math.max(...waited) >= BOOT * 0.9, 'day 1: the pods wait a boot');
      continue;
    }
    t.equal(warmed.length, 2, `day ${d + 1}: two machines pre-warmed`);
    t.ok(margins.length === 2 && margins.every((m) => m > 0), `day ${d + 1}: both Ready before the ramp (${margins.join(', ')} s)`);
    t.ok(margins.every((m) => m <= LOOKAHEAD + 90), `day ${d + 1}: not much earlier than lookaheadSeconds`);
    t.ok(Math.max(...waited) <= 2, `day ${d + 1}: the ramp's pods are bound at once`);
    t.match(warmed[0]?.message, /powering on m\d \(PreWarm, expected Ready in ~\d+s\): demand learned for \w{3} 09:00 UTC rises by 24.0 cpu and 16Gi memory over now \(requested now 0.0 cpu\); the ramp starts .*T09:00:00.000Z, Ready ~120s before it/);
  }
  t.equal(r.summary.unplacedPods, 0);
  const profile = r.obs.status?.demandProfile;
  t.ok(profile && profile.cpuMillis.length + profile.memoryMiB.length < 8000, `the learned profile stays small in status (${profile?.cpuMillis.length} + ${profile?.memoryMiB.length} characters)`);
});
