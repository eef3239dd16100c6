import t from 'tap';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcRefusedError } from '../../power/errors.js';
import { RedfishDriver } from '../../power/redfish.js';
import { FAST, PASSWORD, rejection, seenErrors, seenErrorTexts, setup, until } from './fixtures/redfish.js';

// The RedfishDriver against the Redfish fake's vendor quirk profiles (sim/redfish-fake/system.ts),
// one by one and all at once. Operations, sessions, errors and TLS are in redfish.test.ts.

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

t.test('the password shows in none of the errors', async (t) => {
  t.ok(seenErrors.length >= 3, `${seenErrors.length} errors checked`);
  for (const { text, message } of seenErrorTexts()) {
    t.notOk(text.includes(PASSWORD) || text.includes(Buffer.from(`admin:${PASSWORD}`).toString('base64')), message);
  }
});
