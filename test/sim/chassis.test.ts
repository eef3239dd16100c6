import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { drawOf, SimChassis } from '../../sim/chassis.js';
import type { SimPowerEvent, SimPowerState } from '../../sim/types.js';

// The chassis model both BMC simulators drive; the simulators' own tests cover what each
// protocol makes of it (test/sim/ipmi-sim.test.ts, test/sim/redfish-fake.test.ts).

function chassis(initialPower: SimPowerState = 'on'): { c: SimChassis; states: SimPowerState[]; events: SimPowerEvent[]; logged: SimPowerEvent[] } {
  const logged: SimPowerEvent[] = [];
  const c = new SimChassis({ machine: 'm', initialPower, log: (e) => logged.push(e) });
  const states: SimPowerState[] = [];
  const events: SimPowerEvent[] = [];
  c.onStateChange((s) => states.push(s));
  c.onPower((e) => events.push(e));
  return { c, states, events, logged };
}

t.test('a change that is due lands at once, without landed', async (t) => {
  const { c, states } = chassis('off');
  let landed = 0;
  const now = Date.now();
  c.schedule({ to: 'on', shutdownUntil: now, landsAt: now, graceful: false }, { landed: () => landed++ });
  t.equal(c.power, 'on');
  t.equal(c.change, undefined);
  t.same(states, ['on']);
  await sleep(20);
  t.equal(landed, 0);
});

t.test('deferred: a change that is due still lands from a timer, after the caller answered', async (t) => {
  const { c } = chassis('on');
  const landed: number[] = [];
  const now = Date.now();
  c.schedule({ to: 'off', shutdownUntil: now, landsAt: now, graceful: true }, { deferred: true, landed: (afterMs) => landed.push(afterMs) });
  t.equal(c.power, 'on', 'not yet');
  t.match(c.change, { to: 'off', graceful: true });
  await sleep(20);
  t.equal(c.power, 'off');
  t.equal(c.change, undefined);
  t.equal(landed.length, 1);
});

t.test('a later change lands after its delay; set and cancel drop it', async (t) => {
  const { c, states } = chassis('on');
  const now = Date.now();
  c.schedule({ to: 'off', shutdownUntil: now + 30, landsAt: now + 30, graceful: true });
  t.equal(c.power, 'on');
  await sleep(80);
  t.equal(c.power, 'off');
  t.same(states, ['off']);

  c.schedule({ to: 'on', shutdownUntil: Date.now(), landsAt: Date.now() + 30, graceful: false });
  c.set('off', false);
  t.equal(c.change, undefined, 'set ends the change under way');
  c.schedule({ to: 'on', shutdownUntil: Date.now(), landsAt: Date.now() + 30, graceful: false });
  c.cancel();
  await sleep(80);
  t.equal(c.power, 'off', 'neither landed');
  t.same(states, ['off']);
});

t.test('a change that never lands (Infinity) stays under way until it is replaced', async (t) => {
  const { c } = chassis('on');
  c.schedule({ to: 'off', shutdownUntil: Infinity, landsAt: Infinity, graceful: true });
  await sleep(20);
  t.equal(c.power, 'on');
  t.match(c.change, { to: 'off', landsAt: Infinity });
  c.schedule({ to: 'off', shutdownUntil: Date.now(), landsAt: Date.now(), graceful: false });
  t.equal(c.power, 'off');
  t.equal(c.change, undefined);
});

t.test('lastPowerOffAt: only an on-to-off change by the BMC', async (t) => {
  const { c } = chassis('on');
  t.equal(c.lastPowerOffAt, -Infinity);
  c.set('off', false);
  t.equal(c.lastPowerOffAt, -Infinity, 'a person at the machine');
  c.set('on', false);
  const before = Date.now();
  c.set('off', true);
  t.ok(c.lastPowerOffAt >= before);
  const first = c.lastPowerOffAt;
  await sleep(5);
  c.set('off', true);
  t.equal(c.lastPowerOffAt, first, 'off to off changes nothing');
});

t.test('events carry the machine and the power now; the log sees them first; stop drops the listeners', async (t) => {
  const { c, events, logged, states } = chassis('off');
  const order: string[] = [];
  const log = new SimChassis({ machine: 'n', initialPower: 'off', log: () => order.push('log') });
  log.onPower(() => order.push('listener'));
  log.emit('on', 'ok');
  t.same(order, ['log', 'listener']);

  c.emit('on', 'already', 'detail');
  c.set('on', true);
  c.emit('on', 'ok');
  t.same(events, [
    { machine: 'm', action: 'on', result: 'already', state: 'off', detail: 'detail' },
    { machine: 'm', action: 'on', result: 'ok', state: 'on' },
  ]);
  t.same(logged, events);
  c.stop();
  c.emit('off', 'ok');
  c.set('off', true);
  t.equal(events.length, 2, 'no power listener after stop');
  t.same(states, ['on'], 'no state listener after stop');
});

t.test('the draw by state: off, booting, idle, loaded', async (t) => {
  const c = new SimChassis({ machine: 'm', initialPower: 'off', draw: drawOf({ idleWatts: 120, maxWatts: 320 }) });
  t.equal(c.watts, 0, 'off');
  c.set('on', true);
  c.setActivity({ booting: true });
  t.equal(c.watts, 320, 'booting draws the most');
  c.setActivity({ booting: false });
  t.equal(c.watts, 120, 'idle');
  c.setActivity({ load: 0.25 });
  t.equal(c.watts, 170, 'a quarter loaded');
  c.setActivity({ load: 7 });
  t.equal(c.watts, 320, 'the load is capped at 1');
  c.setActivity({ booting: true });
  c.set('off', true);
  t.equal(c.watts, 0, 'off again');
  c.set('on', true);
  t.equal(c.watts, 320, 'a power-off ended the boot; the load stays');
  t.same(drawOf({ maxWatts: 400 }), { idleWatts: 220, maxWatts: 400 }, 'idle at 55 % of max when only max is known');
  t.same(drawOf({ idleWatts: 110 }), { idleWatts: 110, maxWatts: 200 });
  t.same(drawOf(undefined), { idleWatts: 165, maxWatts: 300 });
});
