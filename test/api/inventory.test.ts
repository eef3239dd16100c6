import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  formatIssue,
  InventorySchema,
  MachineSchema,
  parseInventoryConfigMap,
  parseInventoryText,
  type InventoryResult,
  type ParsedInventory,
} from '../../api/inventory.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/inventory/${name}`, import.meta.url), 'utf8');

function errors(result: InventoryResult): string[] {
  return result.ok ? [] : result.errors.map(formatIssue);
}

function warnings(result: InventoryResult): string[] {
  return result.warnings.map(formatIssue);
}

/** The inventory of a result that must be valid; throwing fails the test with the errors. */
function inventoryOf(result: InventoryResult): ParsedInventory {
  if (!result.ok) throw new Error(`expected a valid inventory, got:\n${errors(result).join('\n')}`);
  return result.inventory;
}

/** A one-machine document with the machine's YAML lines given. */
function oneMachine(...lines: string[]): string {
  return ['machines:', '  - name: rack-a-01', ...lines.map((line) => `    ${line}`)].join('\n');
}
const BMC = 'bmc: {address: ipmi://127.0.0.1:9001, credentialsSecret: bmc-rack-a}';
const CAPACITY = 'capacity: {cpu: 8, memory: 32Gi}';
const POWER = 'power: {idleWatts: 100, maxWatts: 300}';

t.test('the schemas are exported TypeBox objects', async (t) => {
  t.same(InventorySchema.required, ['machines']);
  t.same(MachineSchema.required, ['name', 'bmc', 'capacity']);
  t.equal(MachineSchema.additionalProperties, false);
});

t.test('valid.yaml: a bare machines document', async (t) => {
  const result = parseInventoryText(fixture('valid.yaml'), { source: 'valid.yaml' });
  const inventory = inventoryOf(result);
  t.same(warnings(result), []);
  t.equal(inventory.source, 'valid.yaml');
  t.same(
    inventory.machines.map((m) => m.name),
    ['rack-a-01', 'rack-a-02', 'rack-b-01', 'gpu-b-01'],
  );
  const [first, second, , gpu] = inventory.machines;
  t.same(first?.bmc, {
    address: 'ipmi://127.0.0.1:9001',
    parsedAddress: { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: '127.0.0.1', port: 9001 },
    credentialsSecret: 'bmc-rack-a-01',
    insecureSkipVerify: false,
  });
  t.same(first?.capacity, { cpu: 32_000n, memory: 256n * (1n << 30n) * 1000n, 'ephemeral-storage': (1n << 40n) * 1000n, pods: 110_000n });
  t.same(first?.capacityText, { cpu: '32', memory: '256Gi', 'ephemeral-storage': '1Ti', pods: '110' });
  t.same(first?.labels, { 'topology.kubernetes.io/zone': 'a', rack: 'a' });
  t.equal(first?.bootSeconds, 240);
  t.same(second?.capacityText, { cpu: '16', memory: '128Gi', pods: '110' }, 'pods defaults to 110');
  t.same(second?.taints, []);
  t.notOk(second !== undefined && 'bootSeconds' in second, 'optional fields stay absent');
  t.same(gpu?.taints, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]);
  t.equal(gpu?.capacity['nvidia.com/gpu'], 4000n);
  t.match(gpu?.bmc.parsedAddress, {
    driver: 'redfish',
    protocol: 'http',
    baseUrl: 'http://127.0.0.1:8001',
    systemPath: '/redfish/v1/Systems/7c2e9d44-5a1b-4c3f-8e6d-0f9a2b3c4d02',
  });
  t.same(gpu?.power, { idleWatts: 200, maxWatts: 1800 });
  t.equal(gpu?.index, 3);
});

t.test('valid-configmap.yaml: the ConfigMap form', async (t) => {
  const result = parseInventoryText(fixture('valid-configmap.yaml'));
  const inventory = inventoryOf(result);
  t.equal(inventory.name, 'machines');
  t.equal(inventory.namespace, 'bamel-system');
  t.same(
    inventory.machines.map((m) => m.name),
    ['rack-a-01', 'rack-b-01'],
  );
  t.same(warnings(result), []);
});

t.test('parseInventoryConfigMap: the controller and webhook entry point', async (t) => {
  const machinesYaml = oneMachine(BMC, CAPACITY, POWER);
  const ok = parseInventoryConfigMap({
    metadata: { name: 'machines', namespace: 'bamel-system', labels: { 'autoscaling.bamel.io/inventory': 'true' } },
    data: { 'machines.yaml': machinesYaml },
  });
  const inventory = inventoryOf(ok);
  t.equal(inventory.source, 'ConfigMap bamel-system/machines');
  t.equal(inventory.machines[0]?.name, 'rack-a-01');

  const unlabelled = parseInventoryConfigMap({ metadata: { name: 'machines', namespace: 'bamel-system' }, data: { 'machines.yaml': machinesYaml } });
  t.same(errors(unlabelled), [
    'metadata.labels["autoscaling.bamel.io/inventory"]: missing; the controller only reads ConfigMaps labelled autoscaling.bamel.io/inventory: "true" and would ignore this one, so add the label under metadata.labels',
  ]);

  const wrongLabel = parseInventoryConfigMap({
    metadata: { name: 'machines', labels: { 'autoscaling.bamel.io/inventory': 'yes' } },
    data: { 'machines.yaml': machinesYaml },
  });
  t.same(errors(wrongLabel), ['metadata.labels["autoscaling.bamel.io/inventory"]: is "yes"; the controller only reads ConfigMaps where it is "true"']);

  const noKey = parseInventoryConfigMap({
    metadata: { name: 'machines', labels: { 'autoscaling.bamel.io/inventory': 'true' } },
    data: { 'machine.yaml': machinesYaml },
  });
  t.same(errors(noKey), ['data["machines.yaml"]: missing; put the machines document under the key machines.yaml (found "machine.yaml")']);
  t.same(warnings(noKey), ['data["machine.yaml"]: ignored; the inventory is read from the machines.yaml key only']);

  const empty = parseInventoryConfigMap({ metadata: { name: 'machines', labels: { 'autoscaling.bamel.io/inventory': 'true' } } });
  t.same(errors(empty), ['data["machines.yaml"]: missing; put the machines document under the key machines.yaml (data is empty)']);

  const broken = parseInventoryConfigMap({
    metadata: { name: 'machines', labels: { 'autoscaling.bamel.io/inventory': 'true' } },
    data: { 'machines.yaml': 'machines:\n  - name: a\n    name: b\n' },
  });
  t.same(errors(broken), [
    'data["machines.yaml"], line 3, column 5: YAML syntax error: Map keys must be unique; each key may appear once in a mapping, remove or rename the repeat',
  ]);
});

t.test('an unlabelled ConfigMap is rejected, and its machines are still checked', async (t) => {
  t.same(errors(parseInventoryText(fixture('configmap-unlabelled.yaml'))), [
    'metadata.labels["autoscaling.bamel.io/inventory"]: missing; the controller only reads ConfigMaps labelled autoscaling.bamel.io/inventory: "true" and would ignore this one, so add the label under metadata.labels',
  ]);
  const text = fixture('configmap-unlabelled.yaml').replace('capacity: {cpu: 8, memory: 32Gi}', 'capacity: {cpu: 8}');
  t.same(errors(parseInventoryText(text)), [
    'metadata.labels["autoscaling.bamel.io/inventory"]: missing; the controller only reads ConfigMaps labelled autoscaling.bamel.io/inventory: "true" and would ignore this one, so add the label under metadata.labels',
    'machines[0] (rack-a-01).capacity.memory: missing required field: the memory the machine offers, e.g. 256Gi',
  ]);
});

t.test('ConfigMap envelope checks', async (t) => {
  const manifest = (metadata: string, extra = ''): string =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n${metadata}\n${extra}data:\n  machines.yaml: |\n    machines: []\n`;
  t.same(errors(parseInventoryText(manifest('  name: machines\n  labels:\n    autoscaling.bamel.io/inventory: true'))), [
    'metadata.labels["autoscaling.bamel.io/inventory"]: must be the string "true"; label values are strings, so quote it',
  ]);
  t.same(errors(parseInventoryText(manifest('  labels:\n    autoscaling.bamel.io/inventory: "true"'))), [
    'metadata.name: missing; name the ConfigMap (the BareMetalAutoscaler refers to it in spec.inventory.name)',
  ]);
  t.same(errors(parseInventoryText(manifest('  name: machines\n  labels: {autoscaling.bamel.io/inventory: "true"}').replace('apiVersion: v1', 'apiVersion: v2'))), [
    'apiVersion: must be "v1" for a ConfigMap, got "v2"',
  ]);
  const result = parseInventoryText(manifest('  name: machines\n  labels: {autoscaling.bamel.io/inventory: "true"}'));
  t.equal(result.ok, true);
  t.same(warnings(result), ['machines: the list is empty; the autoscaler has no machines to power on']);
  t.same(errors(parseInventoryText('apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n')), [
    'kind: expected an inventory ConfigMap or a machines.yaml document (machines: [...]), got kind "Secret"',
  ]);
});

t.test('YAML syntax errors carry the line and column', async (t) => {
  t.same(errors(parseInventoryText(fixture('syntax-error.yaml'))), [
    'line 5, column 5: YAML syntax error: Map keys must be unique; each key may appear once in a mapping, remove or rename the repeat',
  ]);
  t.same(
    errors(parseInventoryText(fixture('configmap-syntax-error.yaml'))),
    ['line 13, column 9: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }; check the indentation and quoting around this line'],
    'lines inside machines.yaml: | are counted in the manifest',
  );
  t.same(errors(parseInventoryText('machines:\n\t- name: a\n')), [
    'line 2, column 1: YAML syntax error: Tabs are not allowed as indentation; indent with spaces, not tabs',
  ]);
  t.same(errors(parseInventoryText('machines: []\n---\nmachines: []\n')), [
    'found 2 YAML documents; an inventory is one document, so split the file and validate each ConfigMap on its own',
  ]);
  t.same(errors(parseInventoryText('')), ['the document is empty; expected "machines:" with a list of machines, or an inventory ConfigMap']);
  t.same(errors(parseInventoryText('- name: a\n')), ['the document is a list; put it under a top-level "machines:" key (machines:\n  - name: ...)']);
});

t.test('duplicate-names.yaml', async (t) => {
  t.same(errors(parseInventoryText(fixture('duplicate-names.yaml'))), [
    'machines[2] (rack-a-01).name: duplicate machine name "rack-a-01", also used by machines[0]; each machine registers its own Node, so give it a unique name',
  ]);
});

t.test('unknown-scheme.yaml', async (t) => {
  t.same(errors(parseInventoryText(fixture('unknown-scheme.yaml'))), [
    'machines[1] (rack-a-07).bmc.address: unknown scheme "ipmii"; expected one of ipmi, redfish, redfish+http, redfish+https, idrac-redfish, idrac-redfish+http, idrac-redfish+https, ilo5-redfish, ilo5-redfish+http, ilo5-redfish+https',
  ]);
});

t.test('missing-credentials.yaml', async (t) => {
  t.same(errors(parseInventoryText(fixture('missing-credentials.yaml'))), [
    "machines[0] (rack-a-01).bmc.credentialsSecret: missing required field: the name of the Secret in the inventory's namespace that holds the BMC credentials under the keys username and password",
  ]);
});

t.test('bad-quantity.yaml', async (t) => {
  const advice = 'use a number with an optional suffix such as 500m, 2, 64Gi or 1Ti';
  t.same(errors(parseInventoryText(fixture('bad-quantity.yaml'))), [
    `machines[0] (rack-a-01).capacity.cpu: "eight" is not a valid quantity: it must start with a number; ${advice}`,
    `machines[0] (rack-a-01).capacity.memory: "12XB" is not a valid quantity: unknown suffix "XB"; ${advice}`,
    'machines[0] (rack-a-01).capacity.ephemeral-storage: "-1Ti" is negative; capacity must be zero or more',
  ]);
});

t.test('bad-taint-effect.yaml', async (t) => {
  t.same(errors(parseInventoryText(fixture('bad-taint-effect.yaml'))), [
    'machines[0] (gpu-01).taints[0].effect: must be one of NoSchedule, PreferNoSchedule or NoExecute, got "NoScheduled"; did you mean "NoSchedule"?',
  ]);
});

t.test('bad-labels.yaml', async (t) => {
  const rule = 'use letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  t.same(errors(parseInventoryText(fixture('bad-labels.yaml'))), [
    `machines[0] (rack-a-01).labels["rack a"]: "rack a" is not a valid label key: it contains " "; ${rule}`,
    `machines[0] (rack-a-01).labels["example.com/tier"]: "gold plated" is not a valid label value: it contains " "; ${rule}`,
    'machines[0] (rack-a-01).labels.generation: must be a string, got number 3; put the value in quotes so YAML reads it as text',
  ]);
});

t.test('missing-capacity.yaml', async (t) => {
  t.same(errors(parseInventoryText(fixture('missing-capacity.yaml'))), [
    'machines[0] (rack-a-01).capacity: missing required field: what the machine offers as a Node: cpu and memory at least, as Kubernetes quantities (cpu: "32", memory: 256Gi)',
    'machines[1] (rack-a-02).capacity.memory: missing required field: the memory the machine offers, e.g. 256Gi',
  ]);
});

t.test('many-errors.yaml: every error is reported, in document order', async (t) => {
  const result = parseInventoryText(fixture('many-errors.yaml'));
  t.same(errors(result), [
    'machines[0] (Rack_A_01).name: "Rack_A_01" is not a valid DNS-1123 subdomain: it contains uppercase letters; use lowercase letters, digits, "-" and ".", with each dot-separated part starting and ending with a letter or digit (e.g. rack-a-01 or bmc.example.com)',
    'machines[0] (Rack_A_01).bmc.address: port 70000 out of range; use 1 to 65535',
    'machines[0] (Rack_A_01).bmc.password: credentials belong only in the Secret named by bmc.credentialsSecret (keys username and password), never in the inventory; remove this field',
    'machines[0] (Rack_A_01).lables: unknown field "lables"; did you mean "labels"?',
    'machines[0] (Rack_A_01).capacity.pods: "1.5" is not a whole number; pods is counted in whole units',
    'machines[0] (Rack_A_01).power.idleWatts: 500 is more than maxWatts (450); idle draw cannot exceed full-load draw, so check both readings',
    'machines[1] (rack-a-02).taints[1]: duplicate taint gpu:NoSchedule (also taints[0]); a key may appear once per effect, so remove one',
    'machines[1] (rack-a-02).capacity.gpu: unknown resource "gpu"; resources without a domain prefix must be cpu, memory, ephemeral-storage, pods or hugepages-<size> (e.g. hugepages-2Mi), and extended resources take a domain prefix (e.g. nvidia.com/gpu)',
    'machines[1] (rack-a-02).bootSeconds: must be a whole number from 1 to 86400, got number 0',
    'machines[2] (rack-a-03).bmc.address: same BMC endpoint as machines[1] (rack-a-02) (ipmi://10.0.0.12:623); powering one would power the other, so give each machine its own BMC or Redfish system path',
  ]);
  t.notMatch(JSON.stringify(result), /hunter2/, 'an inline password is never repeated');
});

t.test('inline credentials', async (t) => {
  const message = 'credentials belong only in the Secret named by bmc.credentialsSecret (keys username and password), never in the inventory; remove this field';
  const result = parseInventoryText(
    oneMachine('bmc:', '  address: ipmi://127.0.0.1:9001', '  credentialsSecret: bmc', '  username: admin', '  credentials: {user: admin}', CAPACITY, POWER),
  );
  t.same(errors(result), [`machines[0] (rack-a-01).bmc.username: ${message}`, `machines[0] (rack-a-01).bmc.credentials: ${message}`]);
  t.same(errors(parseInventoryText(oneMachine(BMC, 'password: secret', CAPACITY, POWER))), [`machines[0] (rack-a-01).password: ${message}`]);
});

t.test('misplaced and misspelt fields', async (t) => {
  t.same(errors(parseInventoryText(oneMachine(BMC, CAPACITY, POWER, 'address: ipmi://10.0.0.1'))), [
    'machines[0] (rack-a-01).address: unknown field "address"; it belongs under bmc: (bmc.address)',
  ]);
  t.same(errors(parseInventoryText(oneMachine(BMC, 'capacity: {cpu: 8, memmory: 32Gi}', POWER))), [
    'machines[0] (rack-a-01).capacity.memmory: unknown resource "memmory"; did you mean "memory"?',
    'machines[0] (rack-a-01).capacity.memory: missing required field: the memory the machine offers, e.g. 256Gi',
  ]);
  t.same(errors(parseInventoryText(oneMachine(BMC, CAPACITY, POWER, 'bootSecs: 10'))), [
    'machines[0] (rack-a-01).bootSecs: unknown field "bootSecs"; the fields here are name, bmc, labels, taints, capacity, power, bootSeconds, joinTimeoutSeconds',
  ]);
  t.same(errors(parseInventoryText('machine: []\n')), [
    'machine: unknown field "machine"; did you mean "machines"?',
    'machines: missing required field: the machines the autoscaler may power on and off',
  ]);
});

t.test('wrong types say how to fix them', async (t) => {
  t.same(errors(parseInventoryText(oneMachine(BMC, CAPACITY, 'power: {idleWatts: "100", maxWatts: 300}', 'bootSeconds: 1.5'))), [
    'machines[0] (rack-a-01).power.idleWatts: must be a number of at least 0, got "100"; remove the quotes',
    'machines[0] (rack-a-01).bootSeconds: must be a whole number from 1 to 86400, got number 1.5',
  ]);
  t.same(errors(parseInventoryText(oneMachine('bmc: {address: ipmi://127.0.0.1:9001, credentialsSecret: bmc, insecureSkipVerify: "true"}', CAPACITY, POWER))), [
    'machines[0] (rack-a-01).bmc.insecureSkipVerify: must be true or false, got "true"; remove the quotes',
  ]);
  t.same(errors(parseInventoryText(oneMachine(BMC, 'capacity: {cpu: [8], memory: 32Gi}', POWER, 'taints: {key: gpu}'))), [
    'machines[0] (rack-a-01).capacity.cpu: must be a string or a number, got a list',
    'machines[0] (rack-a-01).taints: must be a list, got a mapping',
  ]);
  t.same(errors(parseInventoryText('machines:\n  - name: 42\n    bmc:\n    ' + CAPACITY)), [
    'machines[0].name: must be a string, got number 42; put the value in quotes so YAML reads it as text',
    'machines[0].bmc: must be a mapping of keys to values, got nothing',
  ]);
  t.same(errors(parseInventoryText('machines:\n')), ['machines: must be a list, got nothing']);
});

t.test('quantities', async (t) => {
  const capacity = (text: string): string[] => errors(parseInventoryText(oneMachine(BMC, `capacity: ${text}`, POWER)));
  t.same(capacity('{cpu: 0, memory: 32Gi}'), ['machines[0] (rack-a-01).capacity.cpu: is 0; a machine without cpu cannot run pods']);
  t.same(capacity('{cpu: 8, memory: 32Gi, nvidia.com/gpu: 500m}'), [
    'machines[0] (rack-a-01).capacity["nvidia.com/gpu"]: "500m" is not a whole number; nvidia.com/gpu is counted in whole units',
  ]);
  t.same(capacity('{cpu: 8, memory: 64GB}'), [
    'machines[0] (rack-a-01).capacity.memory: "64GB" is not a valid quantity: unknown suffix "GB" (did you mean "Gi" or "G"?); use a number with an optional suffix such as 500m, 2, 64Gi or 1Ti',
  ]);
  const inventory = inventoryOf(parseInventoryText(oneMachine(BMC, 'capacity: {cpu: 7500m, memory: 1.5e9, hugepages-2Mi: 1Gi, pods: 250}', POWER)));
  t.same(inventory.machines[0]?.capacity, { cpu: 7500n, memory: 1_500_000_000_000n, 'hugepages-2Mi': (1n << 30n) * 1000n, pods: 250_000n });
  const small = parseInventoryText(oneMachine(BMC, 'capacity: {cpu: 8, memory: 256}', POWER));
  t.equal(small.ok, true, 'a tiny memory size is suspicious, not invalid');
  t.same(warnings(small), ['machines[0] (rack-a-01).capacity.memory: 256 means 256 bytes; write 256Gi if you meant gibibytes']);
});

t.test('duplicate BMC endpoints', async (t) => {
  // Plain-HTTP Redfish carries the opt-in (credentials in clear), as every such inventory must.
  const optIn = (address: string): string => (address.startsWith('redfish+http:') ? ', allowInsecureCredentials: true' : '');
  const doc = (a: string, b: string): string =>
    [
      'machines:',
      `  - {name: a, bmc: {address: "${a}", credentialsSecret: s${optIn(a)}}, capacity: {cpu: 1, memory: 1Gi}, power: {maxWatts: 1}}`,
      `  - {name: b, bmc: {address: "${b}", credentialsSecret: s${optIn(b)}}, capacity: {cpu: 1, memory: 1Gi}, power: {maxWatts: 1}}`,
    ].join('\n');
  t.equal(parseInventoryText(doc('redfish+http://127.0.0.1:8001/redfish/v1/Systems/a', 'redfish+http://127.0.0.1:8001/redfish/v1/Systems/b')).ok, true, 'two systems of one Redfish service');
  t.same(errors(parseInventoryText(doc('redfish+http://127.0.0.1:8001/redfish/v1/Systems/a', 'redfish+http://127.0.0.1:8001'))), [
    'machines[1] (b).bmc.address: same BMC endpoint as machines[0] (a) (http://127.0.0.1:8001); powering one would power the other, so give each machine its own BMC or Redfish system path',
  ]);
  t.same(errors(parseInventoryText(doc('ipmi://10.0.0.1', '10.0.0.1:623'))), [
    'machines[1] (b).bmc.address: same BMC endpoint as machines[0] (a) (ipmi://10.0.0.1:623); powering one would power the other, so give each machine its own BMC or Redfish system path',
  ]);
  t.equal(parseInventoryText(doc('ipmi://10.0.0.1:9001', 'ipmi://10.0.0.1:9002')).ok, true);
});

t.test('TLS settings', async (t) => {
  const bmc = (fields: string): string => oneMachine(`bmc: {address: "redfish://10.0.0.11/redfish/v1/Systems/1", credentialsSecret: bmc${fields}}`, CAPACITY, POWER);
  // insecureSkipVerify needs the opt-in (see "credentials unprotected"); with it, still a warning.
  const insecure = parseInventoryText(bmc(', insecureSkipVerify: true, allowInsecureCredentials: true'));
  t.equal(insecure.ok, true);
  t.same(warnings(insecure), [
    "machines[0] (rack-a-01).bmc.insecureSkipVerify: TLS certificate verification is off for an https BMC, so anything answering on its address receives the BMC credentials; set caBundle to the BMC's CA certificate instead",
  ]);
  t.same(errors(parseInventoryText(bmc(', caBundle: "not a cert"'))), [
    'machines[0] (rack-a-01).bmc.caBundle: contains no PEM certificate (no "-----BEGIN CERTIFICATE-----" line); paste the CA certificates in PEM form, as a block: caBundle: |',
  ]);
  const pem = '"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"';
  const withCa = inventoryOf(parseInventoryText(bmc(`, caBundle: ${pem}`)));
  t.equal(withCa.machines[0]?.bmc.caBundle, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const ipmi = parseInventoryText(oneMachine(`bmc: {address: ipmi://10.0.0.1, credentialsSecret: bmc, insecureSkipVerify: true, caBundle: ${pem}}`, CAPACITY, POWER));
  t.same(warnings(ipmi), [
    'machines[0] (rack-a-01).bmc.insecureSkipVerify: has no effect: ipmi addresses do not use TLS; remove it',
    'machines[0] (rack-a-01).bmc.caBundle: ignored: ipmi addresses do not use TLS; remove it',
  ]);
});

t.test('warnings do not make an inventory invalid', async (t) => {
  const result = parseInventoryText(oneMachine(BMC, CAPACITY));
  t.equal(result.ok, true);
  t.same(warnings(result), [
    'machines[0] (rack-a-01).power.maxWatts: not set; machines without it cannot be ranked by power draw, so ties between equally good machines fall back to the machine name. Set it from the spec sheet or a PDU reading',
  ]);
  const empty = parseInventoryText('machines: []\n');
  t.equal(empty.ok, true);
  t.same(warnings(empty), ['machines: the list is empty; the autoscaler has no machines to power on']);
  t.equal(empty.ok && empty.inventory.machines.length, 0);
});

t.test('taints, names and secrets', async (t) => {
  t.same(errors(parseInventoryText(oneMachine(BMC, CAPACITY, POWER, 'taints: [{key: "gpu card", value: "a b", effect: NoSchedule}, {effect: NoExecute}]'))), [
    'machines[0] (rack-a-01).taints[0].key: "gpu card" is not a valid taint key: it contains " "; use letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
    'machines[0] (rack-a-01).taints[0].value: "a b" is not a valid label value: it contains " "; use letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
    'machines[0] (rack-a-01).taints[1].key: missing required field: the taint key, a label key such as gpu or example.com/dedicated',
  ]);
  t.equal(parseInventoryText(oneMachine(BMC, CAPACITY, POWER, 'taints: [{key: gpu, effect: NoSchedule}, {key: gpu, effect: NoExecute}]')).ok, true, 'one key, two effects');
  t.same(errors(parseInventoryText(oneMachine('bmc: {address: ipmi://10.0.0.1, credentialsSecret: BMC_Secret}', CAPACITY, POWER))), [
    'machines[0] (rack-a-01).bmc.credentialsSecret: "BMC_Secret" is not a valid DNS-1123 subdomain: it contains uppercase letters; use lowercase letters, digits, "-" and ".", with each dot-separated part starting and ending with a letter or digit (e.g. rack-a-01 or bmc.example.com); it must name a Secret in the inventory\'s namespace',
  ]);
});

t.test('YAML merge keys share blocks between machines', async (t) => {
  const text = [
    'defaults: &defaults',
    '  capacity: {cpu: 8, memory: 32Gi}',
    '  power: {maxWatts: 300}',
    'machines:',
    '  - <<: *defaults',
    '    name: a',
    '    bmc: {address: ipmi://10.0.0.1, credentialsSecret: s}',
  ].join('\n');
  t.same(errors(parseInventoryText(text)), ['defaults: unknown field "defaults"; the fields here are machines']);
  const shared = text.replace('defaults: &defaults\n  capacity: {cpu: 8, memory: 32Gi}\n  power: {maxWatts: 300}\nmachines:', 'machines:\n  - &defaults {name: z, bmc: {address: ipmi://10.0.0.9, credentialsSecret: s}, capacity: {cpu: 8, memory: 32Gi}, power: {maxWatts: 300}}');
  const inventory = inventoryOf(parseInventoryText(shared));
  t.same(inventory.machines[1]?.capacityText, { cpu: '8', memory: '32Gi', pods: '110' });
  t.equal(inventory.machines[1]?.name, 'a');
});

t.test('credentials unprotected (plain HTTP, an unverified host) need bmc.allowInsecureCredentials: true', async (t) => {
  const doc = (bmc: string): string => ['machines:', '  - name: rack-a-01', '    bmc:', ...bmc.split('\n').map((l) => `      ${l}`), `    ${CAPACITY}`, `    ${POWER}`].join('\n');
  const http = parseInventoryText(doc('address: redfish+http://10.0.0.11/redfish/v1/Systems/1\ncredentialsSecret: bmc'));
  t.same(errors(http), [
    "machines[0] (rack-a-01).bmc.address: redfish+http sends the BMC credentials in clear over HTTP to 10.0.0.11:80 (line 4), where anyone on the network path can read them; use redfish+https:// (with caBundle for the BMC's CA), or, on an isolated BMC network only, opt in with bmc.allowInsecureCredentials: true",
  ]);
  t.same(errors(parseInventoryText(doc('address: idrac-redfish+http://10.0.0.12:8080\ncredentialsSecret: bmc'))), [
    "machines[0] (rack-a-01).bmc.address: idrac-redfish+http sends the BMC credentials in clear over HTTP to 10.0.0.12:8080 (line 4), where anyone on the network path can read them; use idrac-redfish+https:// (with caBundle for the BMC's CA), or, on an isolated BMC network only, opt in with bmc.allowInsecureCredentials: true",
  ], 'vendor aliases too');
  const unverified = parseInventoryText(doc('address: redfish+https://10.0.0.13/redfish/v1/Systems/1\ncredentialsSecret: bmc\ninsecureSkipVerify: true'));
  t.same(errors(unverified), [
    "machines[0] (rack-a-01).bmc.insecureSkipVerify: true sends the BMC credentials to whatever answers on 10.0.0.13:443 without verifying its certificate (line 6); set caBundle to the BMC's CA certificate and remove insecureSkipVerify, or, on an isolated BMC network only, opt in with bmc.allowInsecureCredentials: true",
  ]);

  const optedIn = parseInventoryText(doc('address: redfish+http://10.0.0.11/redfish/v1/Systems/1\ncredentialsSecret: bmc\nallowInsecureCredentials: true'));
  t.equal(optedIn.ok, true, 'with the opt-in: valid');
  t.same(warnings(optedIn), []);
  t.equal(inventoryOf(optedIn).machines[0]?.bmc.allowInsecureCredentials, true, 'and the parsed machine says so');
  t.equal(inventoryOf(parseInventoryText(doc('address: ipmi://10.0.0.1\ncredentialsSecret: bmc'))).machines[0]?.bmc.allowInsecureCredentials, undefined, 'absent without it');

  t.same(errors(parseInventoryText(doc('address: redfish+http://10.0.0.11\ncredentialsSecret: bmc\nallowInsecureCredentials: false'))).length, 1, 'false is no opt-in');
  t.same(warnings(parseInventoryText(doc('address: ipmi://10.0.0.1\ncredentialsSecret: bmc\nallowInsecureCredentials: true'))), [
    'machines[0] (rack-a-01).bmc.allowInsecureCredentials: has no effect: the credentials of ipmi are protected here (IPMI RMCP+); remove it',
  ]);
  t.same(warnings(parseInventoryText(doc('address: redfish://10.0.0.11\ncredentialsSecret: bmc\nallowInsecureCredentials: true'))), [
    'machines[0] (rack-a-01).bmc.allowInsecureCredentials: has no effect: the credentials of redfish are protected here (verified TLS); remove it',
  ]);

  // The ConfigMap forms: lines of the manifest, or of machines.yaml when it comes from the API server.
  const machinesYaml = doc('address: redfish+http://10.0.0.11/redfish/v1/Systems/1\ncredentialsSecret: bmc');
  const manifest = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: machines', '  labels: {autoscaling.bamel.io/inventory: "true"}', 'data:', '  machines.yaml: |', ...machinesYaml.split('\n').map((l) => `    ${l}`)].join('\n');
  t.match(errors(parseInventoryText(manifest)), [/^machines\[0\] \(rack-a-01\)\.bmc\.address: redfish\+http sends the BMC credentials in clear .* \(line 11\)/], 'the line in the manifest');
  const fromApi = parseInventoryConfigMap({ metadata: { name: 'machines', namespace: 'inv', labels: { 'autoscaling.bamel.io/inventory': 'true' } }, data: { 'machines.yaml': machinesYaml } });
  t.match(errors(fromApi), [/^machines\[0\] \(rack-a-01\)\.bmc\.address: redfish\+http sends .* \(line 4 of machines\.yaml\)/], 'the controller and the webhook refuse it too, with the line in machines.yaml');
});
