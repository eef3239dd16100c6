import t from 'tap';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcAuthError, BmcProtocolError } from '../../power/errors.js';
import { RedfishDriver } from '../../power/redfish.js';
import { installSushy, startSushy, type SushyEmulator } from '../helpers/sushy.js';

// The RedfishDriver against the real sushy-tools emulator (fake driver): Basic auth, no
// SessionService, and power changes that land 1 to 11 s after the Reset.

const USER = 'admin';
const PASSWORD = 'sushy-Pa55word';
const OPTIONS = {
  pollIntervalMs: 500,
  maxPollIntervalMs: 1_000,
  gracefulTimeoutMs: 30_000,
  timeouts: { connectMs: 2_000, requestMs: 10_000, operationMs: 40_000 },
};

let sushy: SushyEmulator;
const drivers: RedfishDriver[] = [];

function driverFor(systemPath: string | undefined, password = PASSWORD): RedfishDriver {
  const driver = new RedfishDriver({
    address: parseBmcAddress(`${sushy.url.replace(/^http/, 'redfish+http')}${systemPath ?? ''}`),
    credentials: new BmcCredentials(USER, password),
    ...OPTIONS,
  });
  drivers.push(driver);
  return driver;
}

t.before(async () => {
  await installSushy();
  sushy = await startSushy({
    systems: [
      { name: 'rack-s-01', power: 'Off' },
      { name: 'rack-s-02', power: 'On' },
    ],
    username: USER,
    password: PASSWORD,
  });
});

t.teardown(async () => {
  for (const d of drivers) await d.close();
  await sushy?.stop();
});

function system(i: number): string {
  const s = sushy.systems[i];
  if (s === undefined) throw new Error(`no system ${i}`);
  return s.path;
}

t.test('status', async (t) => {
  t.equal(await driverFor(system(0)).status(), 'off');
  t.equal(await driverFor(system(1)).status(), 'on');
});

t.test('power on and power off (concurrently, on two systems)', async (t) => {
  const first = driverFor(system(0));
  const second = driverFor(system(1));
  const [on, off] = await Promise.all([first.powerOn(), second.powerOff()]);
  t.match(on, { state: 'on', alreadyInState: false, method: 'On' });
  t.match(off, { state: 'off', alreadyInState: false, method: 'GracefulShutdown' });
  t.equal(await first.status(), 'on');
  t.equal(await second.status(), 'off');
});

t.test('already on and already off: nothing sent', async (t) => {
  t.match(await driverFor(system(0)).powerOn(), { state: 'on', alreadyInState: true, method: 'none' });
  t.match(await driverFor(system(1)).powerOff({ force: true }), { state: 'off', alreadyInState: true, method: 'none' });
});

t.test('a wrong password: BmcAuthError', async (t) => {
  const err = await driverFor(system(0), 'not-the-password').status().catch((e: unknown) => e);
  t.type(err, BmcAuthError);
  t.notMatch(String(err), 'not-the-password');
});

t.test('no system path and two systems: the error names them', async (t) => {
  const err = await driverFor(undefined).status().catch((e: unknown) => e);
  t.type(err, BmcProtocolError);
  t.match(String(err), sushy.systems[0]?.uuid ?? 'missing');
  t.match(String(err), sushy.systems[1]?.uuid ?? 'missing');
});

t.test('sushy-tools offers no power reading: its chassis links Thermal only', async (t) => {
  // sushy-tools 2.2.0's Chassis template links Thermal, and neither PowerSubsystem,
  // EnvironmentMetrics nor Power: to the driver it is a BMC without readings.
  const r = await driverFor(system(0)).reading();
  t.equal(r.kind, 'none');
  t.match(r.kind === 'none' ? r.reason : '', /offers no power reading \(no PowerSubsystem; no EnvironmentMetrics; no Power\)/);
});
