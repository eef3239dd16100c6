import t from 'tap';
import type { DemandProfile, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { bootOnPhase, expectedBootSeconds, learnedBootSeconds, p90, recordBoot, slowBoot, startBoot, UNKNOWN_BOOT_SECONDS } from '../../controller/boot-times.js';
import { blameShortOff, breakEvenSeconds, holdSeconds, MAX_HOLD_FACTOR, nextHold, openPowerOff, refreshBreakEven, restingUntil, type BreakEvenSettings } from '../../controller/break-even.js';
import { advance } from '../../controller/lifecycle.js';
import { absoluteBucket, ALPHA, BUCKET_SECONDS, bucketStart, BUCKETS_PER_DAY, forecastRamp, observeDemand, predicted } from '../../controller/predict.js';
import { scoreCandidates } from '../../controller/scoring.js';
import { cyclesIn24h, DAY_MS, lastPowerOff, recordPowerOff, refreshCycles, wearBlocker } from '../../controller/wear.js';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const off = (name: string, since: number, extra: Partial<MachineStatus> = {}): MachineStatus => ({ name, phase: 'Off', since: iso(since), ...extra });
const ON: BreakEvenSettings = { enabled: true, floorSeconds: 60 };

t.test('boot times: p90 over a ring of recent boots; the learned value wins over the inventory', async (t) => {
  t.equal(p90([]), 0);
  t.equal(p90([100]), 100);
  t.equal(p90([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]), 90);
  t.equal(p90([100, 10, 20]), 100, 'nearest rank: 3 values, the 3rd');
  let b = recordBoot(undefined, 120.4);
  t.same(b, { lastSeconds: 120, p90Seconds: 120, samples: 1, recentSeconds: [120] });
  for (let i = 0; i < 20; i++) b = recordBoot(b, 100 + i);
  t.equal(b.samples, 21);
  t.equal(b.recentSeconds?.length, 10, 'the ring is bounded');
  t.equal(b.lastSeconds, 119);
  t.equal(b.p90Seconds, 118, 'p90 of 110..119: the 9th of 10');
  t.equal(learnedBootSeconds({ bootSeconds: 240 }, undefined), 240, 'nothing learned: the inventory');
  t.equal(learnedBootSeconds({ bootSeconds: 240 }, { name: 'm', phase: 'Off', since: iso(T0), boot: b }), 118);
  t.equal(learnedBootSeconds({}, undefined), undefined);
  t.equal(expectedBootSeconds({}, undefined), UNKNOWN_BOOT_SECONDS);
});

t.test('a boot is measured from the power-on request to Node Ready, through the lifecycle', async (t) => {
  const settings = { joinTimeoutMs: 600_000, settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000 };
  const start = startBoot({ name: 'm', phase: 'PoweringOn', since: iso(T0) }, { bootSeconds: 200 }, T0);
  t.same(start.boot, { lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0), expectedReadyAt: iso(T0 + 200_000) });
  // PoweringOn → Joining (BMC on after 5 s) → Ready after 180 s in all.
  const op = { id: 'on-1', action: 'PowerOn' as const, startedAt: iso(T0) };
  const joining = advance('m', { ...start, operation: op }, { outcome: { id: 'on-1', done: true, ok: true, state: 'on' } }, settings, T0 + 5000).status;
  t.equal(joining.phase, 'Joining');
  t.equal(joining.boot?.startedAt, iso(T0), 'the boot in flight survives the phase change');
  const ready = advance('m', joining, { node: { exists: true, ready: true } }, settings, T0 + 180_000).status;
  t.equal(ready.phase, 'Ready');
  t.same(ready.boot, { lastSeconds: 180, p90Seconds: 180, samples: 1, recentSeconds: [180] });
  // A boot that fails is dropped unmeasured; what was learned stays.
  const again = startBoot(ready, {}, T0 + 1_000_000);
  t.equal(again.boot?.expectedReadyAt, iso(T0 + 1_000_000 + 180_000), 'the learned time gives the ETA');
  t.same(bootOnPhase(again.boot, 'Joining', 'Failed', T0 + 2_000_000), { lastSeconds: 180, p90Seconds: 180, samples: 1, recentSeconds: [180] });
  t.equal(bootOnPhase({ lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0) }, 'PoweringOn', 'Off', T0 + 1), undefined, 'nothing learned, nothing kept');
  t.same(bootOnPhase(again.boot, 'Joining', 'Joining', T0 + 2_000_000), again.boot, 'no phase change: kept');
});

t.test('the join timeout has an early warning at 1.5x the expected boot', async (t) => {
  const s: MachineStatus = { name: 'm', phase: 'Joining', since: iso(T0), boot: { lastSeconds: 100, p90Seconds: 100, samples: 3, startedAt: iso(T0) } };
  t.same(slowBoot({ name: 'm' }, s, 600, T0 + 100_000), { warnAt: T0 + 150_000 });
  const late = slowBoot({ name: 'm' }, s, 600, T0 + 160_000);
  t.match(late?.message, /m has been booting for 160s, more than 1.5× its expected 100s \(its p90 over 3 boot\(s\)\); it is powered off and quarantined if not Ready by 2026-11-28T10:10:00.000Z/);
  t.equal(slowBoot({ name: 'm' }, s, 120, T0 + 160_000), undefined, 'the join timeout comes first: no warning');
  t.equal(slowBoot({ name: 'm' }, { ...s, phase: 'Ready' }, 600, T0 + 160_000), undefined);
  t.equal(slowBoot({ name: 'm' }, { ...s, boot: { lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0) } }, 600, T0 + 160_000), undefined, 'nothing expected');
});

t.test('break-even: boot energy over idle draw plus the floor', async (t) => {
  t.equal(breakEvenSeconds({ bootSeconds: 240, power: { idleWatts: 120, maxWatts: 450 } }, undefined, 60), 960);
  t.equal(breakEvenSeconds({ bootSeconds: 240, power: { idleWatts: 120 } }, undefined, 60), 300, 'boot draw unknown: idle');
  t.equal(breakEvenSeconds({ bootSeconds: 240, power: { maxWatts: 450 } }, undefined, 0), 240, 'idle unknown: the ratio is 1');
  t.equal(breakEvenSeconds({}, undefined, 60), UNKNOWN_BOOT_SECONDS + 60);
  const learned: MachineStatus = { ...off('m', T0), boot: { lastSeconds: 100, p90Seconds: 100, samples: 4 } };
  t.equal(breakEvenSeconds({ bootSeconds: 240, power: { idleWatts: 100, maxWatts: 300 } }, learned, 60), 360, 'the learned boot time');
});

t.test('the hold grows on short off periods, decays on long ones, bounded', async (t) => {
  t.equal(nextHold(0, true, 300), 300);
  t.equal(nextHold(300, true, 300), 600);
  t.equal(nextHold(900, true, 300), MAX_HOLD_FACTOR * 300);
  t.equal(nextHold(1200, false, 300), 600);
  t.equal(nextHold(100, false, 300), 0, 'below a minute: gone');
  t.equal(holdSeconds({ ...off('m', T0), breakEven: { seconds: 300, holdSeconds: 600 } }, ON), 600);
  t.equal(holdSeconds({ ...off('m', T0), breakEven: { seconds: 300, holdSeconds: 600 } }, { ...ON, enabled: false }), 0, 'disabled: no hold');
});

t.test('a power-off is judged once: short when demand comes back within break-even, long otherwise', async (t) => {
  const m = { name: 'a', bootSeconds: 120, power: { idleWatts: 100, maxWatts: 300 } } as never;
  const b = { name: 'b', bootSeconds: 120, power: { idleWatts: 100, maxWatts: 300 } } as never;
  // break-even: 120 * 3 + 60 = 420 s
  const a0 = openPowerOff(recordPowerOff(off('a', T0), T0));
  const b0 = openPowerOff(recordPowerOff(off('b', T0 - 50_000), T0 - 50_000));
  const machines = new Map([['a', a0], ['b', b0]]);
  const byName = new Map([['a', m], ['b', b]]);
  // c is powered on for pods 2 minutes later: a (the most recent power-off) is blamed.
  const blamed = blameShortOff(machines, byName, ['c'], ON, T0 + 120_000);
  t.equal(blamed?.name, 'a');
  t.same(blamed?.status.breakEven, { seconds: 420, holdSeconds: 420, lastOffSeconds: 120 });
  // b itself powered on: b is blamed, even though a went off later.
  t.equal(blameShortOff(machines, byName, ['b'], ON, T0 + 120_000)?.name, 'b');
  // Once judged, not again.
  machines.set('a', blamed?.status as MachineStatus);
  t.equal(blameShortOff(machines, byName, ['c'], ON, T0 + 130_000)?.name, 'b');
  t.equal(blameShortOff(new Map([['b', { ...b0, phase: 'Failed' as const }]]), byName, ['c'], ON, T0 + 120_000), undefined, 'a quarantined machine is not blamed');
  // Past break-even: nobody is blamed, and the refresh judges it long (decay).
  t.equal(blameShortOff(new Map([['b', b0]]), byName, ['c'], ON, T0 + 400_000), undefined);
  const held = { ...b0, breakEven: { seconds: 420, holdSeconds: 1600 } };
  const decayed = refreshBreakEven(b, held, ON, T0 + 400_000);
  t.same(decayed.breakEven, { seconds: 420, holdSeconds: 800, lastOffSeconds: 450 });
  t.equal(refreshBreakEven(b, decayed, ON, T0 + 900_000), decayed, 'judged once, unchanged after');
  t.same(refreshBreakEven(b, held, ON, T0), { ...held, breakEven: { seconds: 420, holdSeconds: 1600 } }, 'not yet past break-even: no verdict');
});

t.test('a machine powered off rests for minOffSeconds, else its break-even time', async (t) => {
  const m = { name: 'a', bootSeconds: 120, power: { idleWatts: 100, maxWatts: 300 } } as never;
  const s = recordPowerOff(off('a', T0), T0);
  t.equal(restingUntil(m, s, ON, T0 + 1000), T0 + 420_000);
  t.equal(restingUntil(m, s, ON, T0 + 420_000), undefined, 'rest over');
  t.equal(restingUntil(m, s, { ...ON, minOffSeconds: 30 }, T0 + 1000), T0 + 30_000);
  t.equal(restingUntil(m, s, { ...ON, enabled: false }, T0 + 1000), undefined, 'break-even off and no minOffSeconds: no rest');
  t.equal(restingUntil(m, s, { ...ON, enabled: false, minOffSeconds: 30 }, T0 + 1000), T0 + 30_000, 'an explicit minOffSeconds holds anyway');
  t.equal(restingUntil(m, { ...s, phase: 'Ready' }, ON, T0 + 1000), undefined, 'only Off machines rest');
  t.equal(restingUntil(m, off('a', T0), ON, T0 + 1000), undefined, 'never powered off by bamel: no rest');
});

t.test('wear: power-offs counted over a rolling 24 hours; at the limit the machine stays on', async (t) => {
  let s: MachineStatus = { name: 'm', phase: 'Ready', since: iso(T0) };
  for (let i = 0; i < 3; i++) s = recordPowerOff(s, T0 + i * 3_600_000);
  t.same(s.powerCycles, { last24h: 3, powerOffs: [0, 1, 2].map((i) => (T0 + i * 3_600_000) / 1000) });
  t.equal(lastPowerOff(s), T0 + 2 * 3_600_000);
  t.equal(cyclesIn24h(s, T0 + DAY_MS + 1000), 2, 'the first left the window');
  t.same(refreshCycles(s, T0 + DAY_MS + 1000).powerCycles?.last24h, 2);
  t.notOk('powerCycles' in refreshCycles(s, T0 + 3 * DAY_MS), 'all gone: the field goes');
  t.equal(refreshCycles(s, T0 + 10_000_000), s, 'unchanged: the same object');
  t.equal(wearBlocker('m', s, 4, T0 + 3 * 3_600_000), undefined);
  const at = wearBlocker('m', s, 3, T0 + 3 * 3_600_000);
  t.equal(at?.blocker.kind, 'WearLimit');
  t.equal(at?.until, T0 + DAY_MS, 'lifts when the oldest leaves the window');
  t.match(at?.blocker.message, /m was powered off 3 time\(s\) in the last 24 hours, scaleDown.maxPowerCyclesPerDay is 3: it stays on until 2026-11-29T10:00:00.000Z/);
  t.equal(wearBlocker('m', s, 2, T0 + 3 * 3_600_000)?.until, T0 + 3_600_000 + DAY_MS, 'two over a limit of 2: when the second oldest leaves');
});

t.test('scoring: among equally good machines, the faster booter wins while pods wait', async (t) => {
  const w = { usefulWeight: 1, nonUsefulWeight: 0.25 };
  const cand = (name: string, bootSeconds: number | undefined, powerCost: number) => ({ name, capacity: { cpu: 8000n, memory: 32n << 30n }, powerCost, powerCyclesToday: 0, ...(bootSeconds !== undefined ? { bootSeconds } : {}) });
  const list = [cand('slow', 300, 100), cand('fast', 90, 200), cand('unknown', undefined, 50)];
  t.same(scoreCandidates({ cpu: 4000n }, list, w, new Set(), true).ranked.map((r) => r.name), ['fast', 'slow', 'unknown']);
  t.same(scoreCandidates({ cpu: 4000n }, list, w).ranked.map((r) => r.name), ['unknown', 'slow', 'fast'], 'no pods waiting: the cheaper first');
  t.same(scoreCandidates({ cpu: 4000n }, [cand('a', 114, 200), cand('b', 126, 100)], w, new Set(), true).ranked.map((r) => r.name), ['b', 'a'], 'within one step of 25 %: the same, power decides');
  t.same(scoreCandidates({ cpu: 4000n }, [cand('a', 2, 200), cand('b', 20, 100)], w, new Set(), true).ranked.map((r) => r.name), ['b', 'a'], 'both under 30 s: alike');
});

t.test('demand by time of week: peaks per bucket, blended week over week, predicted from the days before', async (t) => {
  const monday9 = Date.parse('2026-11-30T09:00:00Z');
  t.equal(new Date(bucketStart(absoluteBucket(monday9 + 5000))).toISOString(), '2026-11-30T09:00:00.000Z');
  t.equal(absoluteBucket(monday9) % (7 * BUCKETS_PER_DAY), 36, 'Monday 09:00 is bucket 36 of the week');
  let p: DemandProfile | undefined;
  p = observeDemand(p, monday9, { cpuMillis: 1000, memoryMiB: 100 });
  p = observeDemand(p, monday9 + 60_000, { cpuMillis: 5000, memoryMiB: 50 });
  t.same([p.peakCpuMillis, p.peakMemoryMiB], [5000, 100], 'the peak of each');
  p = observeDemand(p, monday9 + BUCKET_SECONDS * 1000, { cpuMillis: 0, memoryMiB: 0 });
  t.equal(p.cpuMillis.split(',').length, 37, 'trailing empty buckets are not written');
  t.same(predicted(p, absoluteBucket(monday9)), { cpuMillis: 5000, memoryMiB: 100 });
  t.same(predicted(p, absoluteBucket(monday9) + BUCKETS_PER_DAY), { cpuMillis: 5000, memoryMiB: 100 }, 'Tuesday 09:00 from Monday');
  t.equal(predicted(p, absoluteBucket(monday9) + 1), undefined, 'the bucket still open is not learned yet');
  // A week later the same bucket is blended.
  p = observeDemand(p, monday9 + 7 * DAY_MS, { cpuMillis: 1000, memoryMiB: 100 });
  p = observeDemand(p, monday9 + 7 * DAY_MS + BUCKET_SECONDS * 1000, { cpuMillis: 0, memoryMiB: 0 });
  t.same(predicted(p, absoluteBucket(monday9)), { cpuMillis: ALPHA * 1000 + (1 - ALPHA) * 5000, memoryMiB: 100 });
  t.equal(observeDemand(p, monday9 + 7 * DAY_MS + BUCKET_SECONDS * 1000, { cpuMillis: 0, memoryMiB: 0 }), p, 'nothing new: the same object');
});

t.test('a ramp is a learned rise within the horizon over what is predicted for now', async (t) => {
  const day = Date.parse('2026-11-30T00:00:00Z');
  let p: DemandProfile | undefined;
  // One day: 2 cpu all day, 40 cpu from 09:00 to 11:00.
  for (let ms = day; ms <= day + DAY_MS; ms += 300_000) {
    const h = new Date(ms).getUTCHours();
    p = observeDemand(p, ms, { cpuMillis: h >= 9 && h < 11 ? 40_000 : 2000, memoryMiB: 1024 });
  }
  const next9 = day + DAY_MS + 9 * 3_600_000;
  t.equal(forecastRamp(p as DemandProfile, next9 - 3_600_000, 600_000), undefined, 'an hour before, with a 10 minute horizon: nothing yet');
  const ramp = forecastRamp(p as DemandProfile, next9 - 400_000, 600_000);
  t.equal(ramp?.at, next9);
  t.same(ramp?.rise, { cpuMillis: 38_000, memoryMiB: 0 });
  t.equal(forecastRamp(p as DemandProfile, next9 + 60_000, 600_000), undefined, 'on the plateau: no rise');
});
