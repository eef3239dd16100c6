import t from 'tap';
import type { ParsedMachine } from '../../../api/inventory.js';
import type { MachineStatus, ScaleEvent } from '../../../api/v1alpha1/baremetalautoscaler.js';
import type { PendingPod, ScaleUpDecision } from '../../../controller/decide.js';
import { applyIntents, deletionIntents, powerOnIntents } from '../../../controller/reconcile/intents.js';
import type { Intent } from '../../../controller/reconcile/types.js';
import { deepFreeze, iso, machines, spec, states, status, T0 } from './fixtures.js';

const TODAY = iso(T0).slice(0, 10);
const [M1, M2, M3, M4] = deepFreeze(machines('m1', 'm2', 'm3', 'm4')) as [ParsedMachine, ParsedMachine, ParsedMachine, ParsedMachine];
const EARLIER: ScaleEvent = deepFreeze({ time: iso(T0 - 3_600_000), direction: 'Up', machine: 'm9', reason: 'earlier' });
const intent = (machine: ParsedMachine, action: Intent['action'], reason: string, message: string, retry?: boolean): Intent =>
  deepFreeze({ machine, action, reason, message, ...(retry ? { retry } : {}) });

/** The status expected, with the operation an intent writes (its id is random: taken from what was written). */
function withOp(s: MachineStatus, action: 'PowerOn' | 'PowerOff', written: MachineStatus | undefined): MachineStatus {
  return { ...s, operation: { id: written?.operation?.id ?? 'none', action, startedAt: iso(T0), attempt: 1, holder: 'leader-1' } };
}

t.test('each intent becomes PoweringOn or PoweringOff with a new operation held by this identity', async (t) => {
  const before = states(
    status('m1', 'Off', { failures: 1, reason: 'PoweredOff', message: 'powered off', powerCyclesToday: 2, powerCyclesDay: TODAY }),
    status('m2', 'Draining', {
      reason: 'ScaleDown',
      powerCyclesToday: 1,
      powerCyclesDay: '2026-11-27',
      unneededSince: iso(T0 - 900_000),
      disruption: 'Next',
      blockers: ['old'],
      drain: { startedAt: iso(T0 - 60_000), deadline: iso(T0 + 540_000), podsToEvict: 0, evicted: 2 },
    }),
    status('m3', 'Off'),
  );
  const r = applyIntents(before, [intent(M1, 'PowerOn', 'PendingPods', 'powering on for 1 pending pod(s): x'), intent(M2, 'PowerOff', 'ScaleDown', 'drained (2 pod(s) evicted in 60s); powering off')], EARLIER, 'leader-1', T0);

  const on = r.machines.get('m1');
  const off = r.machines.get('m2');
  t.match(on?.operation?.id, /^on-/);
  t.match(off?.operation?.id, /^off-/);
  t.not(on?.operation?.id, off?.operation?.id);
  t.same(on, withOp({ name: 'm1', phase: 'PoweringOn', since: iso(T0), failures: 1, reason: 'PendingPods', message: 'powering on for 1 pending pod(s): x', powerCyclesToday: 3, powerCyclesDay: TODAY }, 'PowerOn', on));
  t.same(
    off,
    withOp({ name: 'm2', phase: 'PoweringOff', since: iso(T0), reason: 'ScaleDown', message: 'drained (2 pod(s) evicted in 60s); powering off', powerCyclesToday: 1, powerCyclesDay: '2026-11-27' }, 'PowerOff', off),
    'drain, disruption, unneededSince and blockers dropped; a power-off is no power cycle',
  );
  t.same(
    r.started.map((s) => [s.machine, s.status]),
    [
      [M1, on],
      [M2, off],
    ],
  );
  t.equal(r.machines.get('m3'), before.get('m3'), 'untouched');
  t.same(r.lastScaleEvent, { time: iso(T0), direction: 'Down', machine: 'm2', reason: 'drained (2 pod(s) evicted in 60s); powering off' }, 'the last intent');
  t.equal(before.get('m1')?.phase, 'Off', 'the input map is not changed');
});

t.test("power cycles count from 1 on a new day; a machine status never saw starts from Unknown's fields", async (t) => {
  const before = states(status('m3', 'Off', { powerCyclesToday: 4, powerCyclesDay: '2026-11-27' }));
  const r = applyIntents(before, [intent(M3, 'PowerOn', 'MinMachines', 'm'), intent(M4, 'PowerOn', 'PendingPods', 'p')], undefined, 'leader-1', T0);
  t.equal(r.machines.get('m3')?.powerCyclesToday, 1);
  t.equal(r.machines.get('m3')?.powerCyclesDay, TODAY);
  t.same(r.machines.get('m4'), withOp({ name: 'm4', phase: 'PoweringOn', since: iso(T0), reason: 'PendingPods', message: 'p', powerCyclesToday: 1, powerCyclesDay: TODAY }, 'PowerOn', r.machines.get('m4')));
  t.same(r.lastScaleEvent, { time: iso(T0), direction: 'Up', machine: 'm4', reason: 'p' });
});

t.test('a retried power-off is not a new scale event; no intent changes nothing', async (t) => {
  const before = states(status('m2', 'PoweringOff', { reason: 'ScaleDown', operation: { id: 'off-old', action: 'PowerOff', startedAt: iso(T0 - 60_000) } }));
  const retried = applyIntents(before, [intent(M2, 'PowerOff', 'ScaleDown', 'the earlier power-off did not take effect; retrying', true)], EARLIER, 'leader-1', T0);
  t.equal(retried.lastScaleEvent, EARLIER);
  t.not(retried.machines.get('m2')?.operation?.id, 'off-old', 'a new operation');
  t.equal(retried.started.length, 1, 'the BMC is asked again');

  const none = applyIntents(before, [], EARLIER, 'leader-1', T0);
  t.same([...none.machines.entries()], [...before.entries()]);
  t.same(none.started, []);
  t.equal(none.lastScaleEvent, EARLIER);
  t.equal(applyIntents(before, [], undefined, 'leader-1', T0).lastScaleEvent, undefined);
});

t.test('deletion with deletionPolicy PowerOff: joining machines are powered off at once; operations are waited for', async (t) => {
  const sel = deepFreeze(machines('j1', 'j2', 'op', 'ready', 'off', 'new'));
  const s = states(
    status('j1', 'Joining'),
    status('j2', 'Joining'),
    status('op', 'PoweringOn', { operation: { id: 'on-1', action: 'PowerOn', startedAt: iso(T0) } }),
    status('ready', 'Ready'),
    status('off', 'Off'),
  );
  const already = [intent(sel[1] as ParsedMachine, 'PowerOff', 'JoinTimeout', 'its Node did not become Ready within 600s; powering it off and quarantining it')];
  const r = deletionIntents(spec({ deletionPolicy: 'PowerOff' }), sel, s, already);
  t.same(r.intents, [{ machine: sel[0], action: 'PowerOff', reason: 'AutoscalerDeleted', message: 'the autoscaler is being deleted with deletionPolicy PowerOff' }], 'not twice for j2');
  t.same(r.blocked, ['j1: powering off', 'j2: powering off', 'op: waiting for its PowerOn operation']);
  t.same(deletionIntents(spec({ deletionPolicy: 'Retain' }), sel, s, []), { intents: [], blocked: [] }, 'Retain leaves every machine as it is');
});

t.test("the decision's power-ons, with the message status and events carry", async (t) => {
  const pods: PendingPod[] = [
    { key: 'default/a', uid: 'a', requests: {} },
    { key: 'default/b', uid: 'b', requests: {} },
  ];
  const decision: ScaleUpDecision = {
    powerOn: [
      { machine: 'm1', reason: 'PendingPods', pods, score: 0.3, detail: 'closest to the ideal machine for 2 pending pod(s)' },
      { machine: 'm2', reason: 'Pressure', pods: [], score: 0.5, detail: 'closest for the pressure in cpu' },
      { machine: 'm3', reason: 'MinMachines', pods: [], score: 0, detail: 'to reach minMachines' },
    ],
    absorbed: [],
    unplaceable: [],
    waiting: [],
  };
  const readings = [
    { category: 'cpu' as const, level: 0.9, ratePerMinute: 0, pressured: true, reason: 'cpu level 90% at or above 85%' },
    { category: 'memory' as const, level: 0.5, ratePerMinute: 0, pressured: false },
    { category: 'ephemeral-storage' as const, level: 0.2, ratePerMinute: 0, pressured: true, reason: 'node m7 reports DiskPressure' },
  ];
  t.same(powerOnIntents(spec({ minMachines: 3 }), decision, [M1, M2, M3], readings), [
    { machine: M1, action: 'PowerOn', reason: 'PendingPods', message: 'powering on for 2 pending pod(s): closest to the ideal machine for 2 pending pod(s)' },
    { machine: M2, action: 'PowerOn', reason: 'Pressure', message: 'powering on for cpu level 90% at or above 85%; node m7 reports DiskPressure: closest for the pressure in cpu' },
    { machine: M3, action: 'PowerOn', reason: 'MinMachines', message: 'powering on to reach minMachines 3' },
  ]);
});
