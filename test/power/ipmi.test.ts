import { accessSync, constants } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { pino, type Logger } from 'pino';
import t from 'tap';
import { freeUdpPort, IpmiSimBmc, type ChassisRequest, type IpmiSimBmcOptions } from '../../sim/ipmi-sim.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcAuthError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, BmcUnreachableError } from '../../power/errors.js';
import { classifyIpmitoolFailure } from '../../power/ipmi/classify.js';
import { IpmiDriver, workingCipherSuite, type IpmiDriverOptions } from '../../power/ipmi/driver.js';

const USERNAME = 'admin';
const PASSWORD = 'sim-pw-1234';

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

t.before(() => {
  const missing = ['ipmitool', 'ipmi_sim', 'curl'].filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not found in PATH: these tests run real ipmitool against OpenIPMI's ipmi_sim; install them with hack/install-system-deps.sh (Debian packages ipmitool openipmi curl)`);
  }
});

let scratch = '';
t.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bamel-ipmi-test-'));
});
t.teardown(() => rm(scratch, { recursive: true, force: true }));

interface Harness {
  sim: IpmiSimBmc;
  port: number;
  events: SimPowerEvent[];
  requests: ChassisRequest[];
}

async function startSim(t: { teardown(fn: () => unknown): void }, opts: Partial<IpmiSimBmcOptions> = {}): Promise<Harness> {
  const port = await freeUdpPort();
  const workDir = await mkdtemp(join(scratch, 'bmc-'));
  const sim = await IpmiSimBmc.start({ machine: `m-${port}`, host: '127.0.0.1', port, credentials: { username: USERNAME, password: PASSWORD }, workDir, ...opts });
  t.teardown(() => sim.stop());
  const events: SimPowerEvent[] = [];
  const requests: ChassisRequest[] = [];
  sim.onPower((e) => events.push(e));
  sim.onRequest((r) => requests.push(r));
  return { sim, port, events, requests };
}

function driverFor(port: number, opts: Partial<IpmiDriverOptions> & { password?: string } = {}): IpmiDriver {
  const { password, ...rest } = opts;
  return new IpmiDriver({
    address: parseBmcAddress(`ipmi://127.0.0.1:${port}`),
    credentials: new BmcCredentials(USERNAME, password ?? PASSWORD),
    minGapMs: 50,
    pollIntervalMs: 50,
    retries: { attempts: 3, delayMs: 50 },
    timeouts: { requestMs: 2_000, operationMs: 10_000 },
    ...rest,
  });
}

/** An ipmitool that records its arguments (never the password: it is not among them). */
async function recordingIpmitool(): Promise<{ path: string; calls: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(scratch, 'ipmitool-'));
  const path = join(dir, 'ipmitool');
  const log = join(dir, 'calls');
  await writeFile(path, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec ipmitool "$@"\n`);
  await chmod(path, 0o755);
  return {
    path,
    calls: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
  };
}

/** A stand-in ipmitool: prints what `script` (sh, with $n = the run number from 1) says. */
async function fakeIpmitool(script: string): Promise<{ path: string; runs: () => Promise<number> }> {
  const dir = await mkdtemp(join(scratch, 'fake-'));
  const path = join(dir, 'ipmitool');
  const counter = join(dir, 'runs');
  await writeFile(path, `#!/bin/sh\nn=$(( $(cat '${counter}' 2>/dev/null || echo 0) + 1 ))\necho $n > '${counter}'\n${script}\n`);
  await chmod(path, 0o755);
  return { path, runs: async () => Number((await readFile(counter, 'utf8').catch(() => '0')).trim()) };
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to fail');
}

async function commandLines(): Promise<{ pid: number; cmdline: string }[]> {
  const found: { pid: number; cmdline: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const raw = await readFile(`/proc/${name}/cmdline`);
      found.push({ pid: Number(name), cmdline: raw.toString('utf8').split('\0').join(' ') });
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

function ipmitoolRunsFor(lines: { cmdline: string }[], port: number): number {
  return lines.filter((l) => /(^|\/)ipmitool /.test(l.cmdline) && l.cmdline.includes(` -p ${port} `)).length;
}

function capturingLogger(): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { logger: pino({ level: 'trace' }, sink), text: () => chunks.join('') };
}

t.test('reads the power state, powers on and off', async (t) => {
  const { sim, port, events } = await startSim(t);
  const driver = driverFor(port);
  t.equal(driver.kind, 'ipmi');
  t.equal(driver.endpoint, `ipmi://127.0.0.1:${port}`);
  t.equal(await driver.status(), 'off');

  const on = await driver.powerOn();
  t.match(on, { state: 'on', alreadyInState: false, method: 'chassis power on' });
  t.type(on.durationMs, 'number');
  t.equal(sim.power, 'on');
  t.equal(await driver.status(), 'on');

  const off = await driver.powerOff({ force: true });
  t.match(off, { state: 'off', alreadyInState: false, method: 'chassis power off' });
  t.equal(sim.power, 'off');
  t.same(
    events.map((e) => [e.action, e.result, e.state]),
    [
      ['on', 'ok', 'on'],
      ['off', 'ok', 'off'],
    ],
  );
});

t.test('a soft power off that the OS completes in time', async (t) => {
  const { sim, port, events } = await startSim(t, { initialPower: 'on', gracefulShutdownMs: 200 });
  const result = await driverFor(port, { gracefulTimeoutMs: 5_000 }).powerOff();
  t.match(result, { state: 'off', alreadyInState: false, method: 'chassis power soft' });
  t.equal(sim.power, 'off');
  t.same(
    events.map((e) => [e.action, e.state]),
    [
      ['soft-off', 'on'],
      ['soft-off', 'off'],
    ],
    'the soft off, then its completion; no hard off',
  );
});

t.test('an OS that ignores the soft off is powered off hard after gracefulTimeoutMs', async (t) => {
  const { sim, port, events } = await startSim(t, { initialPower: 'on', gracefulShutdownMs: Infinity });
  const started = Date.now();
  const result = await driverFor(port, { gracefulTimeoutMs: 500 }).powerOff();
  const elapsed = Date.now() - started;
  t.match(result, { state: 'off', alreadyInState: false, method: 'chassis power soft, chassis power off' });
  t.ok(elapsed >= 500, `waited the graceful timeout (${elapsed} ms)`);
  t.ok(elapsed < 500 + 5_000, `then forced, well before the operation timeout (${elapsed} ms)`);
  t.equal(sim.power, 'off');
  t.same(
    events.map((e) => e.action),
    ['soft-off', 'off'],
  );

  // The per-call option wins over the driver's.
  await sim.setPowerDirect('on');
  const quick = Date.now();
  await driverFor(port, { gracefulTimeoutMs: 60_000 }).powerOff({ gracefulTimeoutMs: 100 });
  t.ok(Date.now() - quick < 10_000, 'gracefulTimeoutMs of the call, not the minute of the driver');
});

t.test('asking for the state the machine is in succeeds without a power command', async (t) => {
  const { port, events, requests } = await startSim(t, { initialPower: 'on' });
  const driver = driverFor(port);
  t.match(await driver.powerOn(), { state: 'on', alreadyInState: true, method: 'none' });
  t.same(events, [], 'no power request reached the BMC');
  t.same(
    requests.map((r) => `${r.op} ${r.args.join(' ')}`),
    ['get power'],
    'only the power state was read',
  );

  await driver.powerOff({ force: true });
  events.length = 0;
  requests.length = 0;
  t.match(await driver.powerOff(), { state: 'off', alreadyInState: true, method: 'none' });
  t.match(await driver.powerOff({ force: true }), { state: 'off', alreadyInState: true });
  t.same(events, []);
  t.ok(
    requests.every((r) => r.op === 'get'),
    'reads only',
  );
});

t.test('cipher suite 17 refused: falls back to 3 and remembers it for the endpoint', async (t) => {
  const { port } = await startSim(t);
  const ipmitool = await recordingIpmitool();
  const first = driverFor(port, { ipmitoolPath: ipmitool.path });
  t.equal(first.cipherSuite, undefined);
  t.equal(await first.status(), 'off');
  const calls = await ipmitool.calls();
  t.equal(calls.length, 2);
  t.match(calls[0], / -C 17 /, 'suite 17 first');
  t.match(calls[1], / -C 3 /, 'then 3');
  t.equal(first.cipherSuite, 3);
  t.equal(workingCipherSuite(first.endpoint), 3);

  const second = driverFor(port, { ipmitoolPath: ipmitool.path });
  await second.powerOn();
  const later = (await ipmitool.calls()).slice(2);
  t.ok(later.length >= 3, 'status, on, status');
  t.ok(
    later.every((c) => c.includes(' -C 3 ')),
    'a new driver for the same BMC goes straight to suite 3',
  );
  for (const call of await ipmitool.calls()) {
    t.match(call, /^-I lanplus -H 127\.0\.0\.1 -p \d+ -U admin -L ADMINISTRATOR -R 1 -N 5 -C (17|3) -E -v chassis power (status|on)$/);
  }
});

t.test('a wrong password is a BmcAuthError at once, without a retry storm', async (t) => {
  const { sim, port } = await startSim(t);
  await sim.setFaults({ wrongPassword: true });
  const ipmitool = await recordingIpmitool();
  const driver = driverFor(port, { ipmitoolPath: ipmitool.path, retries: { attempts: 5, delayMs: 200 } });
  const started = Date.now();
  const err = await failureOf(driver.status());
  const elapsed = Date.now() - started;
  t.type(err, BmcAuthError);
  const authError = err as BmcAuthError;
  t.equal(authError.code, 'BMC_AUTH');
  t.equal(authError.transient, false);
  t.match(authError.message, `reading the power state on ipmi://127.0.0.1:${port}`);
  t.match(authError.message, /RAKP 2 HMAC is invalid/);
  t.notMatch(authError.message, PASSWORD);
  t.equal((await ipmitool.calls()).length, 2, 'suite 17 (refused), suite 3 (wrong password), nothing more');
  t.ok(elapsed < 2_500, `no retries with their pauses, 3 s at least (${elapsed} ms)`);

  await sim.setFaults({});
  t.equal(await driver.status(), 'off', 'works again once the BMC takes the password');
});

t.test('a BMC port where nothing listens: BmcUnreachableError within the request timeout', async (t) => {
  const port = await freeUdpPort();
  const driver = driverFor(port, { timeouts: { requestMs: 1_000, operationMs: 8_000 } });
  const started = Date.now();
  const err = await failureOf(driver.status());
  const elapsed = Date.now() - started;
  t.type(err, BmcUnreachableError);
  t.match((err as Error).message, `ipmi://127.0.0.1:${port}`);
  t.match((err as Error).message, /closed/);
  t.equal((err as BmcUnreachableError).transient, true);
  t.ok(elapsed < 2_500, `one request timeout and a probe, no retries (${elapsed} ms)`);

  // The simulator's unreachable fault is the same thing.
  const { sim, port: simPort } = await startSim(t);
  await sim.setFaults({ unreachable: true });
  t.equal(sim.pid, undefined, 'ipmi_sim is stopped');
  t.type(await failureOf(driverFor(simPort, { timeouts: { requestMs: 1_000, operationMs: 8_000 } }).status()), BmcUnreachableError);
  await sim.setFaults({});
  t.equal(await driverFor(simPort).status(), 'off');
});

t.test('a hung BMC: BmcTimeoutError within the operation timeout', async (t) => {
  const { sim, port } = await startSim(t);
  await sim.setFaults({ hang: true });
  const driver = driverFor(port, { timeouts: { requestMs: 700, operationMs: 2_500 }, retries: { attempts: 3, delayMs: 100 } });
  const started = Date.now();
  const err = await failureOf(driver.status());
  const elapsed = Date.now() - started;
  t.type(err, BmcTimeoutError);
  t.match((err as Error).message, `reading the power state on ipmi://127.0.0.1:${port}`);
  t.match((err as Error).message, /no answer within 700 ms/);
  t.ok(elapsed <= 3_000, `within the operation timeout (${elapsed} ms)`);
  t.ok(elapsed >= 1_400, `retried once at least (${elapsed} ms)`);

  await sim.setFaults({});
  t.equal(await driver.status(), 'off', 'answers again after SIGCONT');
});

t.test('a power on that the BMC fails: BmcRefusedError with the completion code', async (t) => {
  const { sim, port, events } = await startSim(t);
  await sim.setFaults({ powerOnFails: true });
  const err = await failureOf(driverFor(port).powerOn());
  t.type(err, BmcRefusedError);
  t.match((err as Error).message, /power on on ipmi:\/\/127\.0\.0\.1:\d+: the BMC refused "chassis power on".*Up\/On failed: Unspecified error/);
  t.same(
    events.map((e) => [e.action, e.result, e.state]),
    [['on', 'failed', 'off']],
    'tried once: a refusal is not retried',
  );
  t.equal(sim.power, 'off');
});

t.test('keeps the minimum gap between commands to one BMC, across drivers', async (t) => {
  const { port, requests } = await startSim(t);
  const gap = 300;
  const a = driverFor(port, { minGapMs: gap });
  const b = driverFor(port, { minGapMs: gap });
  await Promise.all([a.powerOn(), b.status(), a.status(), b.powerOff({ force: true })]);
  const times = requests.map((r) => r.at).sort((x, y) => x - y);
  t.ok(times.length >= 7, `${times.length} commands reached the BMC`);
  const gaps = times.slice(1).map((at, i) => at - (times[i] ?? at));
  // Each command starts at least `gap` after the previous one ended, and the hook runs in
  // the middle of a command: hook calls are at least `gap` apart (less a little jitter).
  t.ok(
    gaps.every((g) => g >= gap - 20),
    `gaps ${gaps.join(', ')} ms`,
  );
});

t.test('one operation at a time per BMC', async (t) => {
  const { port, events } = await startSim(t);
  const results = await Promise.all([driverFor(port).powerOn(), driverFor(port).powerOn()]);
  t.same(results.map((r) => r.alreadyInState).sort(), [false, true], 'the second saw the first one done');
  t.equal(events.filter((e) => e.action === 'on').length, 1, 'one power on was sent');
});

t.test('the password is in no command line and no log line, even while ipmitool waits', async (t) => {
  const password = `Pw${randomBytes(8).toString('hex')}`;
  const { logger, text } = capturingLogger();
  const { sim, port } = await startSim(t, { credentials: { username: USERNAME, password }, logger, gracefulShutdownMs: Infinity, initialPower: 'on' });
  const driver = driverFor(port, { password, logger, timeouts: { requestMs: 600, operationMs: 2_000 }, gracefulTimeoutMs: 400 });

  let scans = 0;
  let ipmitoolSeen = 0;
  const leaks: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const lines = await commandLines();
      scans++;
      ipmitoolSeen += ipmitoolRunsFor(lines, port);
      for (const l of lines) if (l.cmdline.includes(password)) leaks.push(`${l.pid}: ${l.cmdline}`);
      await sleep(2);
    }
  })();

  await driver.powerOff(); // a soft off that never completes, then the hard off
  await driver.powerOn();
  await sim.setFaults({ hang: true });
  const err = await failureOf(driver.status()); // ipmitool waits for a hung BMC
  await sim.setFaults({ wrongPassword: true });
  const authErr = await failureOf(driver.status());
  watching = false;
  await watcher;

  // How often depends on the machine's load; what matters is seeing ipmitool while it runs.
  t.ok(scans > 5, `scanned /proc ${scans} times`);
  t.ok(ipmitoolSeen > 5, `saw ipmitool running ${ipmitoolSeen} times`);
  t.same(leaks, [], 'no command line holds the password');
  const logText = text();
  t.ok(logText.length > 0, 'the driver and the simulator logged');
  t.notOk(logText.includes(password), 'no log line holds the password');
  for (const e of [err, authErr]) {
    t.notOk(String(e).includes(password));
    t.notOk(inspect(e, { depth: 5 }).includes(password));
    t.notOk(JSON.stringify(e).includes(password));
    t.notMatch(String(e), /IPMI_PASSWORD|-I lanplus/, 'no argv or environment in the error');
  }
});

t.test('an abort kills the running ipmitool', async (t) => {
  const { sim, port } = await startSim(t);
  await sim.setFaults({ hang: true });
  const driver = driverFor(port, { timeouts: { requestMs: 5_000, operationMs: 10_000 } });
  const controller = new AbortController();
  const pending = failureOf(driver.status({ signal: controller.signal }));
  const deadline = Date.now() + 3_000;
  while (ipmitoolRunsFor(await commandLines(), port) === 0 && Date.now() < deadline) await sleep(10);
  t.equal(ipmitoolRunsFor(await commandLines(), port), 1, 'ipmitool runs');
  const abortedAt = Date.now();
  controller.abort();
  const err = await pending;
  t.equal((err as Error).name, 'AbortError');
  t.ok(Date.now() - abortedAt < 500, 'at once');
  let left = 1;
  for (let i = 0; i < 50 && left > 0; i++) {
    left = ipmitoolRunsFor(await commandLines(), port);
    if (left > 0) await sleep(10);
  }
  t.equal(left, 0, 'ipmitool was killed');

  // close() does the same for whatever is in flight, and refuses new operations.
  const closing = driverFor(port, { timeouts: { requestMs: 5_000, operationMs: 10_000 } });
  const inFlight = failureOf(closing.status());
  await sleep(200);
  await closing.close();
  t.equal(((await inFlight) as Error).name, 'AbortError');
  t.match(await failureOf(closing.status()), /closed/);
});

t.test('ipmitool output read exactly', async (t) => {
  const port = await freeUdpPort();
  const odd = await fakeIpmitool(`echo 'Chassis Power is unknown'`);
  const err = await failureOf(driverFor(port, { ipmitoolPath: odd.path }).status());
  t.type(err, BmcProtocolError);
  t.match((err as Error).message, /unexpected answer to "chassis power status": "Chassis Power is unknown"/);

  const extra = await fakeIpmitool(`printf 'Chassis Power is on\\nChassis Power is off\\n'`);
  t.type(await failureOf(driverFor(await freeUdpPort(), { ipmitoolPath: extra.path }).status()), BmcProtocolError);

  const missing = await failureOf(driverFor(port, { ipmitoolPath: join(scratch, 'no-such-ipmitool') }).status());
  t.match(missing, /cannot run ipmitool .*ENOENT/);
});

t.test('a busy BMC is retried with backoff', async (t) => {
  const busy = await fakeIpmitool(`if [ $n -le 2 ]; then echo 'Get Chassis Power Status failed: Node busy' >&2; exit 1; fi\necho 'Chassis Power is on'`);
  const started = Date.now();
  t.equal(await driverFor(await freeUdpPort(), { ipmitoolPath: busy.path, retries: { attempts: 4, delayMs: 100 } }).status(), 'on');
  t.equal(await busy.runs(), 3);
  t.ok(Date.now() - started >= 300, 'waited 100 ms, then 200 ms');

  const stuck = await fakeIpmitool(`echo 'Error in open session response message : insufficient resources for session' >&2; exit 1`);
  const err = await failureOf(driverFor(await freeUdpPort(), { ipmitoolPath: stuck.path, retries: { attempts: 3, delayMs: 20 } }).status());
  t.type(err, BmcRefusedError);
  t.equal((err as BmcRefusedError).transient, true);
  t.equal(await stuck.runs(), 3, 'gave up after the attempts');
});

t.test('ipmitool messages and what they mean', async (t) => {
  const cases: [string, string][] = [
    ['Error in open session response message : invalid authentication algorithm\n\nError: Unable to establish IPMI v2 / RMCP+ session', 'cipher'],
    ['Error in open session response message : no matching cipher suite', 'cipher'],
    ['Authentication algorithm 0x03 is not what we requested 0x01', 'cipher'],
    ['Unsupported cipher suite ID : 17', 'cipher'],
    ['Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session', 'auth'],
    ['RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session', 'auth'],
    ['RAKP 4 message has invalid integrity check value', 'auth'],
    ['Set Session Privilege Level to ADMINISTRATOR failed: Requested privilege level exceeds limit', 'auth'],
    ['lanplus: password is longer than 20 bytes.', 'auth'],
    ['Error in open session response message : insufficient resources for session', 'busy'],
    ['Get Chassis Power Status failed: Node busy', 'busy'],
    ['Set Chassis Power Control to Up/On failed: Timeout', 'busy'],
    ['Get Auth Capabilities error: BMC initialization in progress', 'busy'],
    ['Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\nError: Unable to establish IPMI v2 / RMCP+ session', 'no-answer'],
    ['Unable to get Chassis Power Status', 'no-answer'],
    ['Unable to set Chassis Power Control to Up/On', 'no-answer'],
    ['Address lookup for bmc.invalid failed\nCould not open socket!', 'unresolved'],
    ['This BMC does not support IPMI v2 / RMCP+', 'no-v2'],
    ['Set Chassis Power Control to Up/On failed: Unspecified error', 'refused'],
    ['Loading IANA PEN Registry...\nInvalid completion code received: Invalid command\nsomething new', 'unknown'],
  ];
  for (const [stderr, kind] of cases) t.equal(classifyIpmitoolFailure(stderr).kind, kind, stderr.split('\n')[0] ?? stderr);
  t.equal(classifyIpmitoolFailure('Loading IANA PEN Registry...\nsomething new\n').detail, 'something new');
});
