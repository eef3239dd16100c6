import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { RedfishFakeServer, type AddSystemOptions, type FakeRequestRecord } from '../../sim/redfish-fake.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcAuthError, BmcError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, BmcUnreachableError } from '../../power/errors.js';
import { RedfishDriver, type RedfishDriverOptions } from '../../power/redfish.js';

const PASSWORD = 'Pa55-w0rd-never-shown';
const SESSIONS = '/redfish/v1/SessionService/Sessions';
const FAST = {
  pollIntervalMs: 20,
  maxPollIntervalMs: 100,
  gracefulTimeoutMs: 2_000,
  transientRetry: { attempts: 4, delayMs: 50 },
  timeouts: { connectMs: 1_000, requestMs: 2_000, operationMs: 10_000 },
};

/** Every BmcError the tests saw: none may show the password. */
const seenErrors: unknown[] = [];

interface Setup {
  server: RedfishFakeServer;
  bmc: ReturnType<RedfishFakeServer['addSystem']>;
  driver: RedfishDriver;
  requests: FakeRequestRecord[];
  events: SimPowerEvent[];
  resets: () => FakeRequestRecord[];
  logins: () => FakeRequestRecord[];
  makeDriver: (opts?: Partial<RedfishDriverOptions>) => RedfishDriver;
}

async function setup(tt: { teardown(fn: () => unknown): void }, system: Partial<AddSystemOptions> = {}, driverOpts: Partial<RedfishDriverOptions> & { address?: string } = {}): Promise<Setup> {
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await server.start();
  const bmc = server.addSystem({ id: '1', machine: 'rack-a-01', credentials: { username: 'admin', password: PASSWORD }, ...system });
  const requests: FakeRequestRecord[] = [];
  server.onRequest((r) => requests.push(r));
  // Requests only: a change that lands later has its own "completed" event.
  const events: SimPowerEvent[] = [];
  bmc.onPower((e) => {
    if (!(e.detail ?? '').startsWith('completed')) events.push(e);
  });
  const drivers: RedfishDriver[] = [];
  const { address, ...rest } = driverOpts;
  const makeDriver = (opts: Partial<RedfishDriverOptions> = {}) => {
    const d = new RedfishDriver({
      address: parseBmcAddress(address ?? server.url.replace(/^http/, 'redfish+http')),
      credentials: new BmcCredentials('admin', PASSWORD),
      ...FAST,
      ...rest,
      ...opts,
    });
    drivers.push(d);
    return d;
  };
  const driver = makeDriver();
  tt.teardown(async () => {
    for (const d of drivers) await d.close();
    await server.stop();
  });
  return {
    server,
    bmc,
    driver,
    requests,
    events,
    makeDriver,
    resets: () => requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Actions/ComputerSystem.Reset')),
    logins: () => requests.filter((r) => r.method === 'POST' && r.path === SESSIONS),
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    seenErrors.push(err);
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

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

t.test('quirk profiles', async (t) => {
  t.test('session-only: sessions work although Basic is refused', async (t) => {
    const { driver, logins } = await setup(t, { profile: 'session-only' });
    await driver.powerOn();
    t.equal(await driver.status(), 'on');
    t.equal(logins().length, 1);
  });

  t.test('no-session-service: Basic auth', async (t) => {
    const { driver, logins, requests } = await setup(t, { profile: 'no-session-service' });
    await driver.powerOn();
    await driver.powerOff({ force: true });
    t.equal(logins().length, 0);
    t.equal(requests.filter((r) => r.status === 401).length, 0);
  });

  t.test('sessions-via-service: the Sessions link of the SessionService', async (t) => {
    const { driver, logins } = await setup(t, { profile: 'sessions-via-service' });
    await driver.powerOn();
    t.equal(logins().length, 1);
    t.equal(logins()[0]?.status, 201);
  });

  t.test('actioninfo-only: ResetType values from the ActionInfo, read once', async (t) => {
    const { driver, requests } = await setup(t, { profile: ['actioninfo-only', 'no-force-on'] });
    t.match(await driver.powerOn(), { method: 'On' });
    await driver.powerOff();
    t.equal(requests.filter((r) => r.path.endsWith('/ResetActionInfo')).length, 1);
  });

  t.test('no allowable values: a 400 for GracefulShutdown falls back to ForceOff', async (t) => {
    const { driver, events } = await setup(t, { profile: ['no-allowable-values', 'no-graceful-shutdown'], initialPower: 'on' });
    t.match(await driver.powerOff(), { state: 'off', method: 'ForceOff' });
    t.match(events, [
      { action: 'graceful-off', result: 'refused' },
      { action: 'force-off', result: 'ok' },
    ]);
  });

  t.test('GracefulShutdown not listed: ForceOff at once', async (t) => {
    const { driver, events } = await setup(t, { profile: 'no-graceful-shutdown', initialPower: 'on' });
    t.match(await driver.powerOff(), { method: 'ForceOff' });
    t.same(
      events.map((e) => e.action),
      ['force-off'],
    );
  });

  t.test('task-monitor: follows the monitor, honouring Retry-After', async (t) => {
    const { driver, requests, bmc } = await setup(t, { profile: 'task-monitor', quirks: { taskMs: 100, retryAfterSeconds: 1 } });
    const started = Date.now();
    t.match(await driver.powerOn(), { state: 'on', method: 'On' });
    t.ok(Date.now() - started >= 900, 'waited the Retry-After second');
    t.equal(bmc.power, 'on');
    const monitor = requests.filter((r) => r.path.startsWith('/redfish/v1/TaskService/TaskMonitors/'));
    t.equal(monitor.length, 1);
    t.equal(monitor[0]?.status, 200);
  });

  t.test('task-monitor with a failing power-on: the task messages', async (t) => {
    const { driver, bmc } = await setup(t, { profile: 'task-monitor', quirks: { taskMs: 50, retryAfterSeconds: 0 } });
    await bmc.setFaults({ powerOnFails: true });
    const err = await rejection(driver.powerOn());
    t.type(err, BmcRefusedError);
    t.match(err.message, /ended in Exception: The system did not power on/);
  });

  t.test('conflict-after-off (iDRAC 409): retried until it passes', async (t) => {
    const { driver, events } = await setup(t, { profile: 'conflict-after-off', initialPower: 'on', quirks: { conflictWindowMs: 800 } }, { transientRetry: { attempts: 60, delayMs: 50 } });
    await driver.powerOff({ force: true });
    t.match(await driver.powerOn(), { state: 'on', method: 'On', alreadyInState: false });
    const onEvents = events.filter((e) => e.action === 'on');
    t.ok(onEvents.length >= 2, `${onEvents.length} tries`);
    t.equal(onEvents[0]?.result, 'refused');
    t.equal(onEvents.at(-1)?.result, 'ok');
  });

  t.test('conflict-after-off for longer than the retries: a transient BmcRefusedError', async (t) => {
    const { driver, resets } = await setup(t, { profile: 'conflict-after-off', initialPower: 'on', quirks: { conflictWindowMs: 60_000 } }, { transientRetry: { attempts: 3, delayMs: 20 } });
    await driver.powerOff({ force: true });
    const err = await rejection(driver.powerOn());
    t.type(err, BmcRefusedError);
    t.equal((err as BmcRefusedError).transient, true);
    t.equal((err as BmcRefusedError).status, 409);
    t.match(err.message, /still refused after 3 tries.*SYS518/);
    t.equal(resets().length, 4, 'the ForceOff and three tries');
  });

  t.test('invalid-state-after-off (iLO 400 InvalidOperationForSystemState): retried', async (t) => {
    const { driver, events } = await setup(t, { profile: 'invalid-state-after-off', initialPower: 'on', quirks: { conflictWindowMs: 800 } }, { transientRetry: { attempts: 60, delayMs: 50 } });
    await driver.powerOff({ force: true });
    t.match(await driver.powerOn(), { state: 'on' });
    t.equal(events.filter((e) => e.action === 'on')[0]?.result, 'refused');
  });

  t.test('already-in-state-conflict: a 409 "already powered on" is success', async (t) => {
    const { driver, server, bmc, resets } = await setup(t, { profile: 'already-in-state-conflict' });
    // Someone powers the machine on between the driver's read and its Reset.
    const stop = server.onRequest((r) => {
      if (r.method === 'GET' && r.path === '/redfish/v1/Systems/1') {
        stop();
        void bmc.setPowerDirect('on');
      }
    });
    t.match(await driver.powerOn(), { state: 'on', alreadyInState: true, method: 'On' });
    t.equal(resets()[0]?.status, 409);
  });

  t.test('transitional: PoweringOn counts as in progress', async (t) => {
    const { driver, bmc, makeDriver, resets } = await setup(t, { profile: 'transitional', poweringOnMs: 300 });
    const started = Date.now();
    t.match(await driver.powerOn(), { state: 'on', alreadyInState: false });
    t.ok(Date.now() - started >= 300);
    await bmc.setPowerDirect('off');
    const second = makeDriver();
    await second.status();
    const pending = driver.powerOn();
    await until(() => resets().length === 2);
    t.equal(await second.status(), 'on', 'PoweringOn reads as on');
    await pending;
    t.match(await driver.powerOff({ force: true }), { state: 'off' });
  });

  t.test('transitional: a machine already powering on is not sent another On', async (t) => {
    const { driver, resets, makeDriver } = await setup(t, { profile: 'transitional', poweringOnMs: 300 });
    const first = makeDriver().powerOn();
    await until(() => resets().length === 1);
    t.match(await driver.powerOn(), { state: 'on', alreadyInState: true });
    await first;
    t.equal(resets().length, 1);
  });

  t.test('session-exhaustion: 503 with Retry-After, then a session', async (t) => {
    const { driver, logins } = await setup(t, { profile: 'session-exhaustion', quirks: { sessionFailures: 2, retryAfterSeconds: 0 } });
    t.equal(await driver.status(), 'off');
    t.same(
      logins().map((r) => r.status),
      [503, 503, 201],
    );
  });

  t.test('session-exhaustion beyond the retries: a transient BmcRefusedError', async (t) => {
    const { driver } = await setup(t, { profile: 'session-exhaustion', quirks: { sessionFailures: 10, retryAfterSeconds: 0 } }, { transientRetry: { attempts: 2, delayMs: 10 } });
    const err = await rejection(driver.status());
    t.type(err, BmcRefusedError);
    t.equal((err as BmcRefusedError).transient, true);
    t.equal((err as BmcRefusedError).status, 503);
  });

  t.test('not-acceptable-identity: one 406, then without Accept-Encoding', async (t) => {
    const { driver, requests } = await setup(t, { profile: 'not-acceptable-identity' });
    await driver.powerOn();
    await driver.powerOff({ force: true });
    t.equal(requests.filter((r) => r.status === 406).length, 1);
  });

  t.test('not-acceptable-identity with an ilo5 address: no 406 at all', async (t) => {
    const { driver, requests, server } = await setup(t, { profile: 'not-acceptable-identity' }, {});
    await driver.close();
    const ilo = new RedfishDriver({ address: parseBmcAddress(server.url.replace(/^http/, 'ilo5-redfish+http')), credentials: new BmcCredentials('admin', PASSWORD), ...FAST });
    t.teardown(() => ilo.close());
    await ilo.powerOn();
    t.equal(requests.filter((r) => r.status === 406).length, 0);
  });

  t.test('no-force-on: On is used', async (t) => {
    const { driver } = await setup(t, { profile: 'no-force-on' });
    t.match(await driver.powerOn(), { method: 'On' });
  });

  t.test('all of them at once', async (t) => {
    const { driver, bmc } = await setup(
      t,
      {
        profile: ['session-only', 'actioninfo-only', 'task-monitor', 'transitional', 'session-exhaustion', 'not-acceptable-identity', 'no-force-on', 'conflict-after-off'],
        quirks: { taskMs: 50, retryAfterSeconds: 0, sessionFailures: 1, conflictWindowMs: 200 },
        poweringOnMs: 100,
      },
      { transientRetry: { attempts: 30, delayMs: 50 } },
    );
    await driver.powerOn();
    await driver.powerOff({ force: true });
    await driver.powerOn();
    t.equal(bmc.power, 'on');
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
  for (const err of seenErrors) {
    const text = `${String(err)} ${err instanceof BmcError ? JSON.stringify(err) : ''} ${err instanceof Error ? (err.stack ?? '') : ''}`;
    t.notOk(text.includes(PASSWORD) || text.includes(basic), (err as Error).message);
  }
});
