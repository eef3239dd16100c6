/**
 * The chassis of each fake system, /redfish/v1/Chassis/{id} (the system's id), and its
 * power resources, shaped like DMTF's schemas: PowerSubsystem (two power supplies sharing
 * the draw, each with PowerSupplyMetrics.InputPowerWatts), EnvironmentMetrics (PowerWatts)
 * and the deprecated Power (PowerControl[0].PowerConsumedWatts). Which of them the chassis
 * links follows the system's quirk profiles (see QuirkProfile).
 */
import type { Reply } from './actions.js';
import { collection, ROOT, systemPath, type Json } from './resources.js';
import type { FakeSystem } from './system.js';

export const CHASSIS = `${ROOT}/Chassis`;
const SUPPLIES = ['PSU1', 'PSU2'] as const;

export function chassisPath(system: FakeSystem): string {
  return `${CHASSIS}/${encodeURIComponent(system.id)}`;
}

type PowerResource = 'PowerSubsystem' | 'EnvironmentMetrics' | 'Power';

/** The power resources the system's chassis links. */
export function powerResources(system: FakeSystem): PowerResource[] {
  if (system.has('no-power-reading')) return [];
  if (system.has('power-environmentmetrics-only') || system.has('bad-power-reading')) return ['EnvironmentMetrics'];
  if (system.has('power-deprecated-only')) return ['Power'];
  return ['PowerSubsystem', 'EnvironmentMetrics', 'Power'];
}

export function chassisCollection(systems: readonly FakeSystem[]): Json {
  return collection(CHASSIS, 'ChassisCollection', 'Chassis Collection', systems.map(chassisPath));
}

/** GET answers under /redfish/v1/Chassis/{id}; undefined for a path the chassis does not have. */
export function chassisReply(system: FakeSystem, path: string): Reply | undefined {
  const base = chassisPath(system);
  const linked = powerResources(system);
  const watts = Math.round(system.watts * 10) / 10;
  const json = (body: Json): Reply => ({ status: 200, body });
  if (path === base) {
    return json({
      '@odata.id': base,
      '@odata.type': '#Chassis.v1_25_0.Chassis',
      Id: system.id,
      Name: `${system.machine} chassis`,
      ChassisType: 'RackMount',
      PowerState: system.power === 'on' ? 'On' : 'Off',
      Links: { ComputerSystems: [{ '@odata.id': systemPath(system) }] },
      ...Object.fromEntries(linked.map((r) => [r, { '@odata.id': `${base}/${r}` }])),
    });
  }
  const sub = path.slice(base.length + 1);
  if (sub === 'EnvironmentMetrics' && linked.includes('EnvironmentMetrics')) {
    const reading = system.has('bad-power-reading') ? 'n/a' : watts;
    return json({ '@odata.id': path, '@odata.type': '#EnvironmentMetrics.v1_3_0.EnvironmentMetrics', Id: 'EnvironmentMetrics', Name: 'Chassis environment metrics', PowerWatts: { DataSourceUri: `${base}/Sensors/TotalPower`, Reading: reading } });
  }
  if (sub === 'Power' && linked.includes('Power')) {
    return json({
      '@odata.id': path,
      '@odata.type': '#Power.v1_7_1.Power',
      Id: 'Power',
      Name: 'Power',
      PowerControl: [{ '@odata.id': `${path}#/PowerControl/0`, MemberId: '0', Name: 'System Power Control', PowerConsumedWatts: watts, PhysicalContext: 'Intake' }],
    });
  }
  if (!linked.includes('PowerSubsystem')) return undefined;
  const subsystem = `${base}/PowerSubsystem`;
  const supplies = `${subsystem}/PowerSupplies`;
  if (path === subsystem) {
    return json({ '@odata.id': subsystem, '@odata.type': '#PowerSubsystem.v1_1_1.PowerSubsystem', Id: 'PowerSubsystem', Name: 'Power Subsystem', PowerSupplies: { '@odata.id': supplies } });
  }
  if (path === supplies) return json(collection(supplies, 'PowerSupplyCollection', 'Power Supply Collection', SUPPLIES.map((id) => `${supplies}/${id}`)));
  const supply = SUPPLIES.find((id) => path === `${supplies}/${id}` || path === `${supplies}/${id}/Metrics`);
  if (supply === undefined) return undefined;
  if (path.endsWith('/Metrics')) {
    // The two supplies share the load: their input sums to the machine's draw.
    return json({ '@odata.id': path, '@odata.type': '#PowerSupplyMetrics.v1_1_0.PowerSupplyMetrics', Id: 'Metrics', Name: `${supply} metrics`, InputPowerWatts: { Reading: watts / 2 } });
  }
  return json({ '@odata.id': path, '@odata.type': '#PowerSupply.v1_6_0.PowerSupply', Id: supply, Name: supply, Status: { State: 'Enabled', Health: 'OK' }, Metrics: { '@odata.id': `${path}/Metrics` } });
}
