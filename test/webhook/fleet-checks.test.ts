import t from 'tap';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { checkAutoscaler } from '../../webhook/autoscaler-checks.js';
import { checkInventory, checkInventoryDeletion } from '../../webhook/inventory-checks.js';
import { checkAutoscalerStructure } from '../../webhook/structure.js';
import { context, inventoryConfigMap, poweringOn, type World } from './fixtures.js';

/** The admission checks of an autoscaler over several inventories (spec.inventories). */

const one = inventoryConfigMap('ns-a', 'one', [{ name: 'a-1' }, { name: 'a-2' }]);
const two = inventoryConfigMap('ns-b', 'two', [{ name: 'b-1', secret: 'bmc-b' }]);
const world: World = { inventories: [one, two], secrets: ['ns-a/bmc', 'ns-b/bmc-b'] };
const both = { inventory: { namespace: 'ns-a', name: 'one' }, inventories: [{ namespace: 'ns-b', name: 'two' }] };

function raw(name: string, spec: Record<string, unknown>, machines?: unknown[]): Record<string, unknown> {
  return { apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', metadata: { name }, spec, ...(machines ? { status: { machines } } : {}) };
}

function stored(name: string, spec: Record<string, unknown>, machines?: unknown[]): BareMetalAutoscaler {
  const r = checkAutoscalerStructure(raw(name, spec, machines));
  if (r.issues.length > 0) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.defaulted;
}

t.test('an autoscaler over two inventories in two namespaces is allowed; minMachines counts both', async (t) => {
  t.same(checkAutoscaler({ operation: 'CREATE', object: raw('x', { ...both, minMachines: 3, maxMachines: 3 }) }, context(world)), { errors: [], warnings: [] });
  const onlyList = checkAutoscaler({ operation: 'CREATE', object: raw('x', { inventories: [{ namespace: 'ns-b', name: 'two' }] }) }, context(world));
  t.same(onlyList.errors, [], 'spec.inventories alone is enough');
  const tooMany = checkAutoscaler({ operation: 'CREATE', object: raw('x', { ...both, minMachines: 4, maxMachines: 4 }) }, context(world));
  t.match(tooMany.errors, [{ field: 'spec.minMachines', message: /selects only 3 .* of the 3 machines of inventories ns-a\/one, ns-b\/two/ }]);
});

t.test('each inventory is checked, at the field that names it', async (t) => {
  const v = checkAutoscaler({ operation: 'CREATE', object: raw('x', { ...both, inventories: [{ namespace: 'ns-b', name: 'two' }, { namespace: 'ns-b', name: 'nowhere' }] }) }, context(world));
  t.match(v.errors, [{ field: 'spec.inventories[1]', message: /ConfigMap ns-b\/nowhere not found; apply the inventory first.*correct spec\.inventories\[1\]\.namespace/ }]);
  t.equal(v.errors.length, 1);
});

t.test('a machine two of its inventories list is refused, naming both', async (t) => {
  const dup = inventoryConfigMap('ns-b', 'two', [{ name: 'b-1' }, { name: 'a-2' }]);
  const v = checkAutoscaler({ operation: 'CREATE', object: raw('x', both) }, context({ ...world, inventories: [one, dup] }));
  t.match(v.errors, [{ field: 'spec.inventories', message: /machine a-2 is listed by ns-a\/one and ns-b\/two/ }]);
});

t.test("a machine's credentials Secret is looked for in its own inventory's namespace", async (t) => {
  const v = checkAutoscaler({ operation: 'CREATE', object: raw('x', both) }, context({ ...world, secrets: ['ns-a/bmc', 'ns-a/bmc-b'] }));
  t.same(v.errors, []);
  t.match(v.warnings, [{ field: 'spec.inventories', message: /^Secret ns-b\/bmc-b \(BMC credentials of b-1\) not found/ }]);
});

t.test('overlap with another autoscaler is found in any of its inventories', async (t) => {
  const other = stored('other', { inventories: [{ namespace: 'ns-b', name: 'two' }] });
  const v = checkAutoscaler({ operation: 'CREATE', object: raw('x', both) }, context({ ...world, autoscalers: [other] }));
  t.match(v.errors, [{ field: 'spec.machineSelector', message: /BareMetalAutoscaler other already selects \(b-1\)/ }]);
});

t.test('removing an inventory whose machine is busy is refused; adding one is not', async (t) => {
  const old = stored('x', { ...both, dryRun: false }, [poweringOn('b-1')]);
  const removed = checkAutoscaler({ operation: 'UPDATE', object: raw('x', { inventory: both.inventory, dryRun: true }, [poweringOn('b-1')]), oldObject: old }, context({ ...world, autoscalers: [old] }));
  t.match(removed.errors, [{ field: 'spec.inventory', message: /would no longer select machine b-1, which is being powered on/ }]);
  const three = inventoryConfigMap('ns-b', 'three', [{ name: 'c-1' }]);
  const added = checkAutoscaler(
    { operation: 'UPDATE', object: raw('x', { ...both, inventories: [...both.inventories, { namespace: 'ns-b', name: 'three' }] }, [poweringOn('b-1')]), oldObject: old },
    context({ ...world, inventories: [one, two, three], autoscalers: [old] }),
  );
  t.same(added.errors, []);
});

t.test('an inventory update: a name another inventory of the same autoscaler lists is refused', async (t) => {
  const user = stored('x', both);
  const next = inventoryConfigMap('ns-b', 'two', [{ name: 'b-1', secret: 'bmc-b' }, { name: 'a-1' }]);
  const v = checkInventory({ operation: 'UPDATE', object: next, oldObject: two }, context({ ...world, autoscalers: [user] }));
  t.match(v.errors, [{ field: 'machines.yaml: machines[1] (a-1).name', message: /already listed by inventory ns-a\/one, which BareMetalAutoscaler x also reads/ }]);
  const again = checkInventory({ operation: 'UPDATE', object: next, oldObject: next }, context({ ...world, inventories: [one, next], autoscalers: [user] }));
  t.same(again.errors, [], 'a name the stored version already shared is not this update’s doing');
});

t.test('an inventory of several: creating it says nothing of busy machines of the others', async (t) => {
  const user = stored('x', both, [poweringOn('a-1')]);
  const v = checkInventory({ operation: 'CREATE', object: two }, context({ ...world, autoscalers: [user] }));
  t.same(v.errors, []);
  const busyHere = stored('y', both, [poweringOn('b-1')]);
  const deletion = checkInventoryDeletion({ namespace: 'ns-b', name: 'two', oldObject: two }, context({ ...world, autoscalers: [busyHere] }));
  t.match(deletion.errors, [{ message: /inventory ns-b\/two cannot be deleted while BareMetalAutoscaler y has a machine in flight: b-1/ }]);
});

t.test('deleting one inventory of several: only the busy machines it lists stand in the way', async (t) => {
  const user = stored('x', both, [poweringOn('a-1')]);
  const v = checkInventoryDeletion({ namespace: 'ns-b', name: 'two', oldObject: two }, context({ ...world, autoscalers: [user] }));
  t.same(v.errors, [], 'a-1 is in ns-a/one');
  t.match(v.warnings, [{ message: /deleting inventory ns-b\/two/ }]);
});

t.test('an entry of spec.inventories that repeats spec.inventory is pointed out', async (t) => {
  const v = checkAutoscaler({ operation: 'CREATE', object: raw('x', { ...both, inventories: [...both.inventories, both.inventory] }) }, context(world));
  t.same(v.errors, []);
  t.match(v.warnings, [{ field: 'spec.inventories[1]', message: /repeats spec\.inventory/ }]);
});
