/**
 * What a Redfish machine draws. The ComputerSystem links its chassis (`Links.Chassis`);
 * the chassis links the resources that may hold a reading, read in this order:
 * 1. `PowerSubsystem` → `PowerSupplies` → each supply's `Metrics` → `InputPowerWatts.Reading`
 *    (the sum over the supplies that report one: the draw at the wall);
 * 2. `EnvironmentMetrics` → `PowerWatts.Reading` (the chassis's own power sensor);
 * 3. the deprecated `Power` → `PowerControl[]` → the first `PowerConsumedWatts`.
 * Only linked resources are read (no guessed URLs). A source that is not there, or whose
 * sensor reports null (not available now), passes to the next; a number that cannot be
 * right (a string, negative) is an error naming the BMC and the field. No source with a
 * reading: a NoPowerReading that says what was looked at.
 */
import { BmcProtocolError } from '../errors.js';
import { checkedWatts, type PowerReadingResult, type ReadingSource } from '../reading.js';
import { isRecord, linkField, statusError, stringField, type ErrorPlace, type RedfishResponse } from './messages.js';

/** GETs one path on the BMC (the caller authenticates). */
export type RedfishGet = (path: string) => Promise<RedfishResponse>;

type Found = { watts: number } | { skipped: string };

/** Reads the draw of the system whose resource is `system` (as GET answered it). */
export async function readRedfishPower(get: RedfishGet, system: unknown, place: ErrorPlace, now: () => Date = () => new Date()): Promise<PowerReadingResult> {
  const chassisLinks: unknown = isRecord(system) && isRecord(system.Links) ? system.Links.Chassis : undefined;
  const chassisPath = Array.isArray(chassisLinks) ? chassisLinks.map((c: unknown) => stringField(c, '@odata.id')).find((p) => p !== undefined) : undefined;
  if (chassisPath === undefined) return { kind: 'none', reason: 'the system links no chassis (Links.Chassis), so the BMC offers no power reading for it' };
  const chassis = await getJson(get, chassisPath, place, 'reading the chassis');
  if (chassis === undefined) return { kind: 'none', reason: `the chassis ${chassisPath} the system links does not exist (404)` };
  const sources: [ReadingSource, string, (path: string) => Promise<Found>][] = [
    ['redfish-powersubsystem', 'PowerSubsystem', (p) => powerSubsystem(get, p, place)],
    ['redfish-environmentmetrics', 'EnvironmentMetrics', (p) => environmentMetrics(get, p, place)],
    ['redfish-power', 'Power', (p) => deprecatedPower(get, p, place)],
  ];
  const skipped: string[] = [];
  for (const [source, link, read] of sources) {
    const path = linkField(chassis, link);
    if (path === undefined) {
      skipped.push(`no ${link}`);
      continue;
    }
    const found = await read(path);
    if ('watts' in found) return { kind: 'reading', watts: found.watts, source, observedAt: now() };
    skipped.push(found.skipped);
  }
  return { kind: 'none', reason: `the chassis ${chassisPath} offers no power reading (${skipped.join('; ')})` };
}

async function powerSubsystem(get: RedfishGet, path: string, place: ErrorPlace): Promise<Found> {
  const subsystem = await getJson(get, path, place, 'reading the PowerSubsystem');
  const suppliesPath = subsystem === undefined ? undefined : linkField(subsystem, 'PowerSupplies');
  if (suppliesPath === undefined) return { skipped: `${path} lists no PowerSupplies` };
  const collection = await getJson(get, suppliesPath, place, 'listing the power supplies');
  const members: unknown = isRecord(collection) ? collection.Members : undefined;
  if (!Array.isArray(members)) return { skipped: `${suppliesPath} lists no Members` };
  let total = 0;
  let reporting = 0;
  for (const member of members) {
    const supplyPath = stringField(member, '@odata.id');
    if (supplyPath === undefined) continue;
    const supply = await getJson(get, supplyPath, place, 'reading a power supply');
    if (supply === undefined || (isRecord(supply.Status) && supply.Status.State === 'Absent')) continue;
    const metricsPath = linkField(supply, 'Metrics');
    if (metricsPath === undefined) continue;
    const metrics = await getJson(get, metricsPath, place, 'reading the power supply metrics');
    const watts = metrics === undefined ? null : sensorReading(metrics, 'InputPowerWatts', `GET ${metricsPath}: InputPowerWatts`, place);
    if (watts === null) continue;
    total += watts;
    reporting++;
  }
  return reporting === 0 ? { skipped: `no power supply under ${suppliesPath} reports InputPowerWatts` } : { watts: total };
}

async function environmentMetrics(get: RedfishGet, path: string, place: ErrorPlace): Promise<Found> {
  const metrics = await getJson(get, path, place, 'reading the EnvironmentMetrics');
  const watts = metrics === undefined ? null : sensorReading(metrics, 'PowerWatts', `GET ${path}: PowerWatts`, place);
  return watts === null ? { skipped: `${path} reports no PowerWatts` } : { watts };
}

async function deprecatedPower(get: RedfishGet, path: string, place: ErrorPlace): Promise<Found> {
  const power = await getJson(get, path, place, 'reading the Power resource');
  const controls: unknown = power === undefined ? undefined : power.PowerControl;
  if (!Array.isArray(controls)) return { skipped: `${path} has no PowerControl` };
  for (const [i, control] of controls.entries()) {
    const value = isRecord(control) ? control.PowerConsumedWatts : undefined;
    if (value === undefined || value === null) continue;
    return { watts: checkedWatts(value, { address: place.endpoint, operation: place.operation, field: `GET ${path}: PowerControl[${i}].PowerConsumedWatts` }) };
  }
  return { skipped: `no PowerControl entry of ${path} reports PowerConsumedWatts` };
}

/**
 * A SensorExcerpt's Reading: null when the property is absent or the sensor reports null
 * (not available now); a checked number; an error when the excerpt has no Reading at all
 * or it is not a number of watts.
 */
function sensorReading(resource: Record<string, unknown>, key: string, field: string, place: ErrorPlace): number | null {
  const excerpt = resource[key];
  if (excerpt === undefined || excerpt === null) return null;
  const where = { address: place.endpoint, operation: place.operation, field: `${field}.Reading` };
  if (!isRecord(excerpt)) return checkedWatts(excerpt, { ...where, field });
  if (excerpt.Reading === null) return null;
  return checkedWatts(excerpt.Reading, where);
}

/** The JSON object at `path`; undefined on 404; other statuses and non-objects are errors. */
async function getJson(get: RedfishGet, path: string, place: ErrorPlace, what: string): Promise<Record<string, unknown> | undefined> {
  const res = await get(path);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw statusError(place, what, res);
  if (!isRecord(res.body)) throw new BmcProtocolError(`GET ${path} did not answer a JSON object (${what})`, { address: place.endpoint, operation: place.operation });
  return res.body;
}
