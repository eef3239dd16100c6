import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { PodIndex } from '../../../controller/observe.js';
import { absoluteBucket, observeDemand } from '../../../controller/predict.js';
import type { Budget } from '../../../controller/reconcile/budget.js';
import { CandidateCache, demandStep } from '../../../controller/reconcile/demand.js';
import { afterIntents, preWarmStep, refreshEnergy, restingOf, scaleDownEnergy, slowBoots, type PreWarmInput } from '../../../controller/reconcile/energy-policy.js';
import { applyIntents } from '../../../controller/reconcile/intents.js';
import { scaleDownStep, type ScaleDownStepInput } from '../../../controller/reconcile/scale-down-step.js';
import { scaleUpStep } from '../../../controller/reconcile/scale-up.js';
import type { Intent, MachineStates } from '../../../controller/reconcile/types.js';
import { recordPowerOff } from '../../../controller/wear.js';
import { deepFreeze, iso, machines, node, pendingPod, runningPod, spec, states, status, store, T0 } from './fixtures.js';

const FLEET = deepFreeze(machines(...['m1', 'm2', 'm3'].map((name) => ({ name, cpu: 16, bootSeconds: 120, idleWatts: 100, maxWatts: 300 }))));
const byName = (n: string) => FLEET.find((m) => m.name === n) as (typeof FLEET)[number];
const budget = (machinesLeft = 5): Budget => ({ budget: { machines: machinesLeft, reason: 'maxMachines (10) reached' }, onCount: 0, inFlight: 0, wakeAts: [] });

function decide(machineStates: MachineStates, pending: k8s.V1Pod[], now: number, over: Record<string, unknown> = {}) {
  const index = new PodIndex();
  index.rebuild(pending);
  const cache = new CandidateCache();
  const s = spec({ maxMachines: 10, ...over });
  const demand = demandStep({ demand: pending, selected: FLEET, machines: machineStates, nodes: store(), pods: index, emptyCandidate: (m) => cache.empty('1', m), readyAbsorbMs: 60_000, now });
  return scaleUpStep({
    spec: s,
    selected: FLEET,
    machines: machineStates,
    demand,
    pendingCount: pending.length,
    budget: budget(),
    pressure: { readings: [] },
    busy: () => false,
    podsOn: () => [],
    unread: 0,
    resting: restingOf(machineStates, FLEET, s, now),
    now,
  });
}

t.test('a machine just powered off rests: pods go to another machine, unless none other can host them', async (t) => {
  // m1 was powered off a minute ago (break-even 120 × 300/100 + 60 = 420 s); m2 is off for long.
  const m1 = recordPowerOff(status('m1', 'Off', { since: iso(T0 - 60_000) }), T0 - 60_000);
  const s = states(m1, status('m2', 'Off'), status('m3', 'Ready'));
  const one = decide(s, [pendingPod('8', { name: 'a' })], T0);
  t.same(one.decision.powerOn.map((c) => c.machine), ['m2'], 'the resting machine is passed over');
  t.ok(one.wakeAts.includes(T0 + 360_000), 'looks again when the rest ends');
  // Two machines' worth of pods: m2 takes one, only m1 is left for the other.
  const two = decide(s, [pendingPod('12', { name: 'a' }), pendingPod('12', { name: 'b' })], T0);
  t.same(two.decision.powerOn.map((c) => c.machine), ['m2', 'm1']);
  t.match(two.decision.powerOn[1]?.detail, /within its minimum off time \(scaleDown.minOffSeconds\), as no other machine can host these pods now/);
  t.same(two.decision.waiting, []);
  // An explicit minOffSeconds of 30 s: the rest is over.
  t.same(decide(s, [pendingPod('8', { name: 'a' })], T0, { scaleDown: { minOffSeconds: 30 } }).decision.powerOn.map((c) => c.machine), ['m1'], 'rest over: back to the normal choice (m1 by name)');
});

t.test('boots start with the power-on intent; power-offs count cycles; a power-on for pods blames the short power-off', async (t) => {
  const s = spec();
  const m1Off = recordPowerOff(status('m1', 'Off', { since: iso(T0 - 120_000) }), T0 - 120_000);
  const machineStates = new Map<string, MachineStatus>([
    ['m1', m1Off],
    ['m2', status('m2', 'Off')],
    ['m3', status('m3', 'Ready')],
  ]);
  const intents: Intent[] = [
    { machine: byName('m2'), action: 'PowerOn', reason: 'PendingPods', message: 'for pods' },
    { machine: byName('m3'), action: 'PowerOff', reason: 'ScaleDown', message: 'drained' },
  ];
  const applied = applyIntents(machineStates, intents, undefined, 'me', T0);
  afterIntents(applied.machines, intents, FLEET, s, T0);
  t.same(applied.machines.get('m2')?.boot, { lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0), expectedReadyAt: iso(T0 + 120_000) });
  t.same(applied.machines.get('m3')?.powerCycles, { last24h: 1, powerOffs: [T0 / 1000] });
  t.same(applied.machines.get('m1')?.breakEven, { seconds: 420, holdSeconds: 420, lastOffSeconds: 120 }, 'm1 was off 2 minutes, under its break-even of 420 s');
  // A retried power-off is no new cycle.
  const retry: Intent[] = [{ machine: byName('m3'), action: 'PowerOff', reason: 'ScaleDown', message: 'again', retry: true }];
  const again = applyIntents(applied.machines, retry, undefined, 'me', T0 + 5000);
  afterIntents(again.machines, retry, FLEET, s, T0 + 5000);
  t.equal(again.machines.get('m3')?.powerCycles?.last24h, 1);
  // Break-even off: no blame.
  const quiet = applyIntents(machineStates, intents, undefined, 'me', T0);
  afterIntents(quiet.machines, intents, FLEET, spec({ scaleDown: { breakEven: { enabled: false } } }), T0);
  t.notOk(quiet.machines.get('m1')?.breakEven, 'no verdict');
});

const cyclesOf = (s: MachineStatus): Partial<MachineStatus> => (s.powerCycles ? { powerCycles: s.powerCycles } : {});

function downInput(m1: Partial<MachineStatus>, now: number, over: Record<string, unknown> = {}): ScaleDownStepInput {
  const s = spec(over);
  const machineStates = states(status('m1', 'Ready', { unneededSince: iso(now - 700_000), ...m1 }), status('m2', 'Ready', { unneededSince: iso(now - 700_000) }));
  const pods: Record<string, k8s.V1Pod[]> = { m1: [runningPod('m1', '1', { name: 'w1' })], m2: [runningPod('m2', '1', { name: 'w2' })] };
  return {
    spec: s,
    previous: {},
    selected: FLEET.slice(0, 2),
    machines: machineStates,
    nodes: store([node('m1'), node('m2'), node('spare')]),
    pdbs: [],
    podsOn: (m) => pods[m] ?? [],
    untaint: [],
    pendingCount: 0,
    pressured: [],
    rising: [],
    scaleUpInFlight: 0,
    unread: 0,
    onCount: 2,
    deleting: false,
    energy: scaleDownEnergy(machineStates, s, now),
    now,
  };
}

t.test('scale-down: the hold keeps a machine on, in words; the wear limit too; fewer cycles go first', async (t) => {
  const held = scaleDownStep(downInput({ breakEven: { seconds: 420, holdSeconds: 840, lastOffSeconds: 120 } }, T0));
  const m1 = held.machines.get('m1');
  t.notOk(m1?.disruption, 'held: not a candidate');
  t.match(m1?.blockers?.[0], /held on until 2026-11-28T10:12:20.000Z: its last power-off paid back too late \(capacity needed again after 120s, its break-even time is 420s: boot energy \/ idle draw \+ floor\), so it stays unneeded 840s longer before the next/);
  t.ok(held.wakeAts.includes(T0 + 740_000), 'looks again when the hold ends');
  t.equal(held.machines.get('m2')?.disruption, 'Next');

  let worn: MachineStatus = status('m1', 'Ready');
  for (let i = 0; i < 6; i++) worn = recordPowerOff(worn, T0 - (10 - i) * 3_600_000);
  const limited = scaleDownStep(downInput(cyclesOf(worn), T0));
  t.match(limited.machines.get('m1')?.blockers?.join('\n'), /m1 was powered off 6 time\(s\) in the last 24 hours, scaleDown.maxPowerCyclesPerDay is 6: it stays on until 2026-11-29T00:00:00.000Z/);
  t.same(limited.blocked.map((b) => b.machine), ['m1'], 'a hard blocker: announced');
  t.equal(scaleDownStep(downInput(cyclesOf(worn), T0, { scaleDown: { maxPowerCyclesPerDay: 7 } })).machines.get('m1')?.disruption, 'Candidate', 'under a higher limit: a candidate again');

  const one = recordPowerOff(status('m1', 'Ready'), T0 - 3_600_000);
  const ranked = scaleDownStep(downInput(cyclesOf(one), T0));
  t.equal(ranked.machines.get('m2')?.disruption, 'Next', 'm2 has fewer cycles: it goes first');
  t.equal(ranked.machines.get('m1')?.disruption, 'Candidate');
});

t.test('the rolling window and the verdicts move on every reconcile', async (t) => {
  const stale = recordPowerOff(status('m1', 'Off', { since: iso(T0 - 2 * 86_400_000) }), T0 - 2 * 86_400_000);
  const machineStates = new Map([['m1', { ...stale, breakEven: { seconds: 420, holdSeconds: 840 } }], ['m2', status('m2', 'Off')]]);
  refreshEnergy(machineStates, FLEET, spec(), T0);
  t.same(machineStates.get('m1'), { ...status('m1', 'Off', { since: iso(T0 - 2 * 86_400_000) }), breakEven: { seconds: 420, holdSeconds: 420, lastOffSeconds: 2 * 86_400 } });
  t.same(machineStates.get('m2'), status('m2', 'Off'), 'nothing to keep: nothing added');
});

t.test('slow boots are warned of once past 1.5x their expected time', async (t) => {
  const s = states(status('m1', 'Joining', { boot: { lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0) } }), status('m2', 'Joining', { boot: { lastSeconds: 0, p90Seconds: 0, samples: 0, startedAt: iso(T0 - 200_000) } }));
  const r = slowBoots(s, FLEET, spec(), T0);
  t.same(r.wakeAts, [T0 + 180_000]);
  t.same(r.warnings.map((w) => w.machine), ['m2']);
  t.match(r.warnings[0]?.message, /m2 has been booting for 200s, more than 1.5× its expected 120s \(its inventory bootSeconds\)/);
});

function warmInput(over: Partial<PreWarmInput>): PreWarmInput {
  return {
    spec: spec({ maxMachines: 3, scaleUp: { predictive: { enabled: true, lookaheadSeconds: 120 } } }),
    selected: FLEET,
    machines: states(status('m1', 'Ready'), status('m2', 'Off'), status('m3', 'Off')),
    decision: { powerOn: [], absorbed: [], unplaceable: [], waiting: [] },
    budget: budget(2),
    pending: [],
    podsOn: (m) => (m === 'm1' ? [runningPod('m1', '2')] : []),
    busy: () => false,
    resting: () => undefined,
    profile: undefined,
    now: T0,
    ...over,
  };
}

t.test('pre-warming: a learned ramp within boot time + lookahead powers machines on, once, within the budget', async (t) => {
  const off = warmInput({ spec: spec() });
  t.same(preWarmStep(off), { choices: [], wakeAts: [] }, 'predictive off: nothing learned, nothing done');
  // Yesterday: 2 cpu until 10:00, then 30 cpu (a ramp at 10:00 = T0).
  let profile = undefined as PreWarmInput['profile'];
  for (let ms = T0 - 86_400_000 - 3_600_000; ms <= T0 - 86_400_000 + 3_600_000; ms += 60_000) {
    profile = observeDemand(profile, ms, { cpuMillis: ms >= T0 - 86_400_000 ? 40_000 : 2000, memoryMiB: 2048 });
  }
  profile = observeDemand(profile, T0 - 600_000, { cpuMillis: 2000, memoryMiB: 2048 });
  const early = preWarmStep(warmInput({ profile, now: T0 - 600_000 }));
  t.same(early.choices, [], '10 minutes ahead: the ramp is beyond 120 s boot + 120 s lookahead');
  t.ok(early.profile, 'the demand is learned');
  const now = T0 - 230_000;
  const warm = preWarmStep(warmInput({ profile: early.profile, now }));
  t.same(warm.choices.map((c) => [c.machine, c.reason]), [['m2', 'PreWarm'], ['m3', 'PreWarm']], '2 + 38 cpu wanted, 16 on: two more');
  t.match(warm.choices[0]?.detail, /demand learned for Sat 10:00 UTC rises by 38.0 cpu and 0Gi memory over now \(requested now 2.0 cpu\); the ramp starts 2026-11-28T10:00:00.000Z, Ready ~120s before it/);
  t.equal(warm.profile?.preWarmedFor, absoluteBucket(T0));
  t.same(preWarmStep(warmInput({ profile: warm.profile, now: now + 10_000 })).choices, [], 'once per ramp');
  t.same(preWarmStep(warmInput({ profile: early.profile, now, budget: budget(1) })).choices.map((c) => c.machine), ['m2'], 'never beyond the budget (maxMachines, concurrency)');
  t.same(preWarmStep(warmInput({ profile: early.profile, now, decision: { powerOn: [], absorbed: [], unplaceable: [], waiting: [{ key: 'a/b', uid: 'u', requests: {} }] } })).choices, [], 'pods waiting: the reactive scale-up decides');
  t.same(preWarmStep(warmInput({ profile: early.profile, now, resting: (m) => (m === 'm2' ? T0 : undefined) })).choices.map((c) => c.machine), ['m3'], 'resting machines are not pre-warmed');
});
