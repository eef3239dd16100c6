import t from 'tap';
import type { Operation } from '../../../api/v1alpha1/baremetalautoscaler.js';
import type { OperationOutcome, PowerObservation } from '../../../controller/lifecycle.js';
import { lifecycleStep, type LifecycleInput } from '../../../controller/reconcile/lifecycle.js';
import { deepFreeze, iso, machines, node, spec, status, store, T0 } from './fixtures.js';

const SETTINGS = { settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000 };

function input(over: Partial<LifecycleInput> & Pick<LifecycleInput, 'selected' | 'previous'>, power: Record<string, PowerObservation> = {}, outcomes: Record<string, OperationOutcome> = {}): LifecycleInput {
  deepFreeze([over.selected, over.previous, power, outcomes]);
  return {
    spec: spec(),
    nodes: store(),
    power: (m) => power[m],
    outcome: (m) => outcomes[m],
    settings: SETTINGS,
    now: T0,
    ...over,
  };
}

t.test('a join timeout asks for a PowerOff with reason JoinTimeout, naming the timeout', async (t) => {
  const selected = machines('m1', { name: 'm2', joinTimeoutSeconds: 120 });
  const late = lifecycleStep(input({ selected, previous: [status('m1', 'Joining', { since: iso(T0 - 600_000) }), status('m2', 'Joining', { since: iso(T0 - 120_000) })] }));
  t.same(late.intents, [
    { machine: selected[0], action: 'PowerOff', reason: 'JoinTimeout', message: 'its Node did not become Ready within 600s; powering it off and quarantining it' },
    { machine: selected[1], action: 'PowerOff', reason: 'JoinTimeout', message: 'its Node did not become Ready within 120s; powering it off and quarantining it' },
  ]);
  t.equal(late.machines.get('m1')?.phase, 'Joining', 'the phase changes when the intent is applied, not here');
  t.same(late.wakeAts, []);
  t.same(late.events, []);

  // Before the deadline: no intent, a wake-up at the deadline (the machine's own timeout wins).
  const early = lifecycleStep(input({ selected, previous: [status('m1', 'Joining', { since: iso(T0 - 590_000) }), status('m2', 'Joining', { since: iso(T0 - 100_000) })] }));
  t.same(early.intents, []);
  t.same(early.wakeAts, [T0 + 10_000, T0 + 20_000]);
});

t.test('a power-off that did not take effect is retried, with the reason it was made for', async (t) => {
  const selected = machines('m1', 'm2');
  const op = (id: string): Operation => ({ id, action: 'PowerOff', startedAt: iso(T0 - 60_000), holder: 'old-leader' });
  const r = lifecycleStep(
    input(
      { selected, previous: [status('m1', 'PoweringOff', { reason: 'ScaleDown', operation: op('off-1') }), status('m2', 'PoweringOff', { operation: op('off-2') })] },
      { m1: { state: 'on', at: T0 - 1000 }, m2: { state: 'on', at: T0 - 1000 } },
    ),
  );
  t.same(r.intents, [
    { machine: selected[0], action: 'PowerOff', reason: 'ScaleDown', message: 'the earlier power-off did not take effect; retrying', retry: true },
    { machine: selected[1], action: 'PowerOff', reason: 'PowerOffRetry', message: 'the earlier power-off did not take effect; retrying', retry: true },
  ]);
});

t.test('probes, lifecycle events and the operations status now records', async (t) => {
  const selected = machines('m1', 'm2', 'm3', 'm4', 'm5');
  const on = (id: string): Operation => ({ id, action: 'PowerOn', startedAt: iso(T0 - 10_000), holder: 'me' });
  const r = lifecycleStep(
    input(
      {
        selected,
        previous: [
          status('m2', 'Joining'),
          status('m3', 'PoweringOn', { since: iso(T0 - 10_000), operation: on('op-3') }),
          status('m4', 'PoweringOn', { since: iso(T0 - 10_000), operation: on('op-4') }),
          status('m5', 'PoweringOn', { since: iso(T0 - 10_000), operation: on('op-5') }),
        ],
        nodes: store([deepFreeze(node('m2'))]),
      },
      {},
      { m3: { id: 'op-3', done: true, ok: true, state: 'on' }, m4: { id: 'op-other', done: true, ok: true, state: 'on' }, m5: { id: 'op-5', done: false } },
    ),
  );
  t.same(
    r.probes.map((m) => m.name),
    ['m1', 'm4'],
    'a new machine, and an intent whose outcome is not ours',
  );
  t.same(r.acknowledged, [{ machine: 'm3', opId: 'op-3' }], 'only a finished operation of the one in status');
  t.same(r.events, [{ machine: 'm2', action: { type: 'joined', joinMs: 3_600_000 } }]);
  t.same(
    [...r.machines.values()].map((s) => [s.name, s.phase]),
    [
      ['m1', 'Unknown'],
      ['m2', 'Ready'],
      ['m3', 'Joining'],
      ['m4', 'PoweringOn'],
      ['m5', 'PoweringOn'],
    ],
  );
  t.same(r.wakeAts, [T0 + 1000], 'the unsettled intent is looked at again in a second');
  t.same(r.intents, []);
  t.same(r.forgotten, []);
});

t.test("an Off machine is adopted only by a Node created after it went off (the Node's creationTimestamp)", async (t) => {
  const selected = machines('m1', 'm2');
  const r = lifecycleStep(
    input({
      selected,
      previous: [status('m1', 'Off', { since: iso(T0 - 60_000) }), status('m2', 'Off', { since: iso(T0 - 60_000) })],
      nodes: store([deepFreeze(node('m1', { created: T0 - 10_000 })), deepFreeze(node('m2', { created: T0 - 120_000 }))]),
    }),
  );
  t.equal(r.machines.get('m1')?.phase, 'Ready');
  t.equal(r.machines.get('m1')?.reason, 'PoweredOnByHand');
  t.same(r.events, [{ machine: 'm1', action: { type: 'adopted', how: 'powered on by hand' } }]);
  t.equal(r.machines.get('m2')?.phase, 'Off', 'the Node of a machine just powered off is not a hand power-on');
});

t.test('a machine no longer selected stays in status while an operation is in flight, else it is forgotten', async (t) => {
  const selected = machines('m1');
  const inFlight = status('m2', 'PoweringOn', { operation: { id: 'op-2', action: 'PowerOn', startedAt: iso(T0 - 5000), holder: 'me' } });
  const r = lifecycleStep(input({ selected, previous: [status('m1', 'Off'), inFlight, status('m3', 'Off')] }));
  t.same([...r.machines.keys()], ['m1', 'm2']);
  t.equal(r.machines.get('m2'), inFlight, 'kept as it was');
  t.same(r.forgotten, ['m3'], 'its BMC session may close');
  t.same(r.probes, []);
});

t.test(
  'a machine no longer selected whose operation has finished is acknowledged and not held with its operation',
  {
  },
  async (t) => {
    const selected = machines('m1');
    const done = status('m2', 'PoweringOn', { operation: { id: 'op-2', action: 'PowerOn', startedAt: iso(T0 - 5000), holder: 'me' } });
    const r = lifecycleStep(input({ selected, previous: [status('m1', 'Off'), done] }, {}, { m2: { id: 'op-2', done: true, ok: true, state: 'on' } }));
    t.same(r.acknowledged, [{ machine: 'm2', opId: 'op-2' }]);
    t.equal(r.machines.get('m2')?.operation, undefined);
  },
);
