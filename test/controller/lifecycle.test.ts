import t from 'tap';
import type { MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { advance, countPowerCycle, newOperation, quarantineMs, type LifecycleSettings } from '../../controller/lifecycle.js';

const S: LifecycleSettings = { joinTimeoutMs: 600_000, settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000 };
const T0 = Date.parse('2026-11-28T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

t.test('a new machine is settled from its Node, else from its BMC', async (t) => {
  t.equal(advance('m', undefined, { node: { exists: true, ready: true } }, S, T0).status.phase, 'Ready');
  const unknown = advance('m', undefined, { node: { exists: false, ready: false } }, S, T0);
  t.equal(unknown.status.phase, 'Unknown');
  t.same(unknown.actions, [{ type: 'probe' }]);
  t.equal(advance('m', undefined, { node: { exists: false, ready: false }, power: { state: 'off', at: T0 } }, S, T0).status.phase, 'Off');
  t.equal(advance('m', undefined, { node: { exists: false, ready: false }, power: { state: 'on', at: T0 } }, S, T0).status.phase, 'Joining');
});

t.test('power-on in this process: outcome drives the phase', async (t) => {
  const op = newOperation('PowerOn', T0, 'me');
  const s: MachineStatus = { name: 'm', phase: 'PoweringOn', since: iso(T0), operation: op };
  t.equal(advance('m', s, { outcome: { id: op.id, done: false } }, S, T0 + 1000).status.phase, 'PoweringOn', 'running');
  const ok = advance('m', s, { outcome: { id: op.id, done: true, ok: true, state: 'on' } }, S, T0 + 2000);
  t.equal(ok.status.phase, 'Joining');
  t.notOk(ok.status.operation, 'operation cleared');
  const bad = advance('m', s, { outcome: { id: op.id, done: true, ok: false, error: 'BMC unreachable' } }, S, T0 + 2000);
  t.equal(bad.status.phase, 'Failed');
  t.equal(bad.status.failures, 1);
  t.equal(bad.status.retryAfter, iso(T0 + 2000 + 60_000), 'quarantined for the base time');
});

t.test('an intent left by another leader is settled from the BMC, never re-sent blindly', async (t) => {
  const op = newOperation('PowerOn', T0, 'old-leader');
  const s: MachineStatus = { name: 'm', phase: 'PoweringOn', since: iso(T0), operation: op };
  const stale = advance('m', s, { power: { state: 'off', at: T0 - 5000 } }, S, T0 + 1000);
  t.same(stale.actions, [{ type: 'probe' }], 'a reading from before the intent says nothing: probe');
  t.equal(stale.status.phase, 'PoweringOn');
  const on = advance('m', s, { power: { state: 'on', at: T0 + 2000 } }, S, T0 + 3000);
  t.equal(on.status.phase, 'Joining', 'the BMC says on: it happened');
  const young = advance('m', s, { power: { state: 'off', at: T0 + 2000 } }, S, T0 + 3000);
  t.equal(young.status.phase, 'PoweringOn', 'off, but the old leader may still be mid-request: wait');
  const old = advance('m', s, { power: { state: 'off', at: T0 + 20_000 } }, S, T0 + 20_000);
  t.equal(old.status.phase, 'Off', 'still off after the grace: the intent was not carried out');
  t.equal(old.status.reason, 'IntentNotCarriedOut');
  t.notOk(old.status.operation);
});

t.test('join timeout powers off, then quarantines with backoff', async (t) => {
  const s: MachineStatus = { name: 'm', phase: 'Joining', since: iso(T0), failures: 1 };
  const waiting = advance('m', s, { node: { exists: false, ready: false } }, S, T0 + 1000);
  t.equal(waiting.wakeAt, T0 + 600_000);
  const late = advance('m', s, { node: { exists: false, ready: false } }, S, T0 + 600_000);
  t.same(late.actions, [{ type: 'powerOff', reason: 'JoinTimeout' }]);
  const op = newOperation('PowerOff', T0 + 600_000, 'me');
  const off: MachineStatus = { name: 'm', phase: 'PoweringOff', since: iso(T0 + 600_000), operation: op, reason: 'JoinTimeout', failures: 1 };
  const done = advance('m', off, { outcome: { id: op.id, done: true, ok: true, state: 'off' } }, S, T0 + 601_000);
  t.equal(done.status.phase, 'Failed');
  t.equal(done.status.reason, 'JoinTimeout');
  t.equal(done.status.failures, 2);
  t.equal(done.status.retryAfter, iso(T0 + 601_000 + 120_000), 'second failure: twice the base');
  t.equal(quarantineMs(20, S), S.quarantineMaxMs, 'capped');
  const over = advance('m', done.status, {}, S, T0 + 800_000);
  t.equal(over.status.phase, 'Unknown', 'quarantine over: look again');
  t.same(over.actions, [{ type: 'probe' }]);
});

t.test('a machine powered on or off by hand is adopted, not fought', async (t) => {
  t.equal(advance('m', { name: 'm', phase: 'Off', since: iso(T0) }, { node: { exists: true, ready: true } }, S, T0 + 1).status.phase, 'Ready');
  const ready: MachineStatus = { name: 'm', phase: 'Ready', since: iso(T0) };
  t.equal(advance('m', ready, { node: { exists: true, ready: false }, power: { state: 'off', at: T0 + 10 } }, S, T0 + 20).status.phase, 'Off');
  t.same(advance('m', ready, { node: { exists: true, ready: false } }, S, T0 + 20).actions, [{ type: 'probe' }]);
  // A Node that registered after the machine went off is a hand power-on; the Node of a
  // machine just powered off, still Ready until its lease runs out, is not.
  const off: MachineStatus = { name: 'm', phase: 'Off', since: iso(T0) };
  t.equal(advance('m', off, { node: { exists: true, ready: true, createdAt: T0 + 5 } }, S, T0 + 10).status.phase, 'Ready');
  t.equal(advance('m', off, { node: { exists: true, ready: true, createdAt: T0 - 60_000 } }, S, T0 + 10).status.phase, 'Off');
});

t.test('a completed power-off says so, with the reason it was made for', async (t) => {
  const op = newOperation('PowerOff', T0, 'me');
  const s: MachineStatus = { name: 'm', phase: 'PoweringOff', since: iso(T0), operation: op, reason: 'ScaleDown' };
  const r = advance('m', s, { node: { exists: false, ready: false }, outcome: { id: op.id, done: true, ok: true, state: 'off' } }, S, T0 + 5000);
  t.equal(r.status.phase, 'Off');
  t.same(r.actions, [{ type: 'poweredOff', reason: 'ScaleDown' }]);
});

t.test('power cycles are counted per UTC day', async (t) => {
  let s: MachineStatus = { name: 'm', phase: 'Off', since: iso(T0) };
  s = countPowerCycle(countPowerCycle(s, T0), T0 + 1000);
  t.equal(s.powerCyclesToday, 2);
  s = countPowerCycle(s, T0 + 86_400_000);
  t.equal(s.powerCyclesToday, 1, 'a new day starts at 1');
});
