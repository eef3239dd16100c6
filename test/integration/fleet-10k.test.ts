import t from 'tap';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION, type BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { localWebhookConfiguration } from '../../hack/webhook-config.js';
import { freeTcpPort } from '../helpers/ports.js';
import { webhookCerts } from '../helpers/webhook.js';
import { createKwokNodes, isNodeReady, kubectl, localCluster, testNamespace, uniqueName, waitFor } from './helpers/cluster.js';
import { installCrd } from './helpers/crd.js';
import { startManager } from './helpers/manager.js';

/**
 * The largest fleet one autoscaler manages: 10,000 machines in 5 inventory ConfigMaps (one
 * ConfigMap holds at most 1 MiB, about 2,000 machines), in two namespaces, each with its own
 * credentials Secret. Everything real: the API server (with the admission webhook of a real
 * `bamel manager` for this test's objects) and kwok Nodes for the machines that are up. The
 * autoscaler is in dryRun: it reports every machine and powers none.
 */

const MACHINES = 10_000;
const INVENTORIES = 5;
const READY = 100;
/** etcd's default request limit: the whole object, status included, must stay under it. */
const ETCD_REQUEST_LIMIT = 1.5 * 1024 * 1024;
const TEST_LABEL = 'bamel.io/fleet-test';

t.test('an autoscaler over 10,000 machines in 5 inventories applies, reconciles and reports status', async (t) => {
  const begun = Date.now();
  const { core, custom } = await localCluster();
  await installCrd();
  const id = uniqueName('fleet');
  const nsA = await testNamespace(t, 'fleet-a');
  const nsB = await testNamespace(t, 'fleet-b');
  const labels = { [TEST_LABEL]: id };
  const short = id.slice(-5);
  const nameOf = (i: number): string => `fl-${short}-${String(i).padStart(5, '0')}`;

  // The same BMC user in both namespaces: each machine's Secret is in its inventory's namespace.
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  for (const namespace of [nsA, nsB]) await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password } } });

  // Nothing listens there: a power-state read fails at once and the machine stays Unknown
  // (in dry run nothing more is asked of a BMC). A simulator for 10,000 BMCs would cost more
  // than the rest of the test together.
  const rfPort = await freeTcpPort();
  const machine = (i: number) => ({
    name: nameOf(i),
    bmc: { address: `redfish+http://127.0.0.1:${rfPort}/redfish/v1/Systems/${nameOf(i)}`, credentialsSecret: 'bmc', allowInsecureCredentials: true },
    labels: { [TEST_LABEL]: id, rack: `r${Math.floor(i / 40)}` },
    capacity: { cpu: '32', memory: '256Gi', pods: '110' },
    power: { idleWatts: 120, maxWatts: 450 },
    bootSeconds: 240,
  });
  const perInventory = MACHINES / INVENTORIES;
  const inventories = Array.from({ length: INVENTORIES }, (_, k) => ({
    namespace: k < 3 ? nsA : nsB,
    name: `machines-${k}`,
    machines: Array.from({ length: perInventory }, (_, j) => machine(k * perInventory + j)),
  }));

  // The machines that are up: kwok Nodes.
  await createKwokNodes(
    t,
    Array.from({ length: READY }, (_, i) => ({ name: nameOf(i * 97), capacity: { cpu: '32', memory: '256Gi', pods: '110' }, labels })),
  );
  t.comment(`kwok Nodes created after ${((Date.now() - begun) / 1000).toFixed(1)} s`);

  const certs = await webhookCerts();
  const port = await freeTcpPort();
  const manager = startManager(
        // Power readings off: the power states of 10,000 BMCs are what this test reads.
    ['--namespace', nsA, '--autoscaler-selector', `${TEST_LABEL}=${id}`, '--leader-election-id', `bamel-${short}`, '--inventory-namespaces', `${nsA},${nsB}`, '--power-reading-interval', '0'],
    { webhook: { bindAddress: `127.0.0.1:${port}`, certDir: certs.dir } },
  );
  t.teardown(() => manager.stop());
  await manager.waitForLog((l) => l.msg === 'webhook server listening', 60_000);
  const configName = `bamel-${id}`;
  const config = localWebhookConfiguration({ url: `https://127.0.0.1:${port}`, caBundle: certs.ca.toString(), name: configName, selector: labels });
  t.equal((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(config) })).code, 0, 'webhook registered for this test');
  const autoscalerName = `${id}-fleet`;
  t.teardown(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', configName, '--ignore-not-found']);
    await kubectl(['patch', 'bma', autoscalerName, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    await kubectl(['delete', 'bma', autoscalerName, '--ignore-not-found', '--wait=false']);
  });
  const bma = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'BareMetalAutoscaler',
    metadata: { name: autoscalerName, labels },
    spec: {
      inventory: { namespace: inventories[0]!.namespace, name: inventories[0]!.name },
      inventories: inventories.slice(1).map((i) => ({ namespace: i.namespace, name: i.name })),
      machineSelector: { matchLabels: labels },
      maxMachines: MACHINES,
      dryRun: true,
    },
  };
  // The API server knows of a new webhook configuration within a moment: an autoscaler naming
  // inventories that do not exist yet is refused by it.
  await waitFor('the API server to call the webhook', 20_000, async () =>
    /denied the request[^]*not found; apply the inventory first/.test((await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(bma) })).stderr),
  );

  const started = Date.now();
  for (const inv of inventories) {
    // Server-side apply: a client-side apply would copy the whole inventory into an annotation, limited to 256 KiB.
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: inv.name, namespace: inv.namespace, labels: { 'autoscaling.bamel.io/inventory': 'true', ...labels } }, data: { 'machines.yaml': stringify({ machines: inv.machines }) } };
    const size = Buffer.byteLength(JSON.stringify(cm));
    // The webhook parses 2,000 machines within its 5 s timeout, unless the machine is starved
    // of CPU (the test lanes share two cores): a timed-out call is applied again, as an
    // operator would, and counted.
    let r = await kubectl(['apply', '--server-side', '-f', '-'], { input: JSON.stringify(cm), timeoutMs: 60_000 });
    for (let retry = 1; retry <= 3 && r.code !== 0 && /failed calling webhook.*context deadline exceeded/.test(r.stderr); retry++) {
      t.comment(`inventory ${inv.name}: the webhook timed out (retry ${retry})`);
      r = await kubectl(['apply', '--server-side', '-f', '-'], { input: JSON.stringify(cm), timeoutMs: 60_000 });
    }
    t.equal(r.code, 0, `inventory ${inv.namespace}/${inv.name} (${perInventory} machines, ${(size / 1024).toFixed(0)} KiB) accepted: ${r.stderr}`);
  }
  const applied = await waitFor('the autoscaler accepted', 30_000, async () => {
    const r = await kubectl(['apply', '--server-side', '-f', '-'], { input: JSON.stringify(bma), timeoutMs: 30_000 });
    return r.code === 0 ? r : undefined;
  });
  t.notMatch(applied.stderr, /Warning/, 'accepted without warnings');
  t.comment(`inventories and autoscaler applied in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const readyNodes = await waitFor('the kwok Nodes Ready', 60_000, async () => {
    const nodes = (await core.listNode({ labelSelector: `${TEST_LABEL}=${id}` })).items;
    return nodes.filter(isNodeReady).length === READY ? nodes : undefined;
  });
  t.equal(readyNodes.length, READY);

  const reconciled = Date.now();
  const get = async (): Promise<BareMetalAutoscaler> => (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: autoscalerName })) as BareMetalAutoscaler;
  let last: BareMetalAutoscaler | undefined;
  const summary = (a: BareMetalAutoscaler | undefined): string => {
    const phases: Record<string, number> = {};
    for (const m of a?.status?.machines ?? []) phases[m.phase] = (phases[m.phase] ?? 0) + 1;
    return `total ${a?.status?.totalMachines ?? '-'}, phases ${JSON.stringify(phases)}, conditions ${JSON.stringify(a?.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message.slice(0, 200)}`))}`;
  };
  const done = await waitFor(
    'every machine reported, the Ready ones Ready',
    240_000,
    async () => {
      const a = (last = await get());
      const s = a.status;
      return s?.totalMachines === MACHINES && s.machines?.length === MACHINES && s.readyMachines === READY ? a : undefined;
    },
    2000,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last status: ${summary(last)}`);
  });
  t.comment(`status complete ${((Date.now() - reconciled) / 1000).toFixed(1)} s after the Nodes were Ready`);
  const status = done.status!;
  t.equal(status.totalMachines, MACHINES, 'totalMachines');
  t.equal(status.machines?.length, MACHINES, 'an entry per machine');
  const readyNames = new Set(readyNodes.map((n) => n.metadata?.name));
  t.same(
    status.machines?.filter((m) => m.phase === 'Ready').map((m) => m.name).sort(),
    [...readyNames].sort(),
    'the Ready machines are those with a Ready kwok Node',
  );
  const valid = status.conditions?.find((c) => c.type === 'InventoryValid');
  t.equal(valid?.status, 'True', valid?.message ?? 'InventoryValid');
  t.equal(valid?.message, `${MACHINES} machines in ${INVENTORIES} inventories`);
  t.equal(status.conditions?.find((c) => c.type === 'Ready')?.reason, 'DryRun');
  t.same(
    status.machines?.filter((m) => m.phase !== 'Ready' && m.phase !== 'Unknown' && m.phase !== 'Off').map((m) => `${m.name} ${m.phase}`),
    [],
    'the others are Unknown (their BMC does not answer) or Off',
  );
  t.equal(status.machines?.filter((m) => m.operation !== undefined).length, 0, 'dry run: no power operation');
  t.comment(summary(done));

  const statusBytes = Buffer.byteLength(JSON.stringify(status));
  const objectBytes = Buffer.byteLength(JSON.stringify(done));
  t.comment(`status JSON: ${statusBytes} bytes (${(statusBytes / 1024 / 1024).toFixed(2)} MiB, ${(statusBytes / MACHINES).toFixed(0)} bytes a machine); whole object: ${objectBytes} bytes`);
  t.ok(statusBytes < ETCD_REQUEST_LIMIT, `the status (${statusBytes} bytes) is under etcd's 1.5 MiB request limit`);
});
