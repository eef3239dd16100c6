import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import { inventoriesOf } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { InventoryCache } from '../../../controller/reconcile/fetch.js';
import { FleetCache, fleetCondition } from '../../../controller/reconcile/fleet.js';
import { lifecycleStep } from '../../../controller/reconcile/lifecycle.js';
import { MemoryCache } from '../../extender/memory-cache.js';
import { inventoryConfigMap } from '../../webhook/fixtures.js';
import { deepFreeze, iso, status, store, spec as specWith, T0 } from './fixtures.js';

function cm(namespace: string, name: string, machines: string[], rv = '1'): k8s.V1ConfigMap {
  const c = inventoryConfigMap(namespace, name, machines.map((m) => ({ name: m })));
  return { ...c, metadata: { ...c.metadata, resourceVersion: rv } };
}

const refs = {
  inventory: { namespace: 'ns-a', name: 'one' },
  inventories: [
    { namespace: 'ns-a', name: 'two' },
    { namespace: 'ns-b', name: 'three' },
  ],
};

t.test('the inventories of an autoscaler: spec.inventory first, then spec.inventories, each once', async (t) => {
  t.same(inventoriesOf({ inventory: { namespace: 'a', name: 'x' } }), [{ namespace: 'a', name: 'x' }]);
  t.same(inventoriesOf({ inventories: [{ namespace: 'a', name: 'y' }] }), [{ namespace: 'a', name: 'y' }]);
  t.same(inventoriesOf({ inventory: { namespace: 'a', name: 'x' }, inventories: [{ namespace: 'a', name: 'x' }, { namespace: 'b', name: 'x' }] }), [
    { namespace: 'a', name: 'x' },
    { namespace: 'b', name: 'x' },
  ]);
  t.same(inventoriesOf({}), [], 'none (refused by the API server; the controller reports it)');
});

t.test('machines of several inventories are merged; each keeps the namespace it came from', async (t) => {
  const cms = new MemoryCache<k8s.V1ConfigMap>([cm('ns-a', 'one', ['m1', 'm2']), cm('ns-a', 'two', ['m3']), cm('ns-b', 'three', ['m4', 'm5'])]);
  const fleets = new FleetCache(new InventoryCache(cms));
  const fleet = fleets.get('a', refs);
  t.same(
    fleet.machines.map((m) => m.name),
    ['m1', 'm2', 'm3', 'm4', 'm5'],
  );
  t.same(fleet.issues, []);
  t.equal(fleet.usable, 3);
  t.same(fleet.origin('m4'), { namespace: 'ns-b', name: 'three' });
  t.same(fleets.originOf('a', 'm3'), { namespace: 'ns-a', name: 'two' }, 'the credentials namespace, as the manager asks for it');
  t.equal(fleets.originOf('other', 'm3'), undefined);
  t.equal(fleet.versionOf('m4'), 'ns-b/three@1');
  t.equal(fleet.held('m1'), false);
  t.same(fleetCondition(fleet), { status: 'True', reason: 'Valid', message: '5 machines in 3 inventories' });
  t.equal(fleets.get('a', refs), fleet, 'unchanged inventories: the same fleet, not merged again');

  cms.put(cm('ns-b', 'three', ['m4', 'm6'], '2'));
  const changed = fleets.get('a', refs);
  t.not(changed, fleet, 'a new resourceVersion is merged again');
  t.same(
    changed.machines.map((m) => m.name),
    ['m1', 'm2', 'm3', 'm4', 'm6'],
  );
  t.equal(changed.versionOf('m1'), 'ns-a/one@1', "a machine's version is its own inventory's: others' changes do not recompile it");
  t.equal(changed.versionOf('m6'), 'ns-b/three@2');
});

t.test('one inventory keeps the words it always had', async (t) => {
  const fleets = new FleetCache(new InventoryCache(new MemoryCache([cm('inv', 'machines', ['m1', 'm2'])])));
  t.same(fleetCondition(fleets.get('a', specWith())), { status: 'True', reason: 'Valid', message: '2 machines in the inventory' });
  const missing = fleets.get('b', { inventory: { namespace: 'inv', name: 'gone' } });
  t.equal(missing.usable, 0);
  t.same(fleetCondition(missing), {
    status: 'False',
    reason: 'InventoryNotFound',
    message: 'inventory ConfigMap inv/gone not found (or not labelled autoscaling.bamel.io/inventory: "true")',
  });
  t.same(fleetCondition(fleets.get('c', {})), { status: 'False', reason: 'InventoryNotFound', message: 'the autoscaler names no inventory: set spec.inventory or spec.inventories' });
});

t.test('a machine two inventories list is left alone, and both are named', async (t) => {
  const cms = new MemoryCache<k8s.V1ConfigMap>([cm('ns-a', 'one', ['m1', 'm2']), cm('ns-a', 'two', ['m2', 'm3']), cm('ns-b', 'three', ['m4'])]);
  const fleet = new FleetCache(new InventoryCache(cms)).get('a', refs);
  t.same(
    fleet.machines.map((m) => m.name),
    ['m1', 'm3', 'm4'],
  );
  t.same([...fleet.duplicates], ['m2']);
  t.equal(fleet.held('m2'), true, 'its status entry stays as it is');
  t.equal(fleet.held('gone'), false, 'with every inventory valid, a machine no one lists is forgotten as before');
  t.equal(fleet.origin('m2'), undefined);
  const c = fleetCondition(fleet);
  t.equal(c.status, 'False');
  t.equal(c.reason, 'DuplicateMachine');
  t.equal(c.message, 'machine m2 is listed by inventories ns-a/one and ns-a/two; it is left alone until only one lists it; the machines of the 3 valid inventories proceed (3 machines)');
});

t.test('a broken inventory among several: named, its machines held, the others proceed', async (t) => {
  const broken = { ...cm('ns-a', 'two', ['x']), data: { 'machines.yaml': 'machines:\n  - name: x\n' } };
  const cms = new MemoryCache<k8s.V1ConfigMap>([cm('ns-a', 'one', ['m1', 'm2']), broken]);
  const fleet = new FleetCache(new InventoryCache(cms)).get('a', refs);
  t.same(
    fleet.machines.map((m) => m.name),
    ['m1', 'm2'],
  );
  t.equal(fleet.usable, 1);
  t.same(
    fleet.issues.map((i) => [`${i.inventory.namespace}/${i.inventory.name}`, i.reason]),
    [
      ['ns-a/two', 'InventoryInvalid'],
      ['ns-b/three', 'InventoryNotFound'],
    ],
  );
  t.equal(fleet.held('x'), true, 'a status entry no valid inventory lists may be a machine of the broken one');
  t.equal(fleet.held('m1'), false);
  const c = fleetCondition(fleet);
  t.equal(c.reason, 'InventoryInvalid');
  t.match(c.message, /^inventory ns-a\/two is invalid: machines\[0\] \(x\)\.bmc: missing required field.*; inventory ConfigMap ns-b\/three not found.*; the machines of the 1 valid inventories proceed \(2 machines\)$/);
});

t.test('held status entries are kept exactly as they are, nothing asked of them', async (t) => {
  const cms = new MemoryCache<k8s.V1ConfigMap>([cm('ns-a', 'one', ['m1', 'dup']), cm('ns-a', 'two', ['dup'])]);
  const fleet = new FleetCache(new InventoryCache(cms)).get('a', refs);
  const previous = [
    status('m1', 'Off'),
    status('dup', 'PoweringOn', { operation: { id: 'op-1', action: 'PowerOn', startedAt: iso(T0 - 1000) } }),
    status('of-three', 'Ready'),
    status('gone', 'Off'),
  ];
  deepFreeze(previous);
  const r = lifecycleStep({
    spec: specWith(),
    selected: fleet.machines,
    previous,
    held: fleet.held,
    nodes: store(),
    power: () => ({ state: 'off', at: T0 - 1000 }),
    outcome: () => undefined,
    settings: { settleGraceMs: 15_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000 },
    now: T0,
  });
  t.equal(r.machines.get('dup'), previous[1], 'the ambiguous machine keeps its status, operation and all');
  t.equal(r.machines.get('of-three'), previous[2], 'inventory ns-b/three is missing: a machine it may list keeps its status');
  t.equal(r.machines.get('gone'), previous[3]);
  t.same(r.forgotten, []);
  t.same(r.intents, [], 'nothing is asked of a held machine');
  t.same(
    r.probes.map((m) => m.name),
    [],
  );
});
