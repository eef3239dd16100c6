import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { scaleDownStep, type ScaleDownStepInput } from '../../../controller/reconcile/scale-down-step.js';
import { deepFreeze, iso, machines, node, runningPod, snapshot, spec, states, status, store, T0 } from './fixtures.js';

const UNNEEDED = iso(T0 - 700_000);
const M1 = deepFreeze(machines('m1'));
const POD = deepFreeze(runningPod('m1', '1', { name: 'web' }));
const DS = deepFreeze(runningPod('m1', '1', { name: 'exporter', owner: 'DaemonSet' }));

/** m1: Ready, unneeded for long enough, its one pod fits on the spare Node. */
function input(over: Partial<ScaleDownStepInput> = {}, m1: Partial<MachineStatus> = {}, pods: Record<string, k8s.V1Pod[]> = { m1: [POD, DS] }): ScaleDownStepInput {
  deepFreeze(pods);
  return {
    spec: spec(),
    previous: {},
    selected: M1,
    machines: states(status('m1', 'Ready', { unneededSince: UNNEEDED, ...m1 })),
    nodes: store([deepFreeze(node('m1')), deepFreeze(node('spare'))]),
    pdbs: [],
    podsOn: (m) => pods[m] ?? [],
    untaint: [],
    pendingCount: 0,
    pressured: [],
    rising: [],
    scaleUpInFlight: 0,
    unread: 0,
    onCount: 1,
    deleting: false,
    now: T0,
    ...over,
  };
}

t.test('an idle machine is chosen Next, and drained at the next round', async (t) => {
  const first = scaleDownStep(input());
  t.same(first.machines.get('m1'), { name: 'm1', phase: 'Ready', since: iso(T0 - 3_600_000), unneededSince: UNNEEDED, disruption: 'Next' });
  t.same(first.starts, []);
  t.same(first.wakeAts, [T0 + 1000], 'the extender gets one round to keep pods off it');

  const second = scaleDownStep(input({}, { disruption: 'Next', blockers: ['old'], failures: 2 }));
  t.same(second.machines.get('m1'), {
    name: 'm1',
    phase: 'Draining',
    since: iso(T0),
    failures: 2,
    reason: 'ScaleDown',
    message: `draining: unneeded since ${UNNEEDED} (utilisation 6% cpu); 1 pod(s) to move`,
    drain: { startedAt: iso(T0), deadline: iso(T0 + 600_000), podsToEvict: 1, evicted: 0 },
  });
  t.same(second.starts, [{ machine: 'm1', pods: [POD] }], 'DaemonSet pods stay');
  t.same(second.plan.drain, ['m1']);
  t.same(second.wakeAts, [T0 + 1000]);
  t.same([second.blocked, second.untaint, second.deleteNodes, second.deletionBlocked], [[], [], [], []]);
});

// Each reason to pause, in order of precedence: every row also has all the reasons below it.
const PAUSES: { over: Partial<ScaleDownStepInput>; message: string; wake?: number }[] = [
  { over: { deleting: true }, message: 'the autoscaler is being deleted with deletionPolicy Retain' },
  { over: { unread: 2 }, message: 'waiting for the power state of 2 machine(s)' },
  { over: { pendingCount: 3 }, message: '3 unschedulable pod(s) wait for room' },
  { over: { pressured: ['cpu pressure (cpu level 90% at or above 85%)', 'memory pressure (node m2 reports MemoryPressure)'] }, message: 'cpu pressure (cpu level 90% at or above 85%); memory pressure (node m2 reports MemoryPressure)' },
  { over: { rising: ['cpu utilisation rising 0.050/min'] }, message: 'cpu utilisation rising 0.050/min' },
  { over: { scaleUpInFlight: 2 }, message: 'a scale-up is in flight (2 machine(s) powering on or joining)' },
  {
    over: { failure: { time: iso(T0 - 60_000), machine: 'm9', reason: 'drain aborted: x' } },
    message: `scale-down cooldown after the failed scale-down of m9, until ${iso(T0 + 540_000)}`,
    wake: T0 + 540_000,
  },
  {
    over: { previous: { lastScaleEvent: { time: iso(T0 - 100_000), direction: 'Up', machine: 'm8', reason: 'x' } } },
    message: `scale-down cooldown after the scale-up of m8, until ${iso(T0 + 500_000)}`,
    wake: T0 + 500_000,
  },
];

t.test('each reason to pause scale-down, in its order of precedence', async (t) => {
  for (let i = 0; i < PAUSES.length; i++) {
    const over = Object.assign({}, ...PAUSES.slice(i).map((p) => p.over)) as Partial<ScaleDownStepInput>;
    const { message, wake } = PAUSES[i] as (typeof PAUSES)[number];
    const r = scaleDownStep(input(over));
    t.same(r.plan.machines.get('m1')?.blockers, [{ kind: 'Paused', message }], message);
    t.same(r.machines.get('m1'), { name: 'm1', phase: 'Ready', since: iso(T0 - 3_600_000), unneededSince: UNNEEDED, disruption: 'Candidate', blockers: [message] }, message);
    t.same(r.wakeAts, wake === undefined ? [] : [wake], `${message}: wakes at its end if it ends by time`);
    t.same([r.starts, r.blocked], [[], []], 'a pause is not a blocker to announce');
  }
  const none = scaleDownStep(input({ previous: { lastScaleEvent: { time: iso(T0 - 600_000), direction: 'Down', machine: 'm8', reason: 'x' } } }));
  t.equal(none.machines.get('m1')?.disruption, 'Next', 'a cooldown is over at its end');
});

t.test("the failure of this reconcile comes before status's, and a scale-down event is named so", async (t) => {
  const old = { time: iso(T0 - 3_600_000), machine: 'old', reason: 'x' };
  const r = scaleDownStep(input({ previous: { lastScaleDownFailure: old }, failure: { time: iso(T0), machine: 'm1', reason: 'drain aborted: x' } }));
  t.same(r.machines.get('m1')?.blockers, [`scale-down cooldown after the failed scale-down of m1, until ${iso(T0 + 600_000)}`]);
  const fromStatus = scaleDownStep(input({ previous: { lastScaleDownFailure: { ...old, time: iso(T0 - 1000) } } }));
  t.same(fromStatus.machines.get('m1')?.blockers, [`scale-down cooldown after the failed scale-down of old, until ${iso(T0 + 599_000)}`]);
  const down = scaleDownStep(input({ previous: { lastScaleEvent: { time: iso(T0 - 1000), direction: 'Down', machine: 'm7', reason: 'x' } } }));
  t.same(down.machines.get('m1')?.blockers, [`scale-down cooldown after the scale-down of m7, until ${iso(T0 + 599_000)}`]);
});

t.test('deletion with deletionPolicy PowerOff: no pause, no minimum, no utilisation; what it waits for', async (t) => {
  const forcing = { deleting: true, spec: spec({ deletionPolicy: 'PowerOff', minMachines: 1 }), pendingCount: 4, scaleUpInFlight: 1, pressured: ['cpu pressure'] };
  const busy = { m1: [runningPod('m1', '12', { name: 'busy' })] };
  const first = scaleDownStep(input({ ...forcing, machines: states(status('m1', 'Ready')) }, {}, busy));
  t.equal(first.machines.get('m1')?.disruption, 'Next');
  t.same(first.deletionBlocked, ['m1: to be drained']);
  const second = scaleDownStep(input(forcing, { disruption: 'Next' }, busy));
  t.equal(second.machines.get('m1')?.phase, 'Draining');
  t.equal(second.machines.get('m1')?.reason, 'AutoscalerDeleted');
  t.equal(second.machines.get('m1')?.message, 'draining before power-off: the autoscaler is being deleted with deletionPolicy PowerOff');
  t.same(second.deletionBlocked, ['m1: draining']);

  const failed = scaleDownStep(input({ ...forcing, failure: { time: iso(T0 - 60_000), machine: 'm1', reason: 'x' } }, { disruption: 'Next' }));
  const why = `cooldown after the failed drain of m1, until ${iso(T0 + 540_000)}`;
  t.same(failed.machines.get('m1')?.blockers, [why], 'a failed drain is retried after the cooldown');
  t.same(failed.deletionBlocked, [`m1: ${why}`, 'm1: to be drained']);
  t.same(failed.wakeAts, [T0 + 540_000]);

  const keep = runningPod('m1', '1', { name: 'keep', annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } });
  const blocked = scaleDownStep(input(forcing, {}, { m1: [keep] }));
  const message = 'pod default/keep is annotated autoscaling.bamel.io/do-not-disrupt: "true"';
  t.same(blocked.deletionBlocked, [`m1: ${message}`]);
  t.same(blocked.blocked, [{ machine: 'm1', messages: [message] }]);
});

t.test('a dry run shows its choice as Candidate and never starts a drain', async (t) => {
  const dry = { spec: spec({ dryRun: true }) };
  const fresh = scaleDownStep(input(dry));
  t.equal(fresh.plan.machines.get('m1')?.disruption, 'Next', 'the plan says what it would do');
  t.equal(fresh.machines.get('m1')?.disruption, 'Candidate', 'status does not keep pods off it');
  const again = scaleDownStep(input(dry, { disruption: 'Next' }));
  t.same(again.plan.drain, ['m1']);
  t.same(again.starts, []);
  t.equal(again.machines.get('m1')?.phase, 'Ready');
  t.equal(again.machines.get('m1')?.disruption, 'Candidate');
});

t.test(
  'a dry run does not look again every second for a drain it will never start',
  {},
  async (t) => {
    t.same(scaleDownStep(input({ spec: spec({ dryRun: true }) })).wakeAts, []);
  },
);

t.test('blockers: hard ones are announced, busy ones are not; status keeps 32 of 512 characters at most', async (t) => {
  const r = scaleDownStep(input({}, {}, { m1: [runningPod('m1', '12', { name: 'big' })] }));
  t.match(r.machines.get('m1')?.blockers, [/^utilisation 75% \(cpu\) is at or above scaleDown.utilizationThreshold 50%$/]);
  t.same(r.blocked, [], 'being busy is not news');

  const many = Array.from({ length: 40 }, (_, i) => runningPod('m1', '100m', { memory: '100Mi', name: i === 0 ? `long-${'x'.repeat(500)}` : `keep-${i}`, annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } }));
  const capped = scaleDownStep(input({}, {}, { m1: many }));
  const blockers = capped.machines.get('m1')?.blockers ?? [];
  t.equal(blockers.length, 32);
  t.equal(blockers[31], 'and 9 more');
  t.equal(blockers[0]?.length, 512);
  t.ok(blockers[0]?.endsWith('...'));
  t.equal(capped.blocked[0]?.messages.length, 40, 'the event has them all (it cuts its own length)');
});

t.test('pods move only onto Ready Nodes of machines that stay Ready, or of no machine', async (t) => {
  const sel = deepFreeze(machines('m1', 'm2'));
  const pods = { m1: [deepFreeze(runningPod('m1', '4', { name: 'mover' }))] };
  const base = { selected: sel, onCount: 2, nodes: store([deepFreeze(node('m1')), deepFreeze(node('m2'))]) };
  const joining = scaleDownStep(input({ ...base, machines: states(status('m1', 'Ready', { unneededSince: UNNEEDED }), status('m2', 'Joining')) }, {}, pods));
  t.same(joining.blocked, [{ machine: 'm1', messages: ['pod default/mover fits on no other Ready Node (needs cpu 4, memory 1Gi)'] }]);
  t.equal(joining.machines.get('m1')?.disruption, undefined);
  t.notOk(joining.plan.machines.has('m2'), 'only Ready machines with a Ready Node are planned');
  const withSpare = scaleDownStep(input({ ...base, nodes: store([deepFreeze(node('m1')), deepFreeze(node('m2')), deepFreeze(node('spare'))]), machines: states(status('m1', 'Ready', { unneededSince: UNNEEDED }), status('m2', 'Joining')) }, {}, pods));
  t.equal(withSpare.machines.get('m1')?.disruption, 'Next');
});

t.test('machines with an operation or without a Ready Node are not planned, and left as they are', async (t) => {
  const op = { id: 'op', action: 'PowerOff' as const, startedAt: iso(T0) };
  const busy = input({}, { operation: op });
  const r = scaleDownStep(busy);
  t.equal(r.plan.machines.size, 0);
  t.equal(r.machines.get('m1'), busy.machines.get('m1'));
  const notReady = scaleDownStep(input({ nodes: store([deepFreeze(node('m1', { ready: false })), deepFreeze(node('spare'))]) }));
  t.equal(notReady.plan.machines.size, 0);
});

t.test('leftovers: a stray draining taint comes off; the Node of an Off machine goes if it is older than the power-off', async (t) => {
  const sel = deepFreeze(machines('ready', 'joining', 'unknown', 'draining', 'aborted', 'off-old', 'off-new', 'off-undated'));
  const offSince = iso(T0 - 60_000);
  const base: Partial<ScaleDownStepInput> = {
    selected: sel,
    untaint: ['aborted'],
    machines: states(
      status('ready', 'Ready', { operation: { id: 'x', action: 'PowerOff', startedAt: iso(T0) } }),
      status('joining', 'Joining'),
      status('unknown', 'Unknown'),
      status('draining', 'Draining'),
      status('aborted', 'Ready'),
      status('off-old', 'Off', { since: offSince }),
      status('off-new', 'Off', { since: offSince }),
      status('off-undated', 'Off', { since: offSince }),
    ),
    nodes: store(
      deepFreeze([
        node('ready', { draining: true }),
        node('joining', { draining: true }),
        node('unknown', { draining: true, ready: false }),
        node('draining', { draining: true }),
        node('aborted', { draining: true }),
        node('off-old', { created: T0 - 3_600_000, ready: false }),
        node('off-new', { created: T0 - 10_000 }),
        node('off-undated', { ready: false }),
      ]),
    ),
  };
  const r = scaleDownStep(input(base));
  t.same(r.untaint, ['ready', 'joining', 'unknown'], 'not a draining machine, not one already untainted');
  t.same(r.deleteNodes, [
    { name: 'off-old', uid: 'node-uid-off-old' },
    { name: 'off-undated', uid: 'node-uid-off-undated' },
  ]);
  t.same(scaleDownStep(input({ ...base, spec: spec({ dryRun: true }) })).deleteNodes, [], 'a dry run deletes no Node');
});

t.test('the inputs are left as they were', async (t) => {
  const i = input({ previous: deepFreeze({ lastScaleEvent: { time: iso(T0 - 3_600_000), direction: 'Up' as const, machine: 'm8', reason: 'x' } }) }, { disruption: 'Next' });
  const before = snapshot([i.machines, i.previous, i.nodes.list()]);
  const r = scaleDownStep(i);
  t.equal(r.machines.get('m1')?.phase, 'Draining');
  t.equal(i.machines.get('m1')?.phase, 'Ready');
  t.equal(snapshot([i.machines, i.previous, i.nodes.list()]), before);
});
