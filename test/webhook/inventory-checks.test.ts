import t from 'tap';
import { checkInventory, checkInventoryDeletion } from '../../webhook/inventory-checks.js';
import { autoscaler, context, draining, inventoryConfigMap, poweringOn, type MachineEntry } from './fixtures.js';

const machines: MachineEntry[] = [
  { name: 'a-1', labels: { rack: 'a' } },
  { name: 'a-2', labels: { rack: 'a' } },
  { name: 'a-3', labels: { rack: 'a' } },
];
const stored = inventoryConfigMap('inv', 'machines', machines);

function updateTo(next: MachineEntry[] | string, autoscalers = [autoscaler('rack-a', {}, [poweringOn('a-1'), draining('a-2')])]) {
  return checkInventory({ operation: 'UPDATE', object: inventoryConfigMap('inv', 'machines', next), oldObject: stored }, context({ autoscalers, inventories: [stored] }));
}

t.test('a good inventory is allowed', async (t) => {
  const v = checkInventory({ operation: 'CREATE', object: stored }, context({}));
  t.same(v, { errors: [], warnings: [] });
});

t.test('every error of bamel inventory validate, with the field and the fix', async (t) => {
  const text = `machines:
  - name: Rack_A
    bmc: {address: "ipmii://10.0.0.1", credentialsSecret: bmc, password: hunter2}
    capacity: {cpu: "32", memroy: 64Gi}
  - name: b
    bmc: {address: "ipmi://10.0.0.1", credentialsSecret: bmc}
    capacity: {cpu: "0", memory: 64Gi}
    taints: [{key: gpu, effect: NoSchedul}]
`;
  const v = checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'bad', text) }, context({}));
  const lines = v.errors.map((e) => `${e.field}: ${e.message}`);
  t.ok(v.errors.length >= 6, `all the problems are reported (${v.errors.length})`);
  t.ok(lines.some((l) => /^machines\.yaml: machines\[0\] \(Rack_A\)\.name: "Rack_A" is not a valid DNS-1123 subdomain/.test(l)), 'name');
  t.ok(lines.some((l) => /machines\[0\] \(Rack_A\)\.bmc\.address: unknown scheme "ipmii"/.test(l)), 'address');
  t.ok(lines.some((l) => /bmc\.password: credentials belong only in the Secret/.test(l)), 'inline credentials');
  t.ok(lines.some((l) => /capacity\.memroy: unknown resource "memroy"; did you mean "memory"\?/.test(l)), 'typo');
  t.ok(lines.some((l) => /machines\[1\] \(b\)\.capacity\.cpu: is 0/.test(l)), 'zero cpu');
  t.ok(lines.some((l) => /taints\[0\]\.effect: .*did you mean "NoSchedule"\?/.test(l)), 'taint effect');

  const syntax = checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'bad', 'machines:\n  - name: a\n   bmc: x\n') }, context({}));
  t.match(syntax.errors[0], { field: /^data\["machines.yaml"\], line \d+, column \d+$/, message: /YAML syntax error/ });

  const noKey = checkInventory({ operation: 'CREATE', object: { metadata: { name: 'x', namespace: 'inv', labels: { 'autoscaling.bamel.io/inventory': 'true' } }, data: { 'machine.yaml': 'x' } } }, context({}));
  t.match(noKey.errors, [{ field: 'data["machines.yaml"]', message: /missing; put the machines document under the key machines.yaml \(found "machine.yaml"\)/ }]);
  t.match(noKey.warnings, [{ field: 'data["machine.yaml"]', message: /ignored/ }]);

  const wrongLabel = checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'x', machines, { 'autoscaling.bamel.io/inventory': 'yes' }) }, context({}));
  t.match(wrongLabel.errors, [{ field: 'metadata.labels["autoscaling.bamel.io/inventory"]', message: /is "yes"; the controller only reads ConfigMaps where it is "true"/ }]);
});

t.test("the inventory's warnings come back as warnings", async (t) => {
  const v = checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'm', 'machines:\n  - name: a\n    bmc: {address: "ipmi://10.0.0.1", credentialsSecret: bmc}\n    capacity: {cpu: "4", memory: "64"}\n') }, context({}));
  t.same(v.errors, []);
  t.match(v.warnings, [{ field: 'machines.yaml: machines[0] (a).capacity.memory', message: /64 means 64 bytes/ }, { field: /maxWatts/, message: /not set/ }]);
});

t.test('a machine being powered on or drained cannot be removed or readdressed', async (t) => {
  const removed = updateTo([machines[2] as MachineEntry]);
  t.equal(removed.errors.length, 2);
  t.match(removed.errors[0], {
    field: 'machines.yaml: machines',
    message: /machine a-1 is removed while BareMetalAutoscaler rack-a has it being powered on \(PowerOn operation op-a-1, since 2024-05-01T10:00:00Z\); keep it listed until its phase is Ready or Off/,
  });
  t.match(removed.errors[1]?.message, /machine a-2 is removed while BareMetalAutoscaler rack-a has it being drained/);

  const readdressed = updateTo([{ ...machines[0], address: 'ipmi://10.9.9.9:623' } as MachineEntry, machines[1] as MachineEntry, machines[2] as MachineEntry]);
  t.equal(readdressed.errors.length, 1);
  t.match(readdressed.errors[0], {
    field: 'machines.yaml: machines[0] (a-1).bmc.address',
    message: /changed from ipmi:\/\/10.0.0.1:623 while BareMetalAutoscaler rack-a has the machine being powered on .* Keep the address until its phase is Ready or Off/,
  });

  t.same(updateTo([machines[0] as MachineEntry, machines[1] as MachineEntry]).errors, [], 'a machine at rest (a-3) may go');
  t.same(updateTo([machines[2] as MachineEntry], [autoscaler('other', { inventory: { namespace: 'inv', name: 'elsewhere' } }, [poweringOn('a-1')])]).errors, [], "another inventory's autoscaler is not concerned");

  const unlabel = checkInventory(
    { operation: 'UPDATE', object: inventoryConfigMap('inv', 'machines', machines, {}), oldObject: stored },
    context({ autoscalers: [autoscaler('rack-a', {}, [poweringOn('a-1')])] }),
  );
  t.match(unlabel.errors, [{ field: 'metadata.labels["autoscaling.bamel.io/inventory"]', message: /removing it removes every machine, and BareMetalAutoscaler rack-a has machine a-1 being powered on/ }]);
  const unlabelIdle = checkInventory({ operation: 'UPDATE', object: inventoryConfigMap('inv', 'machines', machines, {}), oldObject: stored }, context({ autoscalers: [autoscaler('rack-a', {})] }));
  t.same(unlabelIdle.errors, []);
  t.match(unlabelIdle.warnings, [{ message: /BareMetalAutoscaler rack-a will find no inventory/ }]);
  t.same(checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'plain', machines, {}) }, context({})), { errors: [], warnings: [] }, 'a ConfigMap that never was an inventory is not ours');
});

t.test('risky inventory settings are warnings', async (t) => {
  const slow = checkInventory(
    { operation: 'CREATE', object: inventoryConfigMap('inv', 'machines', [{ name: 'slow', bootSeconds: 600, joinTimeoutSeconds: 300 }, { name: 'boot', bootSeconds: 900 }, { name: 'x' }]) },
    context({ autoscalers: [autoscaler('rack', { minMachines: 4, maxMachines: 5 })] }),
  );
  t.same(slow.errors, []);
  t.match(slow.warnings, [
    { field: 'machines.yaml: machines[0] (slow).joinTimeoutSeconds', message: /300s is not longer than its bootSeconds \(600s\)/ },
    { field: 'machines.yaml', message: /BareMetalAutoscaler rack keeps minMachines 4 on but would select only 3 machines/ },
    { field: 'machines.yaml', message: /bootSeconds of boot is not shorter than BareMetalAutoscaler rack's scaleUp.joinTimeoutSeconds \(600s\)/ },
  ]);
});

t.test('the namespace of the request stands in for an empty one', async (t) => {
  const cm = inventoryConfigMap('', 'machines', machines);
  const v = checkInventory({ operation: 'UPDATE', namespace: 'inv', object: inventoryConfigMap('inv', 'machines', [machines[2] as MachineEntry]), oldObject: cm }, context({ autoscalers: [autoscaler('rack-a', {}, [poweringOn('a-1')])] }));
  t.match(v.errors, [{ message: /machine a-1 is removed/ }]);
});

t.test('deleting an inventory: refused while a machine of an autoscaler using it is in flight, naming both', async (t) => {
  const poweringOff = { name: 'a-3', phase: 'PoweringOff' as const, since: '2024-05-01T10:00:00Z' };
  const withOp = { name: 'a-4', phase: 'Ready' as const, since: '2024-05-01T10:00:00Z', operation: { id: 'op-a-4', action: 'PowerOff' as const, startedAt: '2024-05-01T10:05:00Z' } };
  const busy = autoscaler('rack-a', {}, [poweringOn('a-1'), draining('a-2'), poweringOff, withOp, { name: 'a-5', phase: 'Ready', since: '2024-05-01T10:00:00Z' }]);
  const idle = autoscaler('rack-b', { machineSelector: { matchLabels: { rack: 'b' } } }, [{ name: 'b-1', phase: 'Off', since: '2024-05-01T10:00:00Z' }]);
  const elsewhere = autoscaler('rack-c', { inventory: { namespace: 'inv', name: 'other' } }, [poweringOn('c-1')]);

  const v = checkInventoryDeletion({ namespace: 'inv', name: 'machines', oldObject: stored }, context({ autoscalers: [busy, idle, elsewhere] }));
  t.equal(v.errors.length, 1, 'one refusal, for the autoscaler with machines in flight');
  const message = v.errors[0]?.message ?? '';
  t.match(message, /^inventory inv\/machines cannot be deleted while BareMetalAutoscaler rack-a has 4 machines in flight: /);
  t.match(message, /a-1 being powered on \(PowerOn operation op-a-1, since 2024-05-01T10:00:00Z\)/, 'an operation in flight');
  t.match(message, /a-2 being drained/, 'Draining');
  t.match(message, /a-3 being powered off \(since 2024-05-01T10:00:00Z\)/, 'PoweringOff');
  t.match(message, /a-4 being powered off \(PowerOff operation op-a-4/, 'an intent in status.machines[].operation, whatever the phase');
  t.notMatch(message, /a-5/, 'a machine at rest is not named');
  t.match(message, /Delete it once their phase is Ready or Off/);
  t.notMatch(message, /rack-c/, "another inventory's autoscaler is not concerned");
  t.match(v.warnings, [{ message: /deleting inventory inv\/machines: BareMetalAutoscaler rack-b will find no inventory and manage no machine/ }]);

  const one = checkInventoryDeletion({ namespace: 'inv', name: 'machines', oldObject: stored }, context({ autoscalers: [autoscaler('rack-a', {}, [poweringOn('a-1')])] }));
  t.match(one.errors[0]?.message, /BareMetalAutoscaler rack-a has a machine in flight: a-1 being powered on .*; deleting it would leave it half-done/);

  t.same(checkInventoryDeletion({ namespace: 'inv', name: 'machines', oldObject: stored }, context({ autoscalers: [idle] })).errors, [], 'at rest: admitted');
  t.same(checkInventoryDeletion({ namespace: 'inv', name: 'machines', oldObject: stored }, context({})), { errors: [], warnings: [] }, 'no autoscaler uses it');
  t.same(
    checkInventoryDeletion({ namespace: 'inv', name: 'machines', oldObject: inventoryConfigMap('inv', 'machines', machines, {}) }, context({ autoscalers: [busy] })),
    { errors: [], warnings: [] },
    'a ConfigMap that is not an inventory is not ours',
  );
  t.equal(checkInventoryDeletion({ namespace: 'inv', name: 'machines' }, context({ autoscalers: [busy] })).errors.length, 1, 'without the stored object: by the request\'s namespace and name');
  t.equal(checkInventoryDeletion({ namespace: 'inv', oldObject: inventoryConfigMap('', 'machines', machines) }, context({ autoscalers: [busy] })).errors.length, 1, "the request's namespace stands in for an empty one");
});

t.test('credentials in clear or to an unverified host are refused without the opt-in, naming the field and the line', async (t) => {
  const http = checkInventory({ operation: 'CREATE', object: inventoryConfigMap('inv', 'machines', [{ name: 'h-1', address: 'redfish+http://10.0.0.7/redfish/v1/Systems/1' }]) }, context({}));
  t.match(http.errors, [{ field: 'machines.yaml: machines[0] (h-1).bmc.address', message: /^redfish\+http sends the BMC credentials in clear over HTTP to 10\.0\.0\.7:80 \(line 4 of machines\.yaml\).*opt in with bmc\.allowInsecureCredentials: true$/ }]);
  const optedIn = inventoryConfigMap('inv', 'machines', [{ name: 'h-1', address: 'redfish+http://10.0.0.7/redfish/v1/Systems/1' }]);
  const data = optedIn.data as Record<string, string>;
  data['machines.yaml'] = (data['machines.yaml'] ?? '').replace('credentialsSecret: bmc', 'credentialsSecret: bmc\n      allowInsecureCredentials: true');
  t.same(checkInventory({ operation: 'CREATE', object: optedIn }, context({})).errors, [], 'with bmc.allowInsecureCredentials: true, admitted');
});
