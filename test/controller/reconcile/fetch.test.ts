import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { BareMetalAutoscaler } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { AutoscalerView, InventoryCache, inventoryProblem, selectMachines } from '../../../controller/reconcile/fetch.js';
import { MemoryCache } from '../../extender/memory-cache.js';
import { autoscaler } from '../../webhook/fixtures.js';
import { inventory, machines, spec } from './fixtures.js';

t.test('inventories are parsed once per resourceVersion', async (t) => {
  const cms = new MemoryCache<k8s.V1ConfigMap>();
  const cache = new InventoryCache(cms);
  t.same(cache.get('inv', 'machines'), { ok: false, missing: true, errors: [] });

  cms.put(inventory([{ name: 'm1' }, { name: 'm2' }], '10'));
  const first = cache.get('inv', 'machines');
  if (!first.ok) throw new Error('the fixture inventory is valid');
  t.same(
    first.machines.map((m) => m.name),
    ['m1', 'm2'],
  );
  t.equal(first.rv, '10');
  const again = cache.get('inv', 'machines');
  t.equal(again.ok && again.machines, first.machines, 'the same resourceVersion: not parsed again');

  cms.put(inventory([{ name: 'm3' }], '11'));
  const changed = cache.get('inv', 'machines');
  t.same(changed.ok && changed.machines.map((m) => m.name), ['m3'], 'a new resourceVersion is parsed');
});

t.test('an invalid inventory says where and what, path first', async (t) => {
  const bad: k8s.V1ConfigMap = { ...inventory([{ name: 'm1' }], '3'), data: { 'machines.yaml': 'machines:\n  - name: m1\n    capacity: {cpu: "4", memory: 8Gi}\n' } };
  const view = new InventoryCache(new MemoryCache([bad])).get('inv', 'machines');
  t.equal(view.ok, false);
  if (view.ok) return;
  t.equal(view.missing, false);
  t.same(view.errors, ["machines[0] (m1).bmc: missing required field: how to reach the machine's BMC: its address and the Secret with its credentials"]);
});

t.test('what InventoryValid and Ready say about an inventory that cannot be used', async (t) => {
  const ref = { namespace: 'inv', name: 'machines' };
  t.same(inventoryProblem(ref, { ok: false, missing: true, errors: [] }), {
    reason: 'InventoryNotFound',
    message: 'inventory ConfigMap inv/machines not found (or not labelled autoscaling.bamel.io/inventory: "true")',
  });
  const errors = Array.from({ length: 12 }, (_, i) => `machines[${i}].bmc: required`);
  t.same(inventoryProblem(ref, { ok: false, missing: false, errors }), {
    reason: 'InventoryInvalid',
    message: `inventory inv/machines is invalid: ${errors.slice(0, 10).join('; ')}; and 2 more`,
  });
  t.equal(inventoryProblem(ref, { ok: false, missing: false, errors: ['a: b'] }).message, 'inventory inv/machines is invalid: a: b');
});

t.test('the machineSelector picks machines by their inventory labels', async (t) => {
  const all = machines({ name: 'a1', labels: { rack: 'a', gpu: 'yes' } }, { name: 'a2', labels: { rack: 'a' } }, { name: 'b1', labels: { rack: 'b' } });
  const names = (over: Record<string, unknown>): string[] => selectMachines(spec(over), all).map((m) => m.name);
  t.same(names({}), ['a1', 'a2', 'b1'], 'empty selects every machine');
  t.same(names({ machineSelector: { matchLabels: { rack: 'a' } } }), ['a1', 'a2']);
  t.same(names({ machineSelector: { matchLabels: { rack: 'a' }, matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] } }), ['a2']);
  t.same(names({ machineSelector: { matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['a'] }] } }), ['b1']);
});

t.test('the autoscaler as fresh as we know it: our own write until the informer catches up', async (t) => {
  const at = (rv: string): BareMetalAutoscaler => {
    const a = autoscaler('a', {});
    return { ...a, metadata: { ...a.metadata, resourceVersion: rv } };
  };
  const informer = new MemoryCache<BareMetalAutoscaler>([at('7')]);
  const view = new AutoscalerView(informer);
  t.equal(view.latest('a')?.metadata.resourceVersion, '7');
  const mine = at('8');
  view.wrote(mine);
  t.equal(view.latest('a'), mine, 'ours is newer');
  informer.put(at('8'));
  t.not(view.latest('a'), mine, "the informer's copy once it has caught up");
  view.wrote(at('9'));
  informer.put(at('10'));
  t.equal(view.latest('a')?.metadata.resourceVersion, '10', 'someone else wrote since');
  view.wrote(at('11'));
  view.forget('a');
  t.equal(view.latest('a')?.metadata.resourceVersion, '10', 'forgotten');
  view.wrote(at('12'));
  informer.remove(at('10'));
  t.equal(view.latest('a'), undefined, 'deleted: gone, whatever we wrote');
  informer.put(at('1'));
  t.equal(view.latest('a')?.metadata.resourceVersion, '1', 'and what we wrote is not brought back with a new one');
});
