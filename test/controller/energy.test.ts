import t from 'tap';
import { Registry } from 'prom-client';
import type { MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { account, inventoryWatts, methodOf, powerEntry, SavingsLedger } from '../../controller/energy.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { EnergyStep } from '../../controller/reconcile/energy.js';
import type { ParsedMachine } from '../../api/inventory.js';

// The energy account: each machine's draw (reading, else inventory by phase), the
// integration over intervals, the savings net of the power cycles' cost, and its counters.

const T0 = Date.parse('2026-12-07T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const INV = { idleWatts: 100, maxWatts: 300 };

t.test('inventory watts by phase', async (t) => {
  t.equal(inventoryWatts('Off', INV), 0);
  t.equal(inventoryWatts('PoweringOn', INV), 300);
  t.equal(inventoryWatts('Joining', INV), 300);
  t.equal(inventoryWatts('Ready', INV), 100);
  t.equal(inventoryWatts('Draining', INV), 100);
  t.equal(inventoryWatts('Ready', { maxWatts: 300 }), 300, 'one figure stands in for the other');
  t.equal(inventoryWatts('Joining', { idleWatts: 100 }), 100);
  t.equal(inventoryWatts('Unknown', INV), undefined);
  t.equal(inventoryWatts('Failed', INV), undefined);
  t.equal(inventoryWatts('Ready', undefined), undefined);
});

t.test('a power entry: a fresh reading of this phase, else the inventory', async (t) => {
  const reading = { kind: 'reading' as const, watts: 187.26, source: 'redfish-environmentmetrics' as const, observedAt: new Date(T0 + 5_000) };
  const base = { phase: 'Ready' as const, since: iso(T0), inventory: INV, maxAgeMs: 60_000, now: T0 + 10_000 };
  t.same(powerEntry({ ...base, reading }), { watts: 187.3, observedAt: iso(T0 + 5_000), source: 'redfish-environmentmetrics' });
  t.same(powerEntry({ ...base, reading: undefined }), { watts: 100, observedAt: iso(T0), source: 'inventory' });
  t.same(powerEntry({ ...base, reading, now: T0 + 70_000 }), { watts: 100, observedAt: iso(T0), source: 'inventory' }, 'stale');
  t.same(powerEntry({ ...base, phase: 'Off', since: iso(T0 + 8_000), reading }), { watts: 0, observedAt: iso(T0 + 8_000), source: 'inventory' }, 'taken before the phase began');
  t.equal(powerEntry({ ...base, phase: 'Unknown', reading: undefined }), undefined);
});

function machine(name: string, phase: MachineStatus['phase'], watts?: number, source: 'inventory' | 'ipmi-dcmi' = 'inventory'): MachineStatus {
  return { name, phase, since: iso(T0), ...(watts === undefined ? {} : { power: { watts, observedAt: iso(T0), source } }) };
}

t.test('the account: consumed, saved net of booting, continued from the previous status', async (t) => {
  const inventory = () => INV;
  const opts = { inventory, changed: false, minIntervalMs: 60_000, maxGapMs: 3_600_000 };
  const first = account({ ...opts, previous: undefined, machines: [], now: T0 });
  t.same(first.energy, { since: iso(T0), consumedKWh: 0, savedKWh: 0, method: 'inventory', updatedAt: iso(T0) });
  // An hour with one machine Ready at 200 W, one off, one booting at 300 W.
  const machines = [machine('a', 'Ready', 200, 'ipmi-dcmi'), machine('b', 'Off', 0), machine('c', 'PoweringOn', 300)];
  const hour = account({ ...opts, previous: first.energy, machines, now: T0 + 3_600_000 });
  t.equal(hour.energy.consumedKWh, 0.5, '200 W + 0 W + 300 W for an hour');
  t.equal(hour.energy.savedKWh, -0.2, 'b saved its idle 100 W; c cost 300 W while booting');
  t.equal(hour.energy.method, 'mixed');
  t.equal(hour.energy.since, iso(T0), 'since stays');
  t.equal(hour.consumedJoules, 0.5 * 3_600_000);
  t.equal(hour.savedJoules, -0.2 * 3_600_000);
  // A short interval is not added unless something changed; then it is.
  const soon = account({ ...opts, previous: hour.energy, machines, now: T0 + 3_630_000 });
  t.equal(soon.energy, hour.energy);
  t.equal(soon.consumedJoules, 0);
  const changed = account({ ...opts, changed: true, previous: hour.energy, machines: [machine('b', 'Off', 0)], now: T0 + 3_636_000 });
  t.equal(changed.energy.savedKWh, -0.199, '36 s of 100 W saved');
  // A leader that was away for a day counts at most maxGapMs.
  const gap = account({ ...opts, previous: hour.energy, machines: [machine('a', 'Ready', 1000)], now: T0 + 3_600_000 + 86_400_000 });
  t.equal(gap.energy.consumedKWh, 1.5);
  // The clock went back: nothing added.
  t.equal(account({ ...opts, changed: true, previous: hour.energy, machines, now: T0 }).energy, hour.energy);
});

t.test('method', async (t) => {
  t.equal(methodOf([machine('a', 'Ready', 1, 'ipmi-dcmi')]), 'measured');
  t.equal(methodOf([machine('a', 'Ready', 1)]), 'inventory');
  t.equal(methodOf([]), 'inventory');
  t.equal(methodOf([machine('a', 'Ready', 1), machine('b', 'Ready', 1, 'ipmi-dcmi')]), 'mixed');
});

t.test('the savings counter never goes down: a power cycle is paid back first', async (t) => {
  const ledger = new SavingsLedger();
  t.equal(ledger.add('x', 100), 100);
  t.equal(ledger.add('x', -30), 0);
  t.equal(ledger.add('x', 20), 0);
  t.equal(ledger.add('x', 50), 40);
  t.equal(ledger.add('y', 5), 5, 'per autoscaler');
});

t.test('the energy step sets the metrics once the status is written', async (t) => {
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  const step = new EnergyStep(metrics, undefined);
  const selected = [
    { name: 'a', power: INV },
    { name: 'b', power: INV },
  ] as unknown as ParsedMachine[];
  const prev = { machines: [machine('a', 'Ready', 100), machine('b', 'Off', 0)], energy: { since: iso(T0), consumedKWh: 0, savedKWh: 0, method: 'inventory' as const, updatedAt: iso(T0) } };
  const now = new Map([
    ['a', machine('a', 'Ready')],
    ['b', { ...machine('b', 'PoweringOn'), since: iso(T0 + 600_000) }],
  ]);
  const r = step.run({ autoscaler: 'rack', selected, previous: prev, machines: now, now: T0 + 600_000 });
  t.same(r.machines.get('a')?.power, { watts: 100, observedAt: iso(T0), source: 'inventory' });
  t.same(r.machines.get('b')?.power, { watts: 300, observedAt: iso(T0 + 600_000), source: 'inventory' });
  t.same(r.energy, { since: iso(T0), consumedKWh: 0.016667, savedKWh: 0.016667, method: 'inventory', updatedAt: iso(T0 + 600_000) });
  r.record([{ machine: selected[1] as ParsedMachine, status: r.machines.get('b') as MachineStatus }]);
  const text = await metrics.registry.metrics();
  t.match(text, /bamel_machine_power_watts\{autoscaler="rack",machine="a"\} 100/);
  t.match(text, /bamel_machine_power_watts\{autoscaler="rack",machine="b"\} 300/);
  t.match(text, /bamel_energy_consumed_joules_total\{autoscaler="rack"\} 60000/);
  t.match(text, /bamel_energy_saved_joules_total\{autoscaler="rack"\} 60000/);
  t.match(text, /bamel_machine_power_cycles_total\{autoscaler="rack",machine="b"\} 1/);
  // A machine leaves the selection: its series goes.
  const again = step.run({ autoscaler: 'rack', selected: [selected[0] as ParsedMachine], previous: { ...prev, machines: [...r.machines.values()], energy: r.energy }, machines: new Map([['a', machine('a', 'Ready')]]), now: T0 + 700_000 });
  again.record([]);
  t.notMatch(await metrics.registry.metrics(), /machine="b"\} 300/);
});

t.test('a status without power entries (a large fleet): the account goes on from what this process computed, else the inventory', async (t) => {
  const selected = [{ name: 'a', power: INV }] as unknown as ParsedMachine[];
  const reader = {
    maxAgeMs: 60_000,
    poll: () => undefined,
    latest: () => ({ kind: 'reading' as const, watts: 250, source: 'ipmi-dcmi' as const, observedAt: new Date(T0) }),
    forget: () => undefined,
    forgetAutoscaler: () => undefined,
  } as unknown as ConstructorParameters<typeof EnergyStep>[1];
  const energy = { since: iso(T0), consumedKWh: 0, savedKWh: 0, method: 'measured' as const, updatedAt: iso(T0) };
  const bare = (m: MachineStatus): MachineStatus => ({ name: m.name, phase: m.phase, since: m.since });
  const step = new EnergyStep(new ControllerMetrics(new Registry(), { defaultMetrics: false }), reader);
  const first = step.run({ autoscaler: 'rack', selected, previous: { machines: [bare(machine('a', 'Ready'))], energy }, machines: new Map([['a', machine('a', 'Ready')]]), now: T0 + 60_000 });
  t.same(first.machines.get('a')?.power?.watts, 250);
  // The status as written: no power entry. This process remembers the 250 W.
  const second = step.run({ autoscaler: 'rack', selected, previous: { machines: [bare(machine('a', 'Ready'))], energy: first.energy }, machines: new Map([['a', machine('a', 'Ready')]]), now: T0 + 120_000 });
  t.equal(second.energy.consumedKWh, Number((first.energy.consumedKWh + (250 * 60) / 3_600_000).toFixed(6)), '250 W over the minute');
  // A new leader knows no reading yet: the inventory's idle figure for a Ready machine.
  const fresh = new EnergyStep(new ControllerMetrics(new Registry(), { defaultMetrics: false }), reader);
  const third = fresh.run({ autoscaler: 'rack', selected, previous: { machines: [bare(machine('a', 'Ready'))], energy: second.energy }, machines: new Map([['a', machine('a', 'Ready')]]), now: T0 + 180_000 });
  t.equal(third.energy.consumedKWh, Number((second.energy.consumedKWh + (100 * 60) / 3_600_000).toFixed(6)), 'idleWatts over the minute');
});
