import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { drainStep, type DrainStepInput } from '../../../controller/reconcile/drain-step.js';
import { compilePod } from '../../../scheduling/index.js';
import { deepFreeze, iso, machines, node, pendingPod, runningPod, spec, states, status, store, T0 } from './fixtures.js';

const [M1] = deepFreeze(machines('m1'));

/** Draining for two minutes of its ten, one pod evicted so far. */
function draining(extra: Partial<MachineStatus> = {}): MachineStatus {
  return status('m1', 'Draining', {
    since: iso(T0 - 120_000),
    reason: 'ScaleDown',
    message: 'draining: unneeded',
    failures: 1,
    unneededSince: iso(T0 - 900_000),
    disruption: 'Next',
    drain: { startedAt: iso(T0 - 120_000), deadline: iso(T0 + 480_000), podsToEvict: 2, evicted: 1 },
    ...extra,
  });
}

function input(over: Partial<DrainStepInput> = {}, pods: k8s.V1Pod[] = [runningPod('m1', '1', { name: 'a' }), runningPod('m1', '1', { name: 'b' })], n: k8s.V1Node | null = node('m1', { draining: true })): DrainStepInput {
  deepFreeze([pods, n]);
  return {
    spec: spec(),
    selected: [M1 as NonNullable<typeof M1>],
    machines: states(draining()),
    nodes: store(n ? [n] : []),
    podsOn: (m) => (m === 'm1' ? pods : []),
    progress: () => undefined,
    pendingCompiled: [],
    deleting: false,
    now: T0,
    ...over,
  };
}

const ABORTS: [string, Partial<DrainStepInput>, k8s.V1Pod[] | undefined, k8s.V1Node | undefined | 'none', string][] = [
  ['NodeGone', {}, undefined, 'none', 'its Node disappeared during the drain'],
  ['AutoscalerDeleted', { deleting: true }, undefined, undefined, 'the autoscaler is being deleted with deletionPolicy Retain: the machine is left on'],
  ['ScaleDownDisabled', { spec: spec({ scaleDown: { enabled: false } }) }, undefined, undefined, 'scale-down was disabled during the drain'],
  ['DryRun', { spec: spec({ dryRun: true }) }, undefined, undefined, 'dryRun was set during the drain'],
  [
    'NewBlocker',
    {},
    undefined,
    node('m1', { draining: true, annotations: { 'autoscaling.bamel.io/scale-down-disabled': 'true' } }),
    'a new blocker appeared: the Node is annotated autoscaling.bamel.io/scale-down-disabled: "true"',
  ],
  [
    'NewBlocker',
    {},
    [runningPod('m1', '1', { name: 'keep', annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } })],
    undefined,
    'a new blocker appeared: pod default/keep is annotated autoscaling.bamel.io/do-not-disrupt: "true"',
  ],
  ['PodsPending', { pendingCompiled: [compilePod(pendingPod('2')), compilePod(pendingPod('15'))] }, undefined, undefined, '1 unschedulable pod(s) need the room of this machine'],
  [
    'DrainTimedOut',
    { now: T0 + 480_000, progress: () => ({ evicted: 1, lastRefusal: 'default/a: eviction refused: Cannot evict pod as it would violate the pod\'s disruption budget.' }) },
    undefined,
    undefined,
    "the drain did not finish within scaleDown.drainTimeoutSeconds (600s): 2 pod(s) left (default/a, default/b); last refusal: default/a: eviction refused: Cannot evict pod as it would violate the pod's disruption budget.",
  ],
];

t.test('each reason to abort a drain: the machine stays on, Ready, untainted, and the failure is recorded', async (t) => {
  for (const [reason, over, pods, n, message] of ABORTS) {
    const now = over.now ?? T0;
    const r = drainStep(input(over, pods, n === 'none' ? null : n));
    t.same(
      r.machines.get('m1'),
      { name: 'm1', phase: 'Ready', since: iso(now), reason, message: `drain aborted, the machine stays on: ${message}`, failures: 1 },
      `${reason}: drain, disruption and unneededSince are dropped`,
    );
    t.same(r.aborts, [{ machine: 'm1', reason, message }], reason);
    t.same(r.failure, { time: iso(now), machine: 'm1', reason: `drain aborted: ${message}` }, reason);
    t.same(r.untaint, ['m1'], reason);
    t.same([r.intents, r.evict, r.completed, r.wakeAts], [[], [], [], []], reason);
  }
});

t.test('a drain past its deadline with pending pods that need its room is given back for them', async (t) => {
  const r = drainStep(input({ now: T0 + 600_000, pendingCompiled: [compilePod(pendingPod('2'))] }));
  t.equal(r.aborts[0]?.reason, 'PodsPending');
});

t.test('deletion with deletionPolicy PowerOff drains whatever the settings say', async (t) => {
  const forcing = { deleting: true, spec: spec({ deletionPolicy: 'PowerOff', dryRun: true, scaleDown: { enabled: false } }), pendingCompiled: [compilePod(pendingPod('2'))] };
  const going = drainStep(input(forcing));
  t.same(going.aborts, [], 'not disabled, not dry run, not pending pods');
  t.equal(going.evict.length, 1);
  const done = drainStep(input(forcing, [runningPod('m1', '1', { owner: 'DaemonSet' })]));
  t.same(done.intents, [{ machine: M1, action: 'PowerOff', reason: 'AutoscalerDeleted', message: 'drained (1 pod(s) evicted in 120s); powering off' }]);
  t.equal(drainStep({ ...input(forcing), nodes: store() }).aborts[0]?.reason, 'NodeGone', 'a Node gone still ends it');
});

t.test('a drain with nothing left to move completes: a PowerOff intent', async (t) => {
  const ds = runningPod('m1', '1', { owner: 'DaemonSet' });
  const finished = { ...runningPod('m1', '1'), status: { phase: 'Succeeded' } };
  const before = states(draining());
  const r = drainStep(input({ machines: before, progress: () => ({ evicted: 3 }) }, [ds, finished]));
  t.same(r.intents, [{ machine: M1, action: 'PowerOff', reason: 'ScaleDown', message: 'drained (3 pod(s) evicted in 120s); powering off' }]);
  t.same(r.completed, [{ machine: 'm1', ms: 120_000, evicted: 3 }], 'the larger of what the drainer and status counted');
  t.equal(r.machines.get('m1'), before.get('m1'), 'the status changes when the intent is applied');
  t.not(r.machines, before, 'a new map');
  t.same([r.aborts, r.evict, r.untaint, r.wakeAts], [[], [], [], []]);
  t.equal(r.failure, undefined);
});

t.test('a drain in progress: what is left to evict, its progress in status, a look again within 5 s', async (t) => {
  const a = runningPod('m1', '1', { name: 'a' });
  const leaving = runningPod('m1', '1', { name: 'leaving', deleting: true });
  const ds = runningPod('m1', '1', { owner: 'DaemonSet' });
  const refusal = 'default/a: eviction refused: the disruption budget allows no disruption';
  const r = drainStep(input({ progress: () => ({ evicted: 2, lastRefusal: refusal }) }, [a, leaving, ds]));
  t.same(r.evict, [{ machine: 'm1', pods: [a], evictedBefore: 1 }], 'a pod being deleted is waited for, not evicted again');
  t.same(r.machines.get('m1')?.drain, { startedAt: iso(T0 - 120_000), deadline: iso(T0 + 480_000), podsToEvict: 2, evicted: 2, lastRefusal: refusal });
  t.equal(r.machines.get('m1')?.disruption, 'Next', 'the rest of the status is kept');
  t.same(r.wakeAts, [T0 + 5000]);
  t.same([r.intents, r.aborts, r.completed, r.untaint], [[], [], [], []]);

  const near = drainStep(input({ machines: states(draining({ drain: { startedAt: iso(T0 - 598_000), deadline: iso(T0 + 2000), podsToEvict: 2, evicted: 0 } })) }));
  t.same(near.wakeAts, [T0 + 2000], 'the deadline, when it comes first');

  const { drain: _drain, ...withoutDrain } = draining();
  const noDrain = drainStep(input({ machines: states(withoutDrain) }));
  t.same(noDrain.machines.get('m1')?.drain, { startedAt: iso(T0 - 120_000), deadline: iso(T0 + 480_000), podsToEvict: 2, evicted: 0 }, 'no drain in status: from since and drainTimeoutSeconds');
});

t.test('machines that are not draining are left as they are', async (t) => {
  const before = states(status('m1', 'Ready'));
  const r = drainStep(input({ machines: before }));
  t.equal(r.machines.get('m1'), before.get('m1'));
  t.same([r.intents, r.aborts, r.evict, r.completed, r.untaint, r.wakeAts], [[], [], [], [], [], []]);
});
