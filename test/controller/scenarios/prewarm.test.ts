import t from 'tap';
import { VirtualCluster } from './virtual-cluster.js';

/**
 * Pre-warming on a recurring ramp, on the real Reconciler (virtual clock): every day at
 * 09:00 UTC two machines' worth of pods arrive and stay until 11:00. On the first day the
 * autoscaler reacts (the pods wait a boot); from the second day it has learned the ramp and
 * powers the machines on a learned boot time plus lookaheadSeconds ahead, so they are Ready
 * before the pods arrive.
 */

const START = Date.parse('2026-11-30T00:00:00Z');
const DAY = 86_400_000;
const RAMP_HOUR = 9;
const LOOKAHEAD = 120;
const MACHINES = ['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 300, trueBootSeconds: 240, idleWatts: 100, maxWatts: 300 }));
const replicas = (now: number): number => {
  const h = ((now - START) % DAY) / 3_600_000;
  return h >= RAMP_HOUR && h < RAMP_HOUR + 2 ? 2 : 0;
};

t.test('pre-warming: the machines are Ready before a recurring ramp arrives', async (t) => {
  const c = new VirtualCluster({
    machines: MACHINES,
    spec: { maxMachines: 3, scaleUp: { cooldownSeconds: 0, predictive: { enabled: true, lookaheadSeconds: LOOKAHEAD } } },
    start: START,
    replicas,
    podCpu: '12',
    podMemory: '8Gi',
    jitter: 0.05,
    seed: 11,
  });
  const lines: string[] = [];
  for (let day = 0; day < 3; day++) {
    const ramp = START + day * DAY + RAMP_HOUR * 3_600_000;
    const podsBefore = c.pendingSeconds().length;
    await c.runUntil(ramp + 3_600_000);
    const pending = c.pendingSeconds().slice(podsBefore);
    const ready = c.readyAt.filter((r) => r.at > ramp - 3_600_000 && r.at <= ramp + 3_600_000);
    const margins = ready.map((r) => (ramp - r.at) / 1000);
    const warmed = c.events.filter((e) => e.reason === 'PreWarm' && e.at > ramp - 3_600_000 && e.at <= ramp);
    lines.push(`day ${day + 1}: ${warmed.length} pre-warmed, Ready ${margins.map((m) => `${m.toFixed(0)}s`).join(' and ')} before the ramp, pods pending at most ${Math.max(...pending).toFixed(0)}s`);
    if (day === 0) {
      t.equal(warmed.length, 0, 'day 1: nothing learned yet');
      t.ok(Math.max(...pending) >= 200, 'day 1: the pods wait a boot');
    } else {
      t.equal(warmed.length, 2, `day ${day + 1}: two machines pre-warmed`);
      t.ok(margins.length === 2 && margins.every((m) => m > 0), `day ${day + 1}: both Ready before the ramp (${margins.join(', ')} s)`);
      t.ok(margins.every((m) => m <= LOOKAHEAD + 60), `day ${day + 1}: not much earlier than lookaheadSeconds (${margins.join(', ')} s)`);
      t.ok(Math.max(...pending) <= 5, `day ${day + 1}: the ramp's pods are bound at once`);
      t.match(warmed[0]?.message, /powering on m\d \(PreWarm, expected Ready in ~\d+s\): demand learned for \w{3} 09:00 UTC rises by 24.0 cpu and 16Gi memory over now \(requested now 0.0 cpu\); the ramp starts .*T09:00:00.000Z, Ready ~120s before it/);
    }
    await c.runUntil(START + (day + 1) * DAY);
  }
  for (const l of lines) t.comment(l);
  const profile = c.status()?.demandProfile;
  t.ok(profile && profile.cpuMillis.length < 4000, `the learned profile stays small in status (${profile?.cpuMillis.length} + ${profile?.memoryMiB.length} characters)`);
});
