import t from 'tap';
import { BmcProtocolError, BmcUnsupportedError } from '../../power/errors.js';
import { answeredFailureError, classifyIpmitoolFailure } from '../../power/ipmi/classify.js';
import { checkedWatts, parseDcmiPowerReading } from '../../power/reading.js';
import type { RedfishResponse } from '../../power/redfish/messages.js';
import { readRedfishPower } from '../../power/redfish/power-reading.js';

// The readings' parsers: each Redfish source, the order they are tried in, bad replies,
// and `ipmitool dcmi power reading` as ipmitool prints it.

const PLACE = { operation: 'reading the power draw', endpoint: 'redfish+https://10.0.0.11:443', redact: (s: string) => s };
const AT = new Date('2026-12-07T10:00:00Z');
const SYSTEM = { Id: '1', Links: { Chassis: [{ '@odata.id': '/redfish/v1/Chassis/1' }] } };
const CH = '/redfish/v1/Chassis/1';

/** A BMC as a map of path → body; other paths answer 404. Records the paths asked. */
function bmc(resources: Record<string, unknown>): { get: (path: string) => Promise<RedfishResponse>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    get: (path) => {
      asked.push(path);
      const body = resources[path];
      return Promise.resolve(
        body === undefined
          ? { method: 'GET', path, status: 404, headers: {}, body: { error: { code: 'Base.1.18.ResourceNotFound', message: `${path} not found` } }, text: '' }
          : { method: 'GET', path, status: 200, headers: {}, body, text: JSON.stringify(body) },
      );
    },
  };
}

function chassis(links: string[]): Record<string, unknown> {
  return { '@odata.id': CH, Id: '1', ...Object.fromEntries(links.map((l) => [l, { '@odata.id': `${CH}/${l}` }])) };
}

const SUBSYSTEM = {
  [`${CH}/PowerSubsystem`]: { PowerSupplies: { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies` } },
  [`${CH}/PowerSubsystem/PowerSupplies`]: { Members: [{ '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/0` }, { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/1` }, { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/2` }] },
  [`${CH}/PowerSubsystem/PowerSupplies/0`]: { Status: { State: 'Enabled' }, Metrics: { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/0/Metrics` } },
  [`${CH}/PowerSubsystem/PowerSupplies/1`]: { Status: { State: 'Enabled' }, Metrics: { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/1/Metrics` } },
  // An empty bay: not read further.
  [`${CH}/PowerSubsystem/PowerSupplies/2`]: { Status: { State: 'Absent' }, Metrics: { '@odata.id': `${CH}/PowerSubsystem/PowerSupplies/2/Metrics` } },
  [`${CH}/PowerSubsystem/PowerSupplies/0/Metrics`]: { InputPowerWatts: { Reading: 120.5 } },
  [`${CH}/PowerSubsystem/PowerSupplies/1/Metrics`]: { InputPowerWatts: { Reading: 99.5 } },
};
const ENVIRONMENT = { [`${CH}/EnvironmentMetrics`]: { PowerWatts: { Reading: 231 } } };
const POWER = { [`${CH}/Power`]: { PowerControl: [{ MemberId: '0', PowerConsumedWatts: 242 }] } };

t.test('PowerSubsystem first: the input watts of the supplies present, summed', async (t) => {
  const b = bmc({ [CH]: chassis(['PowerSubsystem', 'EnvironmentMetrics', 'Power']), ...SUBSYSTEM, ...ENVIRONMENT, ...POWER });
  t.same(await readRedfishPower(b.get, SYSTEM, PLACE, () => AT), { kind: 'reading', watts: 220, source: 'redfish-powersubsystem', observedAt: AT });
  t.notOk(b.asked.includes(`${CH}/PowerSubsystem/PowerSupplies/2/Metrics`), 'an absent supply is not read');
  t.notOk(b.asked.includes(`${CH}/EnvironmentMetrics`), 'no second source once one answered');
});

t.test('EnvironmentMetrics when the PowerSubsystem has no reading', async (t) => {
  const noMetrics = { ...SUBSYSTEM, [`${CH}/PowerSubsystem/PowerSupplies/0/Metrics`]: { InputPowerWatts: { Reading: null } }, [`${CH}/PowerSubsystem/PowerSupplies/1/Metrics`]: {} };
  const b = bmc({ [CH]: chassis(['PowerSubsystem', 'EnvironmentMetrics', 'Power']), ...noMetrics, ...ENVIRONMENT, ...POWER });
  t.same(await readRedfishPower(b.get, SYSTEM, PLACE, () => AT), { kind: 'reading', watts: 231, source: 'redfish-environmentmetrics', observedAt: AT });
});

t.test('the deprecated Power resource last, its first PowerConsumedWatts', async (t) => {
  const power = { [`${CH}/Power`]: { PowerControl: [{ MemberId: '0', PowerConsumedWatts: null }, { MemberId: '1', PowerConsumedWatts: 242 }, { MemberId: '2', PowerConsumedWatts: 5 }] } };
  const b = bmc({ [CH]: chassis(['EnvironmentMetrics', 'Power']), [`${CH}/EnvironmentMetrics`]: { TemperatureCelsius: { Reading: 30 } }, ...power });
  t.same(await readRedfishPower(b.get, SYSTEM, PLACE, () => AT), { kind: 'reading', watts: 242, source: 'redfish-power', observedAt: AT });
});

t.test('only linked resources are read; none with a reading is a NoPowerReading saying what was looked at', async (t) => {
  const b = bmc({ [CH]: chassis(['Power']), [`${CH}/Power`]: { PowerControl: [] } });
  const r = await readRedfishPower(b.get, SYSTEM, PLACE, () => AT);
  t.equal(r.kind, 'none');
  t.match(r.kind === 'none' ? r.reason : '', /no PowerSubsystem; no EnvironmentMetrics; no PowerControl entry of \/redfish\/v1\/Chassis\/1\/Power reports PowerConsumedWatts/);
  t.same(b.asked, [CH, `${CH}/Power`]);
  const bare = await readRedfishPower(bmc({}).get, { Id: '1' }, PLACE);
  t.match(bare, { kind: 'none', reason: /links no chassis/ });
  t.match(await readRedfishPower(bmc({}).get, SYSTEM, PLACE), { kind: 'none', reason: /does not exist \(404\)/ });
});

t.test('bad replies are errors naming the BMC and the field', async (t) => {
  const env = (reading: unknown) => bmc({ [CH]: chassis(['EnvironmentMetrics']), [`${CH}/EnvironmentMetrics`]: { PowerWatts: reading } });
  const cases: [unknown, RegExp][] = [
    [{ Reading: 'n/a' }, /PowerWatts\.Reading is "n\/a", not a number of watts/],
    [{ Reading: -3 }, /PowerWatts\.Reading is -3, a negative number of watts/],
    [{ DataSourceUri: '/x' }, /PowerWatts\.Reading is missing, not a number of watts/],
    [{ Reading: 5e6 }, /more than any one machine draws/],
    ['230', /PowerWatts is "230", not a number of watts/],
  ];
  for (const [reading, message] of cases) {
    const err = await readRedfishPower(env(reading).get, SYSTEM, PLACE).catch((e: unknown) => e);
    t.type(err, BmcProtocolError, JSON.stringify(reading));
    t.match((err as Error).message, message);
    t.match((err as Error).message, /^reading the power draw on redfish\+https:\/\/10\.0\.0\.11:443: GET \/redfish\/v1\/Chassis\/1\/EnvironmentMetrics: /);
  }
  const psu = bmc({ [CH]: chassis(['PowerSubsystem']), ...SUBSYSTEM, [`${CH}/PowerSubsystem/PowerSupplies/1/Metrics`]: { InputPowerWatts: { Reading: true } } });
  await t.rejects(readRedfishPower(psu.get, SYSTEM, PLACE), /PowerSupplies\/1\/Metrics: InputPowerWatts\.Reading is true/);
  const power = bmc({ [CH]: chassis(['Power']), [`${CH}/Power`]: { PowerControl: [{ PowerConsumedWatts: 'lots' }] } });
  await t.rejects(readRedfishPower(power.get, SYSTEM, PLACE), /PowerControl\[0\]\.PowerConsumedWatts is "lots"/);
  const refused = { get: (path: string) => Promise.resolve({ method: 'GET', path, status: 500, headers: {}, body: undefined, text: 'boom' }) };
  await t.rejects(readRedfishPower(refused.get, SYSTEM, PLACE), /reading the chassis: GET \/redfish\/v1\/Chassis\/1 answered 500: boom/);
});

t.test('checkedWatts', async (t) => {
  const where = { address: 'ipmi://h:623', operation: 'op', field: 'F' };
  t.equal(checkedWatts(0, where), 0);
  t.equal(checkedWatts(12.5, where), 12.5);
  t.throws(() => checkedWatts(Number.NaN, where), /F is NaN, not a number of watts/);
  t.throws(() => checkedWatts(null, where), /F is null/);
});

// ipmitool 1.8.19 (Debian bookworm), after the BMC answered Get Power Reading.
const DCMI_1819 = `
    Instantaneous power reading:                   214 Watts
    Minimum during sampling period:                  2 Watts
    Maximum during sampling period:                468 Watts
    Average power reading over sample period:      184 Watts
    IPMI timestamp:                           Sun May  5 13:06:44 2024
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

`;
// Later ipmitool releases align the colons instead.
const DCMI_NEWER = `Instantaneous power reading              : 97       Watts
Minimum during sampling period           : 2        Watts
Maximum during sampling period           : 468      Watts
Average power reading over sample period : 184      Watts
IPMI timestamp                           : 2024-05-05 13:06:44 UTC
Sampling period                          : 1000 Milliseconds
Power reading state is                   : activated
`;

t.test('dcmi power reading: both layouts, a deactivated meter, bad output', async (t) => {
  const where = { address: 'ipmi://10.0.0.12:623', operation: 'reading the power draw' };
  t.same(parseDcmiPowerReading(DCMI_1819, where, AT), { kind: 'reading', watts: 214, source: 'ipmi-dcmi', observedAt: AT });
  t.same(parseDcmiPowerReading(DCMI_NEWER, where, AT), { kind: 'reading', watts: 97, source: 'ipmi-dcmi', observedAt: AT });
  t.same(parseDcmiPowerReading(DCMI_1819.replace('activated', 'deactivated'), where, AT), { kind: 'none', reason: "the BMC's DCMI power meter is deactivated" });
  t.throws(() => parseDcmiPowerReading('\n', where, AT), /^reading the power draw on ipmi:\/\/10\.0\.0\.12:623: dcmi power reading: "Instantaneous power reading" is missing/);
  t.throws(() => parseDcmiPowerReading(DCMI_1819.replace('214 Watts', 'N/A Watts'), where, AT), /"Instantaneous power reading" is "N\/A Watts", not a number of watts/);
  t.throws(() => parseDcmiPowerReading(DCMI_1819.replace('214 Watts', '-7 Watts'), where, AT), /is -7, a negative number of watts/);
});

t.test("ipmi_sim's answer to the DCMI power reading is 'not supported', not a failure of the BMC", async (t) => {
  // What ipmitool 1.8.19 prints (stderr, exit code 1) against OpenIPMI 2.0.33's ipmi_sim.
  const stderr = '\n    DCMI request failed because: Invalid command (c1)\n';
  const failure = classifyIpmitoolFailure(stderr);
  t.same(failure, { kind: 'unsupported', detail: 'DCMI request failed because: Invalid command (c1)' });
  const err = answeredFailureError({ kind: 'unsupported', detail: failure.detail }, 'dcmi power reading', 'h', { address: 'ipmi://h:623', operation: 'reading the power draw', status: 1 }, (s) => s);
  t.type(err, BmcUnsupportedError);
  t.equal(err.code, 'BMC_REFUSED', 'the breaker does not count it');
  t.match(err.message, /does not support "dcmi power reading"/);
});
