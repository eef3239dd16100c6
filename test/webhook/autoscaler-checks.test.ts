import t from 'tap';
import { checkAutoscaler } from '../../webhook/autoscaler-checks.js';
import { autoscaler, context, draining, inventoryConfigMap, poweringOn, type World } from './fixtures.js';

const rackA = [
  { name: 'a-1', labels: { rack: 'a' } },
  { name: 'a-2', labels: { rack: 'a' } },
  { name: 'a-3', labels: { rack: 'a' }, secret: 'bmc-a3' },
];
const rackB = [
  { name: 'b-1', labels: { rack: 'b' }, bootSeconds: 700 },
  { name: 'b-2', labels: { rack: 'b' }, bootSeconds: 240 },
];
const inventory = inventoryConfigMap('inv', 'machines', [...rackA, ...rackB]);
const world: World = { inventories: [inventory], secrets: ['inv/bmc', 'inv/bmc-a3'] };

function create(spec: Record<string, unknown>, w: World = world, name = 'new') {
  return checkAutoscaler({ operation: 'CREATE', object: raw(name, spec) }, context(w));
}

function update(old: ReturnType<typeof autoscaler>, spec: Record<string, unknown>, w: World = world) {
  return checkAutoscaler({ operation: 'UPDATE', object: { ...old, spec: { ...old.spec, ...spec } }, oldObject: old }, context({ ...w, autoscalers: [old, ...(w.autoscalers ?? [])] }));
}

function raw(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', metadata: { name }, spec: { inventory: { namespace: 'inv', name: 'machines' }, ...spec } };
}

const rackASelector = { machineSelector: { matchLabels: { rack: 'a' } } };

t.test('a good autoscaler is allowed without warnings', async (t) => {
  const v = create({ ...rackASelector, minMachines: 1, maxMachines: 3 });
  t.same(v.errors, []);
  t.same(v.warnings, []);
});

t.test('structure: checked with the API schema, after its defaults', async (t) => {
  const v = create({ minMachines: '3', deletionPolicy: 'Delete', scaleUp: { joinTimeoutSeconds: 5 }, scaleDown: { enabled: 'yes' } });
  const byField = Object.fromEntries(v.errors.map((e) => [e.field, e.message]));
  t.match(byField['spec.minMachines'], /must be a whole number, got "3"; remove the quotes/);
  t.match(byField['spec.deletionPolicy'], /"Delete" is not allowed; use one of Retain, PowerOff/);
  t.match(byField['spec.scaleUp.joinTimeoutSeconds'], /5 is below the minimum 30; use a value from 30 to 86400/);
  t.match(byField['spec.scaleDown.enabled'], /must be true or false, got "yes"/);
  t.notOk('spec.scaleUp.cooldownSeconds' in byField, 'a left-out field takes its default and is not reported');

  const missing = checkAutoscaler({ operation: 'CREATE', object: { metadata: { name: 'x' }, spec: { minMachines: 1 } } }, context(world));
  t.match(missing.errors, [{ field: 'spec.inventory', message: /names no inventory: set spec.inventory, or list one in spec.inventories/ }]);
  t.match(create({ inventory: { namespace: 'Inv_1', name: 'machines' } }).errors, [{ field: 'spec.inventory.namespace', message: /not a valid name/ }]);
  t.match(create({ machineSelector: { matchLabels: { rack: 7 } } }).errors, [{ field: 'spec.machineSelector.matchLabels', message: /\["rack"\] must be a string, got 7/ }]);

  const badStatus = checkAutoscaler(
    { operation: 'CREATE', object: { ...raw('s', {}), status: { machines: [{ name: 'a-1', phase: 'Booting', since: 'yesterday' }] } } },
    context(world),
  );
  const statusByField = Object.fromEntries(badStatus.errors.map((e) => [e.field, e.message]));
  t.match(statusByField['status.machines[0].phase'], /"Booting" is not allowed; use one of Off, PoweringOn, Joining, Ready, Draining, PoweringOff, Failed, Unknown/);
  t.match(statusByField['status.machines[0].since'], /"yesterday" is not a date-time \(RFC 3339/);
  t.same(create({ deletionPolicy: 'Poweroff' }).errors.map((e) => e.message), ['"Poweroff" is not allowed; use one of Retain, PowerOff (did you mean PowerOff?)']);
});

t.test('the inventory must exist, be labelled and parse', async (t) => {
  const missing = create({}, { inventories: [] });
  t.equal(missing.errors.length, 1);
  t.equal(missing.errors[0]?.field, 'spec.inventory');
  t.match(missing.errors[0]?.message, /ConfigMap inv\/machines not found; apply the inventory first .* or correct spec.inventory.namespace and spec.inventory.name/);

  const unlabelled = create({}, { inventories: [inventoryConfigMap('inv', 'machines', rackA, {})] });
  t.match(unlabelled.errors[0]?.message, /is not labelled autoscaling.bamel.io\/inventory: "true".*kubectl label configmap -n inv machines autoscaling.bamel.io\/inventory=true/);

  const broken = inventoryConfigMap('inv', 'machines', [{ name: 'x', address: 'ipmii://10.0.0.1' }, { name: 'Y' }]);
  const invalid = create({}, { inventories: [broken] });
  t.match(invalid.errors[0]?.message, /inventory inv\/machines is invalid: machines\[0\] \(x\)\.bmc\.address: unknown scheme "ipmii".* \(and 1 more\); fix it \(bamel inventory validate/);
});

t.test('minMachines must be reachable with the machines selected', async (t) => {
  const v = create({ ...rackASelector, minMachines: 4, maxMachines: 5 });
  t.equal(v.errors.length, 1);
  t.equal(v.errors[0]?.field, 'spec.minMachines');
  t.match(v.errors[0]?.message, /4 machines must stay powered on, but spec.machineSelector \(rack=a\) selects only 3 \(a-1, a-2, a-3\) of the 5 machines of inventory inv\/machines; lower minMachines to 3 or less, or widen machineSelector/);
  t.match(create({ machineSelector: { matchLabels: { rack: 'z' } }, minMachines: 1 }).errors[0]?.message, /selects none of the 5 machines/);
  t.same(create({ ...rackASelector, minMachines: 3 }).errors, [], 'exactly enough is fine');
});

t.test('no machine may be selected by two autoscalers', async (t) => {
  const other = autoscaler('rack-a', rackASelector);
  const w = { ...world, autoscalers: [other] };
  const all = create({}, w);
  t.equal(all.errors.length, 1);
  t.equal(all.errors[0]?.field, 'spec.machineSelector');
  t.match(all.errors[0]?.message, /selects 3 machines that BareMetalAutoscaler rack-a already selects \(a-1, a-2, a-3\); two autoscalers would power the same machines on and off, so make the selectors disjoint/);
  t.same(create({ machineSelector: { matchLabels: { rack: 'b' } } }, w).errors, [], 'disjoint selectors');
  t.same(create({ machineSelector: { matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['a'] }] } }, w).errors, [], 'NotIn makes them disjoint');
  t.match(create({ machineSelector: { matchExpressions: [{ key: 'rack', operator: 'In', values: ['a', 'b'] }] } }, w).errors[0]?.message, /3 machines that BareMetalAutoscaler rack-a/);

  const leaving = { ...autoscaler('old', rackASelector), metadata: { name: 'old', deletionTimestamp: '2024-05-01T10:00:00Z' } } as unknown as ReturnType<typeof autoscaler>;
  t.match(create(rackASelector, { ...world, autoscalers: [leaving] }).errors[0]?.message, /and is being deleted: wait until it is gone/);

  // The same Node names listed by another inventory are the same machines.
  const twin = inventoryConfigMap('other', 'machines', rackA);
  const elsewhere = autoscaler('elsewhere', { inventory: { namespace: 'other', name: 'machines' } });
  t.match(create(rackASelector, { ...world, inventories: [inventory, twin], autoscalers: [elsewhere] }).errors[0]?.message, /BareMetalAutoscaler elsewhere already selects/);

  t.same(create(rackASelector, w, 'rack-a').errors, [], 'an autoscaler does not overlap itself');
});

t.test('missing credentials Secrets are a warning, since Secrets may come later', async (t) => {
  const v = create(rackASelector, { inventories: [inventory], secrets: ['inv/bmc'] });
  t.same(v.errors, []);
  t.match(v.warnings, [{ field: 'spec.inventory', message: /Secret inv\/bmc-a3 \(BMC credentials of a-3\) not found; create it with keys username and password/ }]);
  t.same(create(rackASelector, { inventories: [inventory] }).warnings, [], 'not known (cache not synced): no warning');
});

t.test('risky but legal settings are warnings', async (t) => {
  const v = create({ machineSelector: { matchLabels: { rack: 'b' } }, scaleDown: { unneededSeconds: 30, cooldownSeconds: 10, utilizationThreshold: 0.95 }, scaleUp: { joinTimeoutSeconds: 600 } });
  t.same(v.errors, []);
  const byField = Object.fromEntries(v.warnings.map((w) => [w.field, w.message]));
  t.match(byField['spec.scaleDown.unneededSeconds'], /30s is under a minute/);
  t.match(byField['spec.scaleDown.cooldownSeconds'], /10s is under a minute/);
  t.match(byField['spec.scaleDown.utilizationThreshold'], /machines up to 95% busy count as idle/);
  t.match(byField['spec.scaleUp.joinTimeoutSeconds'], /600s is not longer than the bootSeconds of b-1 \(700s\); they will time out before they join. Use more than 700/);
  t.notMatch(byField['spec.scaleUp.joinTimeoutSeconds'], /b-2/);

  const off = create({ machineSelector: { matchLabels: { rack: 'b' } }, scaleDown: { enabled: false, unneededSeconds: 30 }, scaleUp: { joinTimeoutSeconds: 900 } });
  t.same(off.warnings, [], 'scale-down settings do not matter while it is off');

  const ownTimeout = inventoryConfigMap('inv', 'machines', [{ name: 'slow', bootSeconds: 900, joinTimeoutSeconds: 1200 }]);
  t.same(create({}, { inventories: [ownTimeout], secrets: ['inv/bmc'] }).warnings, [], "a machine's own joinTimeoutSeconds overrides the autoscaler's");
  t.match(create({ maxMachines: 0 }).warnings, [{ field: 'spec.maxMachines', message: /no machine will ever be powered on/ }]);
  t.match(create({ machineSelector: { matchLabels: { rack: 'z' } } }).warnings, [{ field: 'spec.machineSelector', message: /selects none of the 5 machines of inventory inv\/machines; check the labels/ }]);
});

t.test('an update may not strand a machine in the middle of an operation', async (t) => {
  const current = autoscaler('rack-a', rackASelector, [poweringOn('a-1'), draining('a-2'), { name: 'a-3', phase: 'Ready', since: '2024-05-01T09:00:00Z' }]);

  const narrower = update(current, { machineSelector: { matchExpressions: [{ key: 'rack', operator: 'In', values: ['x'] }] } });
  t.equal(narrower.errors.length, 2);
  t.match(narrower.errors[0], {
    field: 'spec.machineSelector',
    message: /would no longer select machine a-1, which is being powered on \(PowerOn operation op-a-1, since 2024-05-01T10:00:00Z\); the machine would be left half-done, so wait until its phase is Ready or Off \(kubectl get bma rack-a -o jsonpath=/,
  });
  t.match(narrower.errors[1]?.message, /machine a-2, which is being drained \(since 2024-05-01T10:00:00Z, 2 of 5 pods evicted\)/);

  t.same(update(current, { maxMachines: 5 }).errors, [], 'other changes are fine');
  t.same(update(current, { machineSelector: { matchExpressions: [{ key: 'rack', operator: 'In', values: ['a'] }] } }).errors, [], 'a selector that still selects them is fine');

  const dry = update(current, { dryRun: true });
  t.equal(dry.errors.length, 2);
  t.match(dry.errors[0], { field: 'spec.dryRun', message: /true would stop bamel from finishing machine a-1, which is being powered on/ });

  const otherInventory = inventoryConfigMap('inv', 'other', [{ name: 'z-1' }]);
  const moved = update(autoscaler('rack-a', { ...rackASelector, dryRun: true }, [poweringOn('a-1')]), { inventory: { namespace: 'inv', name: 'other' }, machineSelector: {} }, { ...world, inventories: [inventory, otherInventory] });
  t.match(moved.errors, [{ field: 'spec.inventory', message: /would no longer select machine a-1/ }]);

  const idle = autoscaler('rack-a', rackASelector, [{ name: 'a-1', phase: 'Off', since: '2024-05-01T09:00:00Z' }]);
  t.same(update(idle, { machineSelector: { matchLabels: { rack: 'b' } } }).errors, [], 'machines at rest can be deselected');
});

t.test('updates: metadata-only changes, deletion, and problems that were already there', async (t) => {
  const orphan = autoscaler('orphan', {});
  const gone: World = { inventories: [] };
  t.same(checkAutoscaler({ operation: 'UPDATE', object: { ...orphan, metadata: { name: 'orphan', finalizers: ['autoscaling.bamel.io/finalizer'] } }, oldObject: orphan }, context(gone)), { errors: [], warnings: [] }, 'adding the finalizer is never refused');
  const deleting = { ...orphan, metadata: { name: 'orphan', deletionTimestamp: '2024-05-01T10:00:00Z' }, spec: { ...orphan.spec, maxMachines: 1 } };
  t.same(checkAutoscaler({ operation: 'UPDATE', object: deleting, oldObject: orphan }, context(gone)).errors, [], 'an object being deleted is let go');

  const toDry = update(orphan, { dryRun: true }, gone);
  t.same(toDry.errors, [], 'a missing inventory that was already missing does not block an unrelated change');
  t.match(toDry.warnings, [{ field: 'spec.inventory', message: /not found.*\(already so before this update, so not refused\)/ }]);

  const a = autoscaler('a', {});
  const b = autoscaler('b', rackASelector);
  const both: World = { ...world, autoscalers: [b] };
  const still = update(a, { maxMachines: 4 }, both);
  t.same(still.errors, [], 'an overlap that existed before is reported, not refused');
  t.match(still.warnings[0]?.message, /BareMetalAutoscaler b already selects.*already so before this update/);

  const narrowA = autoscaler('a', { machineSelector: { matchLabels: { rack: 'b' } } });
  t.match(update(narrowA, { machineSelector: {} }, both).errors, [{ field: 'spec.machineSelector', message: /BareMetalAutoscaler b already selects/ }], 'an update that creates an overlap is refused');
});
