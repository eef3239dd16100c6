import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { ParsedMachine } from '../../../api/inventory.js';
import { PodIndex } from '../../../controller/observe.js';
import type { PressureObservation } from '../../../controller/pressure-tracker.js';
import type { Budget } from '../../../controller/reconcile/budget.js';
import { CandidateCache, demandStep } from '../../../controller/reconcile/demand.js';
import { powerCyclesToday, scaleUpStep, type ScaleUpStepInput } from '../../../controller/reconcile/scale-up.js';
import type { MachineStates } from '../../../controller/reconcile/types.js';
import { deepFreeze, iso, machines, pendingPod, runningPod, spec, states, status, store, T0 } from './fixtures.js';

const TODAY = iso(T0).slice(0, 10);
const COOLDOWN = 'scale-up cooldown until 2026-11-28T10:00:30.000Z';

function budget(over: Partial<Budget> = {}): Budget {
  return deepFreeze({ budget: { machines: 5, reason: 'maxMachines (10) reached' }, onCount: 0, inFlight: 0, wakeAts: [], ...over });
}

const NO_PRESSURE: PressureObservation = { readings: [] };
const CPU_PRESSURE: PressureObservation = {
  readings: [{ category: 'cpu', level: 0.9, ratePerMinute: 0, pressured: true, reason: 'cpu level 90% at or above 85%' }],
  deficit: { cpu: 8000n },
};

function input(selected: ParsedMachine[], machineStates: MachineStates, pending: k8s.V1Pod[], over: Partial<ScaleUpStepInput> = {}, running: k8s.V1Pod[] = []): ScaleUpStepInput {
  deepFreeze([selected, pending, running]);
  const index = new PodIndex();
  index.rebuild([...pending, ...running]);
  const cache = new CandidateCache();
  const demand = demandStep({ demand: pending, selected, machines: machineStates, nodes: store(), pods: index, emptyCandidate: (m) => cache.empty('1', m), readyAbsorbMs: 60_000, now: T0 });
  return {
    spec: spec({ maxMachines: 10 }),
    selected,
    machines: machineStates,
    demand,
    pendingCount: pending.length,
    budget: budget(),
    pressure: NO_PRESSURE,
    busy: () => false,
    podsOn: (m) => index.podsOn(m),
    unread: 0,
    now: T0,
    ...over,
  };
}

const chosen = (r: ReturnType<typeof scaleUpStep>): [string, string][] => r.decision.powerOn.map((c) => [c.machine, c.reason]);

t.test('only powered-off machines with no operation of ours running are candidates', async (t) => {
  const selected = machines('m1', 'm2', 'm3', 'm4', 'm5');
  const s = states(status('m1', 'Off'), status('m2', 'Off'), status('m3', 'Ready'), status('m4', 'Failed'), status('m5', 'Draining'));
  const pods = [pendingPod('2', { name: 'a' })];
  t.same(chosen(scaleUpStep(input(selected, s, pods, { busy: (m) => m === 'm1' }))), [['m2', 'PendingPods']]);
  const none = scaleUpStep(input(selected, s, pods, { busy: (m) => m === 'm1' || m === 'm2' }));
  t.same(chosen(none), []);
  t.equal(none.decision.unplaceable.length, 1, 'no candidate at all: unplaceable');
  t.same(none.wakeAts, []);
});

t.test("a machine's power cost is its maxWatts, else its idleWatts; power cycles count today's only", async (t) => {
  const selected = machines({ name: 'm1', maxWatts: 500 }, { name: 'm2', idleWatts: 200 }, { name: 'm3', maxWatts: 300, idleWatts: 100 });
  const s = states(status('m1', 'Off'), status('m2', 'Off'), status('m3', 'Off'));
  t.same(chosen(scaleUpStep(input(selected, s, [pendingPod('2')]))), [['m2', 'PendingPods']]);

  const same = machines({ name: 'm1', maxWatts: 300 }, { name: 'm2', maxWatts: 300 });
  const cycles = states(status('m1', 'Off', { powerCyclesToday: 3, powerCyclesDay: TODAY }), status('m2', 'Off', { powerCyclesToday: 5, powerCyclesDay: '2026-11-27' }));
  t.same(chosen(scaleUpStep(input(same, cycles, [pendingPod('2')]))), [['m2', 'PendingPods']], "yesterday's cycles do not count");
  t.equal(powerCyclesToday(cycles.get('m1'), T0), 3);
  t.equal(powerCyclesToday(cycles.get('m2'), T0), 0);
  t.equal(powerCyclesToday(undefined, T0), 0);
  t.equal(powerCyclesToday({ name: 'x', phase: 'Off', since: iso(T0), powerCyclesDay: TODAY }, T0), 0, 'a day without a count');
});

t.test('the cooldown holds the pending pods back and wakes at its end; minMachines is not held back', async (t) => {
  const selected = machines('m1', 'm2');
  const s = states(status('m1', 'Off'), status('m2', 'Off'));
  const blocked = budget({ demandBlocked: COOLDOWN, cooldownEnd: T0 + 30_000 });
  const r = scaleUpStep(input(selected, s, [pendingPod('2', { name: 'w' })], { budget: blocked }));
  t.same(chosen(r), []);
  t.same(
    r.decision.waiting.map((p) => p.key),
    ['default/w'],
  );
  t.equal(r.decision.limitedBy, COOLDOWN);
  t.same(r.wakeAts, [T0 + 30_000]);

  t.same(scaleUpStep(input(selected, s, [], { budget: blocked })).wakeAts, [], 'nothing waits: no wake-up');

  const min = scaleUpStep(input(selected, s, [], { budget: blocked, spec: spec({ maxMachines: 10, minMachines: 1 }) }));
  t.same(chosen(min), [['m1', 'MinMachines']]);
});

t.test('while power states are unread, nothing is powered on, not even for minMachines', async (t) => {
  const selected = machines('m1', 'm2');
  const s = states(status('m1', 'Off'), status('m2', 'Unknown'));
  const r = scaleUpStep(
    input(selected, s, [pendingPod('2')], {
      unread: 1,
      budget: budget({ demandBlocked: 'waiting for the power state of 1 machine(s)', wakeAts: [T0 + 1000] }),
      spec: spec({ maxMachines: 10, minMachines: 2 }),
    }),
  );
  t.same(chosen(r), []);
  t.equal(r.decision.limitedBy, 'waiting for the power state of 1 machine(s)');
  t.same(r.wakeAts, []);
});

t.test(
  'a cooldown that is over adds no wake-up while power states are being read',
  {
  },
  async (t) => {
    const selected = machines('m1', 'm2');
    const s = states(status('m1', 'Off'), status('m2', 'Unknown'));
    const blocked = budget({ demandBlocked: 'waiting for the power state of 1 machine(s)', cooldownEnd: T0 - 3_600_000, wakeAts: [T0 + 1000] });
    t.same(scaleUpStep(input(selected, s, [pendingPod('2')], { unread: 1, budget: blocked })).wakeAts, []);
  },
);

t.test('pressure without pending pods: only machines whose taints a running workload tolerates', async (t) => {
  const selected = machines(
    { name: 'general', cpu: 32 },
    { name: 'batch', cpu: 8, taints: [{ key: 'dedicated', value: 'batch', effect: 'NoSchedule' }] },
    { name: 'soon', cpu: 16, taints: [{ key: 'maintenance', value: 'soon', effect: 'PreferNoSchedule' }] },
    'ready',
  );
  const s = states(status('general', 'Off'), status('batch', 'Off'), status('soon', 'Off'), status('ready', 'Ready'));
  const daemon = runningPod('ready', '1', { owner: 'DaemonSet', tolerations: [{ operator: 'Exists' }] });
  const plain = runningPod('ready', '4');
  const r = scaleUpStep(input(selected, s, [], { pressure: CPU_PRESSURE }, [daemon, plain]));
  t.same(chosen(r), [['soon', 'Pressure']], 'batch is closest but nothing running tolerates it; PreferNoSchedule does not count');
  t.same(r.wakeAts, []);

  const tolerant = runningPod('ready', '4', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }] });
  t.same(chosen(scaleUpStep(input(selected, s, [], { pressure: CPU_PRESSURE }, [tolerant]))), [['batch', 'Pressure']]);

  const inFlight = scaleUpStep(input(selected, s, [], { pressure: CPU_PRESSURE, budget: budget({ inFlight: 1 }) }, [plain]));
  t.same(chosen(inFlight), [], 'a machine already coming answers the pressure first');

  const cooling = scaleUpStep(input(selected, s, [], { pressure: CPU_PRESSURE, budget: budget({ demandBlocked: COOLDOWN, cooldownEnd: T0 + 30_000 }) }, [plain]));
  t.same(chosen(cooling), []);
  t.equal(cooling.decision.limitedBy, COOLDOWN);
  t.same(cooling.wakeAts, [T0 + 30_000], 'the pressure waits for the end of the cooldown');
});
