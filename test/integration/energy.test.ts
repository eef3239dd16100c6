import t from 'tap';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { QUIRKS_LABEL } from '../../sim/datacenter.js';
import { waitFor } from './helpers/cluster.js';
import { managerMetrics } from './helpers/manager.js';
import { startScene, waitForPhase } from './helpers/scene.js';

// Power readings end to end: `bamel sim` serves each Redfish power source (and a BMC with
// none) from its Redfish fake, and IPMI through the real ipmi_sim (which has no DCMI);
// the manager reads them on its cadence into status.machines[].power, falls back to the
// inventory's watts with source inventory, keeps the energy account across a leader
// change, and exports the metrics.

t.test('readings from each source, the inventory where there is none, the account across a leader change', async (t) => {
  const power = { maxWatts: 300, idleWatts: 150 };
  const scene = await startScene(t, 'energy', [
    { name: 'sub', cpu: 8, memory: '32Gi', ...power },
    { name: 'env', cpu: 8, memory: '32Gi', ...power, labels: { [QUIRKS_LABEL]: 'power-environmentmetrics-only' } },
    { name: 'old', cpu: 8, memory: '32Gi', ...power, labels: { [QUIRKS_LABEL]: 'power-deprecated-only' } },
    { name: 'none', cpu: 8, memory: '32Gi', ...power, labels: { [QUIRKS_LABEL]: 'no-power-reading' } },
    { name: 'ipmi', cpu: 8, memory: '32Gi', ...power, protocol: 'ipmi' },
    // The dearest machine stays off: its idle draw is what the account saves.
    { name: 'spare', cpu: 8, memory: '32Gi', maxWatts: 900, idleWatts: 400 },
  ]);
  const bma = 'energy-' + scene.ns.slice(-12);
  await scene.createAutoscaler(bma, { minMachines: 5, maxMachines: 6, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 5 }, scaleDown: { enabled: false } });
  const flags = ['--power-reading-interval', '2'];
  let manager = scene.startManager(flags);
  const n = scene.names as Record<'sub' | 'env' | 'old' | 'none' | 'ipmi' | 'spare', string>;
  for (const m of [n.sub, n.env, n.old, n.none, n.ipmi]) await waitForPhase(scene, bma, m, 'Ready', 90_000);
  await scene.sim.setLoad(n.env, 0.5);

  const wanted: Record<string, { source: string; watts: number }> = {
    [n.sub]: { source: 'redfish-powersubsystem', watts: 150 },
    [n.env]: { source: 'redfish-environmentmetrics', watts: 225 },
    [n.old]: { source: 'redfish-power', watts: 150 },
    [n.none]: { source: 'inventory', watts: 150 },
    [n.ipmi]: { source: 'inventory', watts: 150 },
    [n.spare]: { source: 'redfish-powersubsystem', watts: 0 },
  };
  const seen = (a: BareMetalAutoscaler) => Object.fromEntries((a.status?.machines ?? []).map((m) => [m.name, { source: m.power?.source, watts: m.power?.watts }]));
  let last: unknown;
  const status = await waitFor('each machine read from its source', 60_000, async () => {
    const a = await scene.autoscaler(bma);
    last = seen(a);
    return JSON.stringify(seen(a)) === JSON.stringify(Object.fromEntries(Object.keys(seen(a)).map((k) => [k, wanted[k]]))) ? a : false;
  }).catch((err: unknown) => {
    throw new Error(`${String(err)}; last: ${JSON.stringify(last)}`);
  });
  t.pass(`status.machines[].power: ${JSON.stringify(seen(status))}`);
  const machine = (name: string) => status.status?.machines?.find((m) => m.name === name);
  t.equal(machine(n.spare)?.phase, 'Off');
  t.equal(machine(n.none)?.power?.observedAt, machine(n.none)?.since, 'an inventory figure is as old as the phase');

  // The account: machines booting cost, the spare saves its 400 W idle draw while off.
  const first = await waitFor('energy saved', 120_000, async () => {
    const e = (await scene.autoscaler(bma)).status?.energy;
    return e !== undefined && e.savedKWh > 0 && e.consumedKWh > 0 ? e : false;
  });
  t.equal(first.method, 'mixed', 'some machines measured, some from the inventory');
  t.pass(`status.energy: ${JSON.stringify(first)}`);

  // The IPMI machine's first readings may be skipped while its power-on holds the BMC.
  const noDcmi = await manager.waitForLog((l) => String(l.msg).includes('offers no DCMI power reading'), 60_000);
  t.match(String(noDcmi.msg), /Invalid command \(c1\)/, 'the manager says why the IPMI machine has no reading');
  const metrics = await managerMetrics(manager, 'bamel_power_readings_total{driver="ipmi",result="none"}');
  t.match(metrics, new RegExp(`bamel_machine_power_watts\\{autoscaler="${bma}",machine="${n.env}"\\} 225`));
  t.match(metrics, new RegExp(`bamel_machine_power_watts\\{autoscaler="${bma}",machine="${n.ipmi}"\\} 150`));
  t.match(metrics, new RegExp(`bamel_energy_consumed_joules_total\\{autoscaler="${bma}"\\} [1-9]`));
  t.match(metrics, new RegExp(`bamel_machine_power_cycles_total\\{autoscaler="${bma}",machine="${n.sub}"\\} 1`));
  t.match(metrics, /bamel_power_readings_total\{driver="ipmi",result="none"\} [1-9]/, "ipmi_sim's BMC offers no DCMI reading");
  t.match(metrics, /bamel_power_readings_total\{driver="redfish",result="none"\} [1-9]/);
  t.equal(manager.logs.filter((l) => String(l.msg).includes('offers no DCMI power reading')).length, 1, 'and says it once');

  // A new leader continues the account from status.
  await manager.stop();
  manager = scene.startManager(flags);
  await scene.sim.setLoad(n.env, 1);
  const after = await waitFor('the account continued by the new leader', 60_000, async () => {
    const a = await scene.autoscaler(bma);
    const e = a.status?.energy;
    const env = a.status?.machines?.find((m) => m.name === n.env)?.power;
    return e && env?.watts === 300 && Date.parse(e.updatedAt) > Date.parse(first.updatedAt) ? e : false;
  });
  t.equal(after.since, first.since, 'since is kept');
  t.ok(after.consumedKWh > first.consumedKWh, `consumed grew: ${first.consumedKWh} -> ${after.consumedKWh} kWh`);
  t.ok(after.savedKWh >= first.savedKWh, `saved kept: ${first.savedKWh} -> ${after.savedKWh} kWh`);
});
