import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { pino } from 'pino';
import { RedfishFakeServer, type FakeRequestRecord } from '../../sim/redfish-fake.js';
import type { SimFaults } from '../../sim/types.js';
import { CircuitBreaker } from '../../power/breaker.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcAuthError, BmcDegradedError, BmcError, BmcTimeoutError, BmcUnreachableError } from '../../power/errors.js';
import { BmcPool, type BmcPoolOptions, type MachineBmcSpec } from '../../power/pool.js';

// BmcPool against a real Redfish BMC (the project's fake over HTTP): the breaker in front
// of each BMC opens after repeated failures, fails calls fast without touching the BMC
// while open, lets one probe through per open period, and closes once the BMC answers.

const USERNAME = 'admin';
const PASSWORD = 'pool-Pw-31c9e2';
const OPEN_MS = 600;
const BREAKER = { failureThreshold: 3, openMs: OPEN_MS, maxOpenMs: 4 * OPEN_MS };
// Short, so that the hang case fails in a fraction of a second; the fake answers in ms.
const TIMEOUTS = { connectMs: 500, requestMs: 300, operationMs: 5_000 };

interface Setup {
  server: RedfishFakeServer;
  pool: BmcPool;
  spec: MachineBmcSpec;
  requests: FakeRequestRecord[];
  setFaults: (faults: SimFaults) => Promise<void>;
}

async function setup(tt: { teardown(fn: () => unknown): void }, opts: BmcPoolOptions = {}): Promise<Setup> {
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await server.start();
  const system = server.addSystem({ id: '1', machine: 'rack-p-01', credentials: { username: USERNAME, password: PASSWORD } });
  const requests: FakeRequestRecord[] = [];
  server.onRequest((r) => requests.push(r));
  const pool = new BmcPool({ timeouts: TIMEOUTS, breaker: BREAKER, ...opts });
  tt.teardown(async () => {
    await pool.close();
    await server.stop();
  });
  return {
    server,
    pool,
    spec: { name: 'rack-p-01', address: server.addressOf(system) },
    requests,
    setFaults: (faults) => system.setFaults(faults),
  };
}

async function failure(promise: Promise<unknown>): Promise<BmcError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof BmcError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const credentials = (password = PASSWORD): BmcCredentials => new BmcCredentials(USERNAME, password);

t.test('the breaker opens after repeated failures, fails fast, probes, and closes when the BMC is back', async (t) => {
  const { pool, spec, requests, setFaults } = await setup(t);
  const driver = pool.driver(spec, credentials());
  t.equal(await driver.status(), 'off');
  t.match(pool.health(spec.name), { state: 'closed', degraded: false, consecutiveFailures: 0 });
  t.notOk(pool.health(spec.name)?.retryAt, 'no retry time while closed');

  await setFaults({ unreachable: true });
  const before = requests.length;
  let lastCallStarted = 0;
  for (let i = 1; i <= BREAKER.failureThreshold; i++) {
    lastCallStarted = Date.now();
    const err = await failure(driver.status());
    t.type(err, BmcUnreachableError, `failure ${i} reached the BMC`);
    t.equal(pool.health(spec.name)?.consecutiveFailures, i);
  }
  const opened = Date.now();
  const failing = requests.length - before;
  t.ok(failing >= BREAKER.failureThreshold, `the failing calls reached the BMC (${failing} requests)`);

  const health = pool.health(spec.name);
  t.match(health, { state: 'open', degraded: true, consecutiveFailures: BREAKER.failureThreshold, lastFailure: 'BMC_UNREACHABLE' });
  t.type(health?.retryAt, Date);
  const retryAt = health?.retryAt?.getTime() ?? 0;
  t.ok(retryAt >= lastCallStarted + OPEN_MS && retryAt <= opened + OPEN_MS, `the next probe is one open period after the third failure`);

  // While open: every call fails at once, and the BMC sees none of them.
  const fastStart = Date.now();
  const fast = await Promise.all(Array.from({ length: 20 }, () => failure(driver.powerOn())));
  const fastMs = Date.now() - fastStart;
  t.equal(requests.length - before, failing, 'no request reached the BMC while the breaker was open');
  for (const err of fast) t.type(err, BmcDegradedError);
  const degraded = fast[0] as BmcDegradedError;
  t.equal(degraded.code, 'BMC_DEGRADED');
  t.equal(degraded.retryAt.getTime(), retryAt, 'the error carries the time of the next probe');
  t.equal(degraded.operation, 'power on');
  t.ok(degraded.transient, 'degraded is transient: the caller retries later');
  t.match(degraded.message, /BMC degraded after 3 consecutive failures \(last: BMC_UNREACHABLE\); next probe at /);
  t.equal(degraded.address, health?.endpoint, 'names the BMC');
  t.ok(degraded.message.includes(spec.address), `the endpoint is the system's address: ${degraded.address}`);
  t.notOk(JSON.stringify(degraded.toJSON()).includes(PASSWORD) || degraded.message.includes(PASSWORD), 'no password in the error');
  t.ok(fastMs < OPEN_MS / 2, `20 calls failed fast (${fastMs} ms)`);

  // The open period ends: one probe goes through while the rest still fail fast; the
  // failed probe reopens the breaker for twice as long.
  await sleep(Math.max(0, retryAt - Date.now()) + 20);
  t.equal(pool.health(spec.name)?.state, 'half-open');
  const probeBefore = requests.length;
  const probeStarted = Date.now();
  const probes = await Promise.all(Array.from({ length: 5 }, () => failure(driver.status())));
  const probeEnded = Date.now();
  t.equal(probes.filter((e) => e instanceof BmcUnreachableError).length, 1, 'one call probed the BMC');
  t.equal(probes.filter((e) => e instanceof BmcDegradedError).length, 4, 'the others failed fast');
  t.ok(requests.length - probeBefore >= 1 && requests.length - probeBefore <= 2, `the probe is one status read (${requests.length - probeBefore} requests)`);
  const reopened = pool.health(spec.name);
  const reopenAt = reopened?.retryAt?.getTime() ?? 0;
  t.equal(reopened?.consecutiveFailures, BREAKER.failureThreshold + 1);
  t.ok(reopenAt >= probeStarted + 2 * OPEN_MS && reopenAt <= probeEnded + 2 * OPEN_MS, 'a failed probe opens the breaker for twice as long');

  // The BMC comes back: the next probe succeeds and closes the breaker.
  await setFaults({});
  // (Unless this machine is so loaded that the open period is already over.)
  if (Date.now() < reopenAt - 100) t.type(await failure(driver.status()), BmcDegradedError, 'still open until the probe time, even though the BMC is back');
  await sleep(Math.max(0, reopenAt - Date.now()) + 20);
  t.equal(await driver.status(), 'off', 'the probe went through');
  t.match(pool.health(spec.name), { state: 'closed', degraded: false, consecutiveFailures: 0 });
  t.notOk(pool.health(spec.name)?.retryAt);
  t.notOk(pool.health(spec.name)?.lastFailure);
  const on = await driver.powerOn();
  t.equal(on.state, 'on', 'power operations work again');

  // No retry storm: the whole outage cost the failures that opened the breaker and the probes.
  const total = requests.filter((r) => r.status === 0).length;
  t.ok(total <= BREAKER.failureThreshold * 2 + 2, `${total} requests reached the dead BMC over ${fast.length + probes.length + BREAKER.failureThreshold + 1} calls`);
});

t.test('a hung BMC costs the request timeout only until the breaker opens', async (t) => {
  const { pool, spec, setFaults } = await setup(t);
  const driver = pool.driver(spec, credentials());
  t.equal(await driver.status(), 'off');
  await setFaults({ hang: true });
  for (let i = 0; i < BREAKER.failureThreshold; i++) {
    const started = Date.now();
    const err = await failure(driver.status());
    t.type(err, BmcTimeoutError, err.message);
    t.ok(Date.now() - started >= TIMEOUTS.requestMs - 20, 'waited for the request timeout');
  }
  // A hung request is never answered, so the fake never records it: that these calls do
  // not wait for the request timeout is what shows that they send nothing.
  const started = Date.now();
  const fast = await Promise.all(Array.from({ length: 10 }, () => failure(driver.status())));
  const elapsed = Date.now() - started;
  t.ok(elapsed < TIMEOUTS.requestMs / 2, `then calls fail without waiting (${elapsed} ms for 10)`);
  for (const err of fast) t.type(err, BmcDegradedError);
  t.match(pool.health(spec.name), { state: 'open', degraded: true, lastFailure: 'BMC_TIMEOUT' });
});

t.test('one operation at a time per BMC, in arrival order', async (t) => {
  const { pool, spec, requests } = await setup(t);
  const driver = pool.driver(spec, credentials());
  const order: string[] = [];
  await Promise.all([
    driver.status().then(() => order.push(`status 1 after ${requests.length} requests`)),
    driver.powerOn().then(() => order.push('on')),
    driver.status().then(() => order.push('status 2')),
  ]);
  t.match(order, [/^status 1/, 'on', 'status 2']);
});

t.test('new credentials: a new driver and a closed breaker', async (t) => {
  const { pool, spec, requests } = await setup(t);
  // The Secret still holds the password the BMC no longer takes.
  const stale = pool.driver(spec, credentials('pool-Old-Pw'));
  // The first refusal opens the breaker: the calls after it fail fast, without a login.
  t.type(await failure(stale.status()), BmcAuthError);
  for (let i = 1; i < BREAKER.failureThreshold; i++) t.type(await failure(stale.status()), BmcDegradedError);
  t.match(pool.health(spec.name), { state: 'open', degraded: true, lastFailure: 'BMC_AUTH', credentialsRefused: true });
  const logins = () => requests.filter((r) => r.method === 'POST' && r.path === '/redfish/v1/SessionService/Sessions').length;
  t.equal(logins(), 1, 'one login in all: a refused login is not retried (accounts lock)');

  // The same credentials again (a new object, as after a resync of the Secret): same breaker.
  const same = pool.driver(spec, credentials('pool-Old-Pw'));
  t.type(await failure(same.status()), BmcDegradedError, 'unchanged credentials keep the breaker open');
  t.equal(logins(), 1);

  // The operator fixes the Secret: a new driver with a new, closed breaker.
  const fixed = pool.driver(spec, credentials());
  t.match(pool.health(spec.name), { state: 'closed', degraded: false, consecutiveFailures: 0 });
  t.notOk(pool.health(spec.name)?.retryAt);
  t.equal(await fixed.status(), 'off', 'the call goes to the BMC at once, not at the next probe');
  t.equal(logins(), 2, 'with a fresh login');
  t.match(pool.health(spec.name), { state: 'closed', consecutiveFailures: 0 });

});

t.test('a new address: a new driver and a closed breaker', async (t) => {
  const { pool, spec, setFaults } = await setup(t);
  const driver = pool.driver(spec, credentials());
  await setFaults({ unreachable: true });
  for (let i = 0; i < BREAKER.failureThreshold; i++) await failure(driver.status());
  t.equal(pool.health(spec.name)?.degraded, true);
  await setFaults({});
  // The inventory now names the BMC without the system path (its only system).
  const moved = pool.driver({ ...spec, address: spec.address.replace(/\/redfish\/v1\/Systems\/1$/, '') }, credentials());
  t.match(pool.health(spec.name), { state: 'closed', degraded: false });
  t.equal(await moved.status(), 'off');
});

t.test('machines are independent, and forget() closes the driver', async (t) => {
  const { pool, spec, server } = await setup(t);
  const other = server.addSystem({ id: '2', machine: 'rack-p-02', credentials: { username: USERNAME, password: PASSWORD }, initialPower: 'on' });
  const otherSpec = { name: 'rack-p-02', address: server.addressOf(other) };
  for (let i = 0; i < BREAKER.failureThreshold; i++) await failure(pool.driver(spec, credentials('pool-Old-Pw')).status());
  t.equal(pool.health(spec.name)?.degraded, true);
  t.equal(await pool.driver(otherSpec, credentials()).status(), 'on', 'a degraded BMC does not hold up another');
  t.equal(pool.health(otherSpec.name)?.degraded, false);
  t.equal(server.sessionCount, 1, "the second machine's driver holds a session");
  await pool.forget(otherSpec.name);
  t.equal(pool.health(otherSpec.name), undefined);
  t.equal(server.sessionCount, 0, 'forget() logged out');
});

t.test('a refused login opens the breaker at once: one login, a clear message, the time of the next try', async (t) => {
  const lines: { level: number; msg: string; machine?: string; retryAt?: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const { pool, spec, requests } = await setup(t, { logger, breaker: { ...BREAKER, authOpenMs: 60_000 } });
  const logins = () => requests.filter((r) => r.method === 'POST' && r.path === '/redfish/v1/SessionService/Sessions').length;
  const driver = pool.driver(spec, credentials('pool-Wrong-Pw'));
  const started = Date.now();
  const refused = await failure(driver.powerOn());
  t.type(refused, BmcAuthError, 'the refusal itself');
  t.equal(logins(), 1);
  const health = pool.health(spec.name);
  t.match(health, { state: 'open', degraded: true, consecutiveFailures: BREAKER.failureThreshold, lastFailure: 'BMC_AUTH', credentialsRefused: true });
  const retryAt = health?.retryAt?.getTime() ?? 0;
  t.ok(retryAt >= started + 60_000 && retryAt <= Date.now() + 60_000, 'open for authOpenMs, not for the short failure period');

  // Past the short open period of other failures: still no login.
  await sleep(OPEN_MS + 100);
  for (const call of [() => driver.status(), () => driver.powerOn(), () => driver.powerOff({ force: true })]) {
    const fast = await failure(call());
    t.type(fast, BmcDegradedError);
    t.equal((fast as BmcDegradedError).retryAt.getTime(), retryAt, 'names when it will try again');
    t.match(fast.message, /the BMC refused the credentials \(BMC_AUTH\): the username or password in the machine's credentials Secret is wrong; not tried again until \d{4}-\d\d-\d\dT[\d:.]+Z/);
    t.match(fast.message, /fix the Secret: a changed username or password is tried at once/);
    t.notMatch(fast.message, /pool-Wrong-Pw/, 'no password in the message');
  }
  t.equal(logins(), 1, 'one login in all: no account lock-out by retries');
  const warned = lines.filter((l) => l.level === 40);
  t.equal(warned.length, 1, 'one warning, for the refusal');
  t.match(warned[0], { machine: spec.name, retryAt: new Date(retryAt).toISOString(), msg: /the BMC refused the credentials: the username or password .* is wrong; no further login until/ });
  t.notMatch(JSON.stringify(lines), /pool-Wrong-Pw/, 'no password in the log');
});

t.test('the breaker on a clock: a refusal opens it for authOpenMs; a probe with the same refusal reopens it; a success closes it', async (t) => {
  let now = 1_000_000;
  const breaker = new CircuitBreaker('redfish+https://10.0.0.9', { failureThreshold: 3, openMs: 1_000, maxOpenMs: 8_000, authOpenMs: 300_000, now: () => now });
  const auth = () => Promise.reject(new BmcAuthError('session login refused (401)', { address: breaker.endpoint, operation: 'power on' }));
  const unreachable = () => Promise.reject(new BmcUnreachableError('connection refused', { address: breaker.endpoint, operation: 'power on' }));
  let calls = 0;
  const ok = () => Promise.resolve(++calls);

  // Other failures still need three in a row.
  await t.rejects(breaker.run('power on', unreachable), BmcUnreachableError);
  t.equal(breaker.state, 'closed');
  t.equal(breaker.openForCredentials, false);

  await t.rejects(breaker.run('power on', auth), BmcAuthError);
  t.equal(breaker.state, 'open', 'one refusal opens it');
  t.equal(breaker.openForCredentials, true);
  t.equal(breaker.retryAt?.getTime(), now + 300_000);
  now += 299_999;
  await t.rejects(breaker.run('power on', ok), BmcDegradedError);
  t.equal(calls, 0, 'nothing reaches the BMC while open');

  now += 1;
  t.equal(breaker.state, 'half-open');
  await t.rejects(breaker.run('power on', auth), BmcAuthError, 'the probe is refused too');
  t.equal(breaker.state, 'open');
  t.equal(breaker.retryAt?.getTime(), now + 300_000, 'open again for authOpenMs');

  now += 300_000;
  t.equal(await breaker.run('power on', ok), 1, 'the probe succeeds (the BMC account was fixed)');
  t.equal(breaker.state, 'closed');
  t.equal(breaker.openForCredentials, false);
  t.equal(breaker.consecutiveFailures, 0);
});
