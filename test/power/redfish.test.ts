import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { RedfishFakeServer } from '../../sim/redfish-fake.js';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcAuthError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, BmcUnreachableError } from '../../power/errors.js';
import { RedfishDriver, type RedfishDriverOptions } from '../../power/redfish.js';
import { FAST, freePort, PASSWORD, rejection, SESSIONS, seenErrors, seenErrorTexts, setup } from './fixtures/redfish.js';

// The RedfishDriver against the project's Redfish fake: operations, sessions, errors, TLS.
// The vendor quirk profiles are in redfish-quirks.test.ts.

t.test('status, on and off on a generic BMC', async (t) => {
  const { driver, bmc, events, logins } = await setup(t, { gracefulShutdownMs: 100 });
  t.equal(await driver.status(), 'off');
  const on = await driver.powerOn();
  t.match(on, { state: 'on', alreadyInState: false, method: 'On' });
  t.equal(bmc.power, 'on');
  t.equal(await driver.status(), 'on');
  const off = await driver.powerOff();
  t.match(off, { state: 'off', alreadyInState: false, method: 'GracefulShutdown' });
  t.ok(off.durationMs >= 100, 'waited for the OS to shut down');
  t.equal(bmc.power, 'off');
  t.same(
    events.map((e) => [e.action, e.result]),
    [
      ['on', 'ok'],
      ['graceful-off', 'ok'],
    ],
  );
  t.equal(driver.kind, 'redfish');
  t.match(driver.endpoint, /^redfish\+http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(logins().length, 1, 'one session for all of it');
});

t.test('already on or off: success without a Reset', async (t) => {
  const { driver, resets, events, bmc } = await setup(t, { initialPower: 'on' });
  t.match(await driver.powerOn(), { state: 'on', alreadyInState: true, method: 'none' });
  t.equal(resets().length, 0);
  await bmc.setPowerDirect('off');
  t.match(await driver.powerOff(), { state: 'off', alreadyInState: true });
  t.match(await driver.powerOff({ force: true }), { state: 'off', alreadyInState: true });
  t.equal(resets().length, 0);
  t.equal(events.length, 0);
});

t.test('graceful shutdown ignored: ForceOff after the graceful timeout', async (t) => {
  const { driver, events, bmc } = await setup(t, { initialPower: 'on', gracefulShutdownMs: Infinity });
  const started = Date.now();
  const result = await driver.powerOff({ gracefulTimeoutMs: 300 });
  t.ok(Date.now() - started >= 300, 'waited the graceful timeout');
  t.match(result, { state: 'off', alreadyInState: false, method: 'GracefulShutdown, ForceOff' });
  t.same(
    events.map((e) => e.action),
    ['graceful-off', 'force-off'],
  );
  t.equal(bmc.power, 'off');
});

t.test('the driver-wide graceful timeout applies too', async (t) => {
  const { driver, events } = await setup(t, { initialPower: 'on', gracefulShutdownMs: Infinity }, { gracefulTimeoutMs: 150 });
  t.match(await driver.powerOff(), { method: 'GracefulShutdown, ForceOff' });
  t.same(
    events.map((e) => e.action),
    ['graceful-off', 'force-off'],
  );
});

t.test('force skips the graceful shutdown', async (t) => {
  const { driver, events } = await setup(t, { initialPower: 'on', gracefulShutdownMs: Infinity });
  t.match(await driver.powerOff({ force: true }), { state: 'off', method: 'ForceOff' });
  t.same(
    events.map((e) => e.action),
    ['force-off'],
  );
});

t.test('one session for many operations, deleted on close', async (t) => {
  const { driver, requests, logins, server } = await setup(t);
  for (let i = 0; i < 3; i++) {
    await driver.powerOn();
    await driver.status();
    await driver.powerOff({ force: true });
  }
  t.equal(logins().length, 1);
  t.equal(server.sessionCount, 1);
  await driver.close();
  const deletes = requests.filter((r) => r.method === 'DELETE' && r.path.startsWith(`${SESSIONS}/`));
  t.equal(deletes.length, 1);
  t.equal(deletes[0]?.status, 204);
  t.equal(server.sessionCount, 0);
  await t.rejects(driver.status(), /closed/);
  await driver.close();
});

t.test('an expired session: one new login, then on', async (t) => {
  const { driver, logins, server } = await setup(t);
  await driver.status();
  server.expireSessions();
  t.equal(await driver.status(), 'off');
  t.equal(logins().length, 2);
});

t.test('wrong password: BmcAuthError, no retry storm', async (t) => {
  const { driver, bmc, logins } = await setup(t);
  await bmc.setFaults({ wrongPassword: true });
  const err = await rejection(driver.powerOn());
  t.type(err, BmcAuthError);
  t.match(err.message, /^power on on redfish\+http:\/\/127\.0\.0\.1:\d+: logging in: POST \/redfish\/v1\/SessionService\/Sessions answered 401/);
  t.equal((err as BmcAuthError).transient, false);
  t.ok(logins().length <= 2, `${logins().length} login attempts`);
});

t.test('password changed under an open session: one re-login, then BmcAuthError', async (t) => {
  const { driver, bmc, logins } = await setup(t);
  await driver.status();
  await bmc.setFaults({ wrongPassword: true });
  const err = await rejection(driver.status());
  t.type(err, BmcAuthError);
  t.equal(logins().length, 2, 'the first login and one more');
});

t.test('wrong password with Basic auth (no SessionService): one request, BmcAuthError', async (t) => {
  const { driver, bmc, requests } = await setup(t, { profile: 'no-session-service' });
  await bmc.setFaults({ wrongPassword: true });
  const err = await rejection(driver.status());
  t.type(err, BmcAuthError);
  t.equal(requests.filter((r) => r.status === 401).length, 1);
});

t.test('a closed port: BmcUnreachableError', async (t) => {
  const port = await freePort();
  const driver = new RedfishDriver({ address: parseBmcAddress(`redfish+http://127.0.0.1:${port}`), credentials: new BmcCredentials('admin', PASSWORD), ...FAST });
  t.teardown(() => driver.close());
  const err = await rejection(driver.powerOn());
  t.type(err, BmcUnreachableError);
  t.match(err.message, /^power on on redfish\+http:\/\/127\.0\.0\.1:\d+: GET \/redfish\/v1: connection refused \(ECONNREFUSED\)/);
  t.equal((err as BmcUnreachableError).transient, true);
});

t.test('the unreachable fault and a server that went away: BmcUnreachableError', async (t) => {
  const { driver, bmc, server } = await setup(t);
  await bmc.setFaults({ unreachable: true });
  t.type(await rejection(driver.status()), BmcUnreachableError);
  await bmc.setFaults({});
  t.equal(await driver.status(), 'off');
  await server.setUnreachable(true);
  t.type(await rejection(driver.status()), BmcUnreachableError);
  await server.setUnreachable(false);
  t.equal(await driver.status(), 'off', 'back again');
});

t.test('a BMC that never answers: BmcTimeoutError within the request timeout', async (t) => {
  const { driver, bmc } = await setup(t, {}, { timeouts: { connectMs: 500, requestMs: 300, operationMs: 10_000 } });
  await bmc.setFaults({ hang: true });
  const started = Date.now();
  const err = await rejection(driver.status());
  const elapsed = Date.now() - started;
  t.type(err, BmcTimeoutError);
  t.match(err.message, /no answer within 300 ms/);
  t.ok(elapsed >= 250 && elapsed < 3_000, `${elapsed} ms`);
});

t.test('an operation longer than operationMs: BmcTimeoutError', async (t) => {
  const { driver } = await setup(t, { poweringOnMs: 60_000 }, { timeouts: { connectMs: 500, requestMs: 1_000, operationMs: 400 } });
  const started = Date.now();
  const err = await rejection(driver.powerOn());
  t.type(err, BmcTimeoutError);
  t.match(err.message, /^power on on .*did not finish within 400 ms/);
  t.ok(Date.now() - started < 3_000);
});

t.test('the caller aborts: AbortError, and the driver goes on working', async (t) => {
  const { driver, bmc } = await setup(t, { poweringOnMs: 60_000 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const err = await rejection(driver.powerOn({ signal: controller.signal }));
  t.equal(err.name, 'AbortError');
  await bmc.setPowerDirect('off');
  t.equal(await driver.status(), 'off');
});

t.test('close aborts the operation in flight', async (t) => {
  const { driver } = await setup(t, { poweringOnMs: 60_000 });
  const pending = rejection(driver.powerOn());
  await new Promise((r) => setTimeout(r, 100));
  await driver.close();
  t.equal((await pending).name, 'AbortError');
});

t.test('one operation at a time', async (t) => {
  const { driver } = await setup(t, { poweringOnMs: 200 });
  const order: string[] = [];
  const on = driver.powerOn().then(() => order.push('on'));
  const status = driver.status().then((s) => order.push(`status ${s}`));
  await Promise.all([on, status]);
  t.same(order, ['on', 'status on'], 'the status waited for the power-on');
});

t.test('powerOnFails: BmcRefusedError with the BMC message', async (t) => {
  const { driver, bmc, events } = await setup(t);
  await bmc.setFaults({ powerOnFails: true });
  const err = await rejection(driver.powerOn());
  t.type(err, BmcRefusedError);
  t.equal((err as BmcRefusedError).status, 500);
  t.match(err.message, /sending ResetType On: POST \/redfish\/v1\/Systems\/1\/Actions\/ComputerSystem.Reset answered 500: The system did not power on/);
  t.match(events, [{ action: 'on', result: 'failed', state: 'off' }]);
});

t.test('system discovery', async (t) => {
  t.test('several systems and no system path: the error lists them', async (t) => {
    const { driver, server } = await setup(t);
    server.addSystem({ id: '2', machine: 'rack-a-02', credentials: { username: 'admin', password: PASSWORD } });
    const err = await rejection(driver.status());
    t.type(err, BmcProtocolError);
    t.match(err.message, /the BMC has 2 \(\/redfish\/v1\/Systems\/1, \/redfish\/v1\/Systems\/2\)/);
    t.match(err.message, /put the system path in the address/);
  });
  t.test('the system path of the address picks one', async (t) => {
    const { server, makeDriver } = await setup(t);
    const second = server.addSystem({ id: '2', machine: 'rack-a-02', credentials: { username: 'admin', password: PASSWORD }, initialPower: 'on' });
    const driver = makeDriver({ address: parseBmcAddress(server.addressOf(second)) });
    t.equal(await driver.status(), 'on');
  });
  t.test('a system path that does not exist', async (t) => {
    const { server, makeDriver } = await setup(t);
    const driver = makeDriver({ address: parseBmcAddress(`${server.url.replace(/^http/, 'redfish+http')}/redfish/v1/Systems/nope`) });
    const err = await rejection(driver.status());
    t.type(err, BmcProtocolError);
    t.match(err.message, /no system at \/redfish\/v1\/Systems\/nope/);
  });
  t.end();
});

t.test('TLS: system CAs by default, caBundle, insecureSkipVerify', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bamel-redfish-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=bmc.test', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
  } catch {
    t.pass('openssl is not installed: TLS not checked', { skip: true });
    return;
  }
  const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0, tls: { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert } });
  await server.start();
  t.teardown(() => server.stop());
  server.addSystem({ id: '1', machine: 'm', credentials: { username: 'admin', password: PASSWORD }, initialPower: 'on' });
  const address = parseBmcAddress(server.url.replace(/^https/, 'redfish+https'));
  const make = (extra: Partial<RedfishDriverOptions>) => {
    const d = new RedfishDriver({ address, credentials: new BmcCredentials('admin', PASSWORD), ...FAST, ...extra });
    t.teardown(() => d.close());
    return d;
  };
  const err = await rejection(make({}).status());
  t.type(err, BmcProtocolError);
  t.match(err.message, /TLS failed/);
  t.match(err.message, /caBundle/);
  t.equal(await make({ caBundle: cert }).status(), 'on');
  t.equal(await make({ insecureSkipVerify: true }).status(), 'on');
});

t.test('the password shows nowhere', async (t) => {
  const { driver, bmc } = await setup(t);
  await driver.status();
  await bmc.setFaults({ wrongPassword: true });
  await rejection(driver.status());
  const shown = inspect(driver, { depth: 8, showHidden: true });
  const basic = Buffer.from(`admin:${PASSWORD}`).toString('base64');
  t.notMatch(shown, PASSWORD);
  t.notMatch(shown, basic);
  t.ok(seenErrors.length > 10, `${seenErrors.length} errors checked`);
  for (const { text, message } of seenErrorTexts()) {
    t.notOk(text.includes(PASSWORD) || text.includes(basic), message);
  }
});
