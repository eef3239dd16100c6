import t from 'tap';
import type { BareMetalAutoscaler, BareMetalAutoscalerStatus, MachinePhase } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { budgetStep, clusterUsage, type BudgetInput } from '../../../controller/reconcile/budget.js';
import { autoscaler } from '../../webhook/fixtures.js';
import { deepFreeze, GiB, iso, spec, states, status, store, T0 } from './fixtures.js';

function input(over: Partial<BudgetInput> = {}): BudgetInput {
  return {
    autoscaler: 'a',
    spec: spec({ maxMachines: 10, scaleUp: { maxConcurrentPowerOns: 4, cooldownSeconds: 60 } }),
    machines: states(),
    caps: {},
    autoscalers: store(),
    lastScaleEvent: undefined,
    unread: 0,
    now: T0,
    ...over,
  };
}

const other = (name: string, s: BareMetalAutoscalerStatus): BareMetalAutoscaler => deepFreeze({ ...autoscaler(name, {}), status: s });
const phases = (...list: MachinePhase[]): ReturnType<typeof states> => states(...list.map((p, i) => status(`m${i}`, p)));

t.test('machines on and in flight, by phase', async (t) => {
  const b = budgetStep(input({ machines: phases('Off', 'PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff', 'Failed', 'Unknown') }));
  t.equal(b.onCount, 5, 'PoweringOn, Joining, Ready, Draining and PoweringOff draw power');
  t.equal(b.inFlight, 2, 'PoweringOn and Joining');
});

t.test('the tightest limit sets the budget, with its words', async (t) => {
  const max = budgetStep(input({ spec: spec({ maxMachines: 5, scaleUp: { maxConcurrentPowerOns: 4 } }), machines: phases('Ready', 'Ready', 'Ready', 'Draining') }));
  t.same(max.budget, { machines: 1, reason: 'maxMachines (5) reached' });

  const concurrent = budgetStep(input({ spec: spec({ maxMachines: 10, scaleUp: { maxConcurrentPowerOns: 3 } }), machines: phases('PoweringOn', 'Joining') }));
  t.same(concurrent.budget, { machines: 1, reason: 'maxConcurrentPowerOns (3) machines already powering on or joining' });

  const autoscalers = store([
    other('a', { readyMachines: 100, pendingMachines: 100 }),
    other('b', { readyMachines: 2, pendingMachines: 1 }),
    other('c', { readyMachines: 1 }),
  ]);
  const cap = budgetStep(input({ caps: { machines: 5 }, autoscalers }));
  t.same(cap.budget, { machines: 1, reason: 'cluster-wide cap of 5 machines reached' }, 'the other autoscalers use 4 of 5');

  const over = budgetStep(input({ spec: spec({ maxMachines: 2, scaleUp: { maxConcurrentPowerOns: 1 } }), machines: phases('Ready', 'Ready', 'Ready') }));
  t.same(over.budget, { machines: 0, reason: 'maxMachines (2) reached' }, 'never below zero');
});

t.test('cpu and memory caps: what the other autoscalers have on or coming is spent', async (t) => {
  const autoscalers = store([
    other('a', { onlineCapacity: { cpu: '1000', memory: '1000Gi' } }),
    other('b', { onlineCapacity: { cpu: '32', memory: '128Gi' }, pendingCapacity: { cpu: '16', memory: '64Gi' } }),
    other('c', { onlineCapacity: { cpu: 'lots' } }),
  ]);
  t.same(clusterUsage(autoscalers, 'a'), { machines: 0, cpu: 48_000n, memory: 192n * GiB * 1000n }, 'a quantity that does not parse counts 0');
  const b = budgetStep(input({ caps: { cpu: 100_000n, memory: 512n * GiB * 1000n }, autoscalers }));
  t.equal(b.budget.cpu, 52_000n);
  t.equal(b.budget.memory, 320n * GiB * 1000n);
  const none = budgetStep(input({ autoscalers }));
  t.notOk('cpu' in none.budget || 'memory' in none.budget, 'no cap, no cpu or memory budget');
});

t.test(
  'the cluster-wide cap counts the machines this autoscaler already has on',
  {
  },
  async (t) => {
    const b = budgetStep(input({ caps: { machines: 5 }, autoscalers: store([other('b', { readyMachines: 1 })]), machines: phases('Ready', 'Ready') }));
    t.same(b.budget, { machines: 2, reason: 'cluster-wide cap of 5 machines reached' });
  },
);

t.test('the scale-up cooldown blocks demand until it ends', async (t) => {
  const lastScaleEvent = { time: iso(T0 - 30_000), direction: 'Up' as const, machine: 'm1', reason: 'powering on for 1 pending pod(s)' };
  const during = budgetStep(input({ lastScaleEvent }));
  t.equal(during.demandBlocked, 'scale-up cooldown until 2026-11-28T10:00:30.000Z');
  t.equal(during.cooldownEnd, T0 + 30_000);
  t.same(during.wakeAts, [], 'the scale-up step wakes at its end, when pods wait for it');

  const after = budgetStep(input({ lastScaleEvent, now: T0 + 30_000 }));
  t.equal(after.demandBlocked, undefined, 'over at its end');
  t.equal(after.cooldownEnd, T0 + 30_000);

  const down = budgetStep(input({ lastScaleEvent: { ...lastScaleEvent, direction: 'Down' } }));
  t.equal(down.demandBlocked, undefined, 'a scale-down starts no scale-up cooldown');
  t.equal(down.cooldownEnd, undefined);
});

t.test('power states not read yet block demand, with a wake-up in a second', async (t) => {
  const b = budgetStep(input({ unread: 2 }));
  t.equal(b.demandBlocked, 'waiting for the power state of 2 machine(s)');
  t.same(b.wakeAts, [T0 + 1000]);
  const both = budgetStep(input({ unread: 1, lastScaleEvent: { time: iso(T0 - 30_000), direction: 'Up', machine: 'm1', reason: 'x' } }));
  t.equal(both.demandBlocked, 'waiting for the power state of 1 machine(s)', 'before the cooldown');
  t.same(both.wakeAts, [T0 + 1000]);
});
