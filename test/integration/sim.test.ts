import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcCredentials } from '../../power/credentials.js';
import { createPowerDriver } from '../../power/factory.js';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.js';
import { isNodeReady, localCluster, testNamespace, uniqueName, waitFor } from './helpers/cluster.js';
import { startSim } from './helpers/sim.js';

// A simulated machine powered on through the real drivers boots, registers its Node with
// the inventory's labels, taints and capacity, and kwok keeps it Ready; powered off, it
// stops and its Node goes away (sim/nodes.ts says why).

t.test('simulated machines boot into Nodes and stop when powered off', async (t) => {
  const { core } = await localCluster();
  const ns = await testNamespace(t, 'sim');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password } } });
  const ipmiName = uniqueName('sim-ipmi');
  const redfishName = uniqueName('sim-rf');
  const ipmiPort = await freeUdpPort();
  const rfPort = await freeTcpPort();
  const inventory = `
apiVersion: v1
kind: ConfigMap
metadata: {name: machines, namespace: ${ns}, labels: {autoscaling.bamel.io/inventory: "true"}}
data:
  machines.yaml: |
    machines:
      - name: ${ipmiName}
        bmc: {address: "ipmi://127.0.0.1:${ipmiPort}", credentialsSecret: bmc}
        labels: {rack: a, bamel.io/test: "${ns}"}
        capacity: {cpu: "16", memory: 64Gi, pods: "110"}
        bootSeconds: 2
      - name: ${redfishName}
        bmc: {address: "redfish+http://127.0.0.1:${rfPort}/redfish/v1/Systems/${redfishName}", credentialsSecret: bmc, allowInsecureCredentials: true}
        labels: {rack: b, bamel.io/test: "${ns}"}
        taints: [{key: gpu, value: "true", effect: NoSchedule}]
        capacity: {cpu: "32", memory: 128Gi, pods: "110", nvidia.com/gpu: "2"}
        bootSeconds: 2
`;
  const sim = await startSim(inventory, mkdtempSync(join(tmpdir(), 'bamel-simtest-')), ['--boot-scale', '1', '--boot-jitter', '0']);
  t.teardown(async () => {
    await sim.stop();
    for (const n of [ipmiName, redfishName]) await core.deleteNode({ name: n }).catch(() => undefined);
  });
  const creds = new BmcCredentials('admin', password);
  const drivers = {
    [ipmiName]: createPowerDriver({ address: `ipmi://127.0.0.1:${ipmiPort}`, credentials: creds }, { gracefulTimeoutMs: 20_000 }),
    [redfishName]: createPowerDriver(
      { address: `redfish+http://127.0.0.1:${rfPort}/redfish/v1/Systems/${redfishName}`, credentials: creds },
      { gracefulTimeoutMs: 20_000 },
    ),
  };
  t.teardown(async () => {
    for (const d of Object.values(drivers)) await d.close();
  });

  for (const [name, driver] of Object.entries(drivers)) {
    t.equal(await driver.status(), 'off', `${name} starts off`);
    const r = await driver.powerOn();
    t.equal(r.state, 'on', `${name} powered on through the ${driver.kind} driver`);
  }
  for (const name of [ipmiName, redfishName]) {
    const node = await waitFor(`Node ${name} Ready`, 60_000, async () => {
      const n = await core.readNode({ name });
      return isNodeReady(n) ? n : false;
    });
    t.equal(node.metadata?.labels?.['bamel.io/test'], ns, `${name}: inventory labels`);
    t.equal(node.metadata?.labels?.['kubernetes.io/hostname'], name, `${name}: hostname label`);
    if (name === redfishName) {
      // The node lifecycle controller may still hold its own not-ready taint for a moment.
      const own = (node.spec?.taints ?? []).filter((x) => !x.key.startsWith('node.kubernetes.io/')).map((x) => ({ key: x.key, value: x.value, effect: x.effect }));
      t.same(own, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }], 'inventory taints');
      t.equal(node.status?.allocatable?.['nvidia.com/gpu'], '2', 'extended resources in capacity');
      t.equal(node.status?.capacity?.cpu, '32', 'capacity');
    }
  }

  for (const [name, driver] of Object.entries(drivers)) {
    const r = await driver.powerOff();
    t.equal(r.state, 'off', `${name} powered off`);
  }
  for (const name of [ipmiName, redfishName]) {
    await sim.waitForEvent((e) => e.event === 'halted' && e.machine === name, 30_000);
    await waitFor(`Node ${name} gone`, 30_000, async () => {
      try {
        await core.readNode({ name });
        return false;
      } catch {
        return true;
      }
    });
    t.pass(`${name}'s Node is gone after power-off`);
  }

  for (const name of [ipmiName, redfishName]) {
    const power = sim.powerEvents(name);
    t.ok(power.some((e) => e.action === 'on' && e.result === 'ok'), `${name}: the power-on was logged as a JSON line`);
    t.ok(power.every((e) => typeof e.time === 'string' && typeof e.result === 'string'), `${name}: every power line has time and result`);
  }
});
