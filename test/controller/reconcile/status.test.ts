import t from 'tap';
import type { Condition } from '../../../api/v1alpha1/baremetalautoscaler.js';
import type { ScaleUpDecision } from '../../../controller/decide.js';
import { budgetStep, type BudgetInput } from '../../../controller/reconcile/budget.js';
import { buildStatus, limitReason, type StatusInput } from '../../../controller/reconcile/status.js';
import { deepFreeze, iso, machines, spec, states, status, store, T0 } from './fixtures.js';

const SELECTED = deepFreeze(machines({ name: 'a', cpu: 16, memoryGi: 64 }, { name: 'b', cpu: 32.5, memoryGi: 128 }, 'c', 'd', 'e', 'f'));
const MACHINES = states(
  status('f', 'Draining'),
  status('e', 'Off'),
  status('gone', 'PoweringOff', { operation: { id: 'off-1', action: 'PowerOff', startedAt: iso(T0) } }),
  status('b', 'Ready'),
  status('d', 'Joining'),
  status('a', 'Ready'),
  status('c', 'PoweringOn'),
);
const NONE: ScaleUpDecision = deepFreeze({ powerOn: [], absorbed: [], unplaceable: [], waiting: [] });
const INVENTORY_VALID: Condition = deepFreeze({ type: 'InventoryValid', status: 'True', reason: 'Valid', message: '6 machines in the inventory', observedGeneration: 3, lastTransitionTime: iso(T0 - 60_000) });

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    generation: 3,
    conditions: [INVENTORY_VALID],
    selected: SELECTED,
    machines: MACHINES,
    deletionBlocked: [],
    deleting: false,
    dryRun: false,
    decision: NONE,
    degraded: [],
    unschedulablePods: 4,
    readings: [],
    lastScaleEvent: undefined,
    lastScaleDownFailure: undefined,
    now: T0,
    ...over,
  };
}

const condition = (s: ReturnType<typeof buildStatus>, type: string): Condition | undefined => s.conditions?.find((c) => c.type === type);
const brief = (c: Condition | undefined): [string, string, string] | undefined => c && [c.status, c.reason, c.message];

t.test('counts, capacity sums and machines by name', async (t) => {
  const s = buildStatus(input());
  t.same(
    s.machines?.map((m) => m.name),
    ['a', 'b', 'c', 'd', 'e', 'f', 'gone'],
  );
  t.same([s.observedGeneration, s.readyMachines, s.pendingMachines, s.offMachines, s.totalMachines, s.unschedulablePods], [3, 2, 2, 1, 6, 4]);
  t.same(s.onlineCapacity, { cpu: '48500m', memory: '192Gi', pods: '220' }, 'the Ready machines');
  t.same(s.pendingCapacity, { cpu: '32', memory: '128Gi', pods: '220' }, 'powering on and joining');
  t.same(brief(condition(s, 'Ready')), ['True', 'Reconciled', '2 Ready, 2 pending, 2 scaling down, 1 off']);
  t.same(
    s.conditions?.map((c) => c.type),
    ['BMCDegraded', 'InventoryValid', 'Ready', 'ScalingLimited'],
  );
  t.equal(condition(s, 'InventoryValid'), INVENTORY_VALID, 'the conditions set before are kept');
  t.same(condition(s, 'Ready'), { type: 'Ready', status: 'True', reason: 'Reconciled', message: '2 Ready, 2 pending, 2 scaling down, 1 off', observedGeneration: 3, lastTransitionTime: iso(T0) });
  t.notOk('lastScaleEvent' in s || 'lastScaleTime' in s || 'lastScaleDownFailure' in s);
});

t.test('pressure readings, the last scale event and the last failed scale-down', async (t) => {
  const last = { time: iso(T0 - 5000), direction: 'Up' as const, machine: 'c', reason: 'powering on for 1 pending pod(s)' };
  const failure = { time: iso(T0 - 9000), machine: 'f', reason: 'drain aborted: x' };
  const s = buildStatus(
    input({
      lastScaleEvent: last,
      lastScaleDownFailure: failure,
      readings: [
        { category: 'cpu', level: 0.9, ratePerMinute: 0.01, pressured: true, reason: 'cpu level 90% at or above 85%' },
        { category: 'memory', level: 0.4, ratePerMinute: 0, pressured: false },
      ],
    }),
  );
  t.same(s.pressure, [
    { category: 'cpu', level: 0.9, ratePerMinute: 0.01, pressured: true, reason: 'cpu level 90% at or above 85%' },
    { category: 'memory', level: 0.4, ratePerMinute: 0, pressured: false },
  ]);
  t.same(s.lastScaleEvent, last);
  t.equal(s.lastScaleTime, last.time);
  t.same(s.lastScaleDownFailure, failure);
});

t.test('ScalingLimited names the limit, from the words of the budget', async (t) => {
  const budget = (over: Partial<BudgetInput>): string => {
    const b = budgetStep({ autoscaler: 'a', spec: spec({ maxMachines: 0 }), machines: states(), caps: {}, autoscalers: store(), lastScaleEvent: undefined, unread: 0, now: T0, ...over });
    return b.demandBlocked ?? b.budget.reason ?? '';
  };
  const cases: [string, string][] = [
    [budget({}), 'MaxMachines'],
    [budget({ spec: spec({ maxMachines: 5, scaleUp: { maxConcurrentPowerOns: 1 } }), machines: states(status('x', 'Joining')) }), 'MaxConcurrentPowerOns'],
    [budget({ spec: spec(), caps: { machines: 0 } }), 'ClusterCap'],
    ['cluster-wide cpu or memory cap reached', 'ClusterCap'],
    [budget({ lastScaleEvent: { time: iso(T0), direction: 'Up', machine: 'x', reason: 'x' } }), 'Cooldown'],
    [budget({ unread: 2 }), 'ReadingPowerStates'],
    ['no powered-off machine left that can host the remaining pods', 'NoCandidate'],
  ];
  t.equal(cases[2]?.[0], 'cluster-wide cap of 0 machines reached');
  const waiting = [
    { key: 'default/a', uid: 'a', requests: {} },
    { key: 'default/b', uid: 'b', requests: {} },
  ];
  for (const [words, reason] of cases) {
    t.equal(limitReason(words), reason, words);
    const s = buildStatus(input({ decision: { ...NONE, waiting, limitedBy: words } }));
    t.same(brief(condition(s, 'ScalingLimited')), ['True', reason, `2 pending pod(s) wait: ${words}`]);
  }
  t.same(brief(condition(buildStatus(input()), 'ScalingLimited')), ['False', 'WithinLimits', 'no limit holds back a scale-up']);
});

t.test('BMCDegraded lists the BMCs whose breaker is open', async (t) => {
  const s = buildStatus(
    input({
      degraded: [
        { machine: 'a', health: { endpoint: 'ipmi://10.0.0.1:623', state: 'open', degraded: true, credentialsRefused: false, consecutiveFailures: 3, lastFailure: 'connect ECONNREFUSED', retryAt: new Date(T0 + 60_000) } },
        { machine: 'b', health: { endpoint: 'ipmi://10.0.0.2:623', state: 'open', degraded: true, credentialsRefused: true, consecutiveFailures: 5 } },
      ],
    }),
  );
  t.same(brief(condition(s, 'BMCDegraded')), ['True', 'CircuitOpen', `a: 3 failures (last connect ECONNREFUSED), next try ${iso(T0 + 60_000)}; b: the BMC refused its credentials, 5 failures (last ?), next try ?`]);
  t.same(brief(condition(buildStatus(input()), 'BMCDegraded')), ['False', 'Healthy', 'every BMC answered its last request']);

  // A fleet of thousands with its BMC network down: the first 20 spelled out, the rest counted.
  const many = Array.from({ length: 5000 }, (_, i) => ({
    machine: `rack-${i}`,
    health: { endpoint: `ipmi://10.0.${i >> 8}.${i & 255}:623`, state: 'open' as const, degraded: true, credentialsRefused: false, consecutiveFailures: 3, lastFailure: 'connect ECONNREFUSED', retryAt: new Date(T0) },
  }));
  const message = condition(buildStatus(input({ degraded: many })), 'BMCDegraded')?.message ?? '';
  t.ok(message.length <= 32768, `the message fits its 32 KiB (${message.length})`);
  t.match(message, /^rack-0: 3 failures .*; rack-19: 3 failures [^;]*; and 4980 more$/);
});

t.test('a dry run says what it would power on', async (t) => {
  const decision: ScaleUpDecision = {
    ...NONE,
    powerOn: [
      { machine: 'e', reason: 'PendingPods', pods: [], score: 0, detail: '' },
      { machine: 'x', reason: 'MinMachines', pods: [], score: 0, detail: '' },
    ],
  };
  t.same(brief(condition(buildStatus(input({ dryRun: true, decision })), 'Ready')), ['True', 'DryRun', 'dry run: would power on e (PendingPods), x (MinMachines)']);
  t.same(brief(condition(buildStatus(input({ dryRun: true })), 'Ready')), ['True', 'DryRun', 'dry run: no machine would be powered on']);
});

t.test('a deletion that waits says what for, and Ready stays DeletionBlocked while it is deleted', async (t) => {
  const blocked = buildStatus(input({ deleting: true, deletionBlocked: ['d: powering off', 'c: waiting for its PowerOn operation'] }));
  t.same(brief(condition(blocked, 'Ready')), ['False', 'DeletionBlocked', 'd: powering off; c: waiting for its PowerOn operation']);
  const before = deepFreeze(blocked.conditions ?? []);
  const still = buildStatus(input({ deleting: true, conditions: before, now: T0 + 1000 }));
  t.equal(condition(still, 'Ready'), condition(blocked, 'Ready'), 'not replaced by Reconciled while deleting');
  const back = buildStatus(input({ conditions: before, now: T0 + 1000 }));
  t.same(brief(condition(back, 'Ready')), ['True', 'Reconciled', '2 Ready, 2 pending, 2 scaling down, 1 off'], 'no longer deleted: Reconciled again');
  t.equal(condition(back, 'Ready')?.lastTransitionTime, iso(T0 + 1000));
  t.equal(condition(back, 'BMCDegraded')?.lastTransitionTime, iso(T0), 'unchanged conditions keep their transition time');
});
