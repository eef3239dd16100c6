import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { freeUdpPort, IpmiSimBmc, type IpmiSimBmcOptions } from '../../sim/ipmi-sim.js';
import type { SimPowerEvent } from '../../sim/types.js';

const USERNAME = 'admin';
const PASSWORD = 'sim-pw-5678';

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
    throw new Error(`${missing.join(', ')} not found in PATH: the simulated IPMI BMC is OpenIPMI's ipmi_sim, checked with ipmitool; install them with hack/install-system-deps.sh (Debian packages ipmitool openipmi curl)`);
  }
});

let scratch = '';
t.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bamel-ipmi-sim-test-'));
});
t.teardown(() => rm(scratch, { recursive: true, force: true }));

async function options(opts: Partial<IpmiSimBmcOptions> = {}): Promise<IpmiSimBmcOptions> {
  const port = await freeUdpPort();
  return { machine: `m-${port}`, host: '127.0.0.1', port, credentials: { username: USERNAME, password: PASSWORD }, workDir: join(scratch, `bmc-${port}`), ...opts };
}

async function started(t: { teardown(fn: () => unknown): void }, opts: Partial<IpmiSimBmcOptions> = {}): Promise<{ sim: IpmiSimBmc; events: SimPowerEvent[] }> {
  const sim = await IpmiSimBmc.start(await options(opts));
  t.teardown(() => sim.stop());
  const events: SimPowerEvent[] = [];
  sim.onPower((e) => events.push(e));
  return { sim, events };
}

/** One ipmitool command against the simulator, as an operator would type it. */
function ipmitool(sim: IpmiSimBmc, command: string, password = PASSWORD): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const args = ['-I', 'lanplus', '-H', sim.host, '-p', String(sim.port), '-U', USERNAME, '-L', 'ADMINISTRATOR', '-R', '1', '-N', '1', '-C', '3', '-E', ...command.split(' ')];
  return new Promise((resolve) => {
    execFile('ipmitool', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: password }, timeout: 5_000 }, (err, stdout, stderr) =>
      resolve({ ok: err === null, stdout: stdout.trim(), stderr: stderr.trim() }),
    );
  });
}

async function processState(pid: number): Promise<string | undefined> {
  try {
    // "pid (comm) S ...": the state follows the command name's closing parenthesis.
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

t.test('keeps its config private and removes everything on stop', async (t) => {
  const opts = await options();
  const sim = await IpmiSimBmc.start(opts);
  const pid = sim.pid;
  if (pid === undefined) throw new Error('no ipmi_sim process');
  t.equal((await stat(opts.workDir)).mode & 0o777, 0o700, 'workDir');
  t.equal((await stat(join(opts.workDir, 'lan.conf'))).mode & 0o777, 0o600, 'lan.conf holds the password');
  t.equal((await stat(join(opts.workDir, 'bmc.emu'))).mode & 0o777, 0o600);
  t.equal((await stat(join(opts.workDir, 'chassis-control.sh'))).mode & 0o777, 0o700, 'the hook holds the control token');
  t.match(await readFile(join(opts.workDir, 'lan.conf'), 'utf8'), /guid [0-9a-f]{32}\n/, 'a 32-hex-digit guid');
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  t.match(cmdline, /ipmi_sim -c \S+lan\.conf/);
  t.notOk(cmdline.includes(PASSWORD), 'the password is not in its command line');

  await sim.stop();
  t.equal(await processState(pid), undefined, 'ipmi_sim is gone');
  await t.rejects(stat(opts.workDir), { code: 'ENOENT' }, 'workDir removed');
  await sim.stop();
  t.pass('stop twice is fine');
  await t.rejects(sim.setFaults({}), /stopped/);
});

t.test("start fails with ipmi_sim's own words when it exits early", async (t) => {
  // 192.0.2.1 (TEST-NET-1) is on no interface here: ipmi_sim cannot bind it.
  const opts = await options({ host: '192.0.2.1' });
  await t.rejects(IpmiSimBmc.start(opts), /ipmi_sim for m-\d+ \(192\.0\.2\.1:\d+\) exited with code 1: .*Unable to bind to LAN port: Cannot assign requested address/s);
  await t.rejects(stat(opts.workDir), { code: 'ENOENT' }, 'cleaned up after itself');

  await t.rejects(IpmiSimBmc.start(await options({ ipmiSimPath: join(scratch, 'no-ipmi-sim') })), /could not be started: ENOENT/);
});

t.test('checks its options without repeating the password', async (t) => {
  const badPassword = 'has"quote';
  const err = await IpmiSimBmc.start(await options({ credentials: { username: USERNAME, password: badPassword } })).catch((e: unknown) => e);
  t.match(err, /the password must be 1 to 20 characters without blanks or quotes/);
  t.notOk(String(err).includes(badPassword));
  await t.rejects(IpmiSimBmc.start(await options({ credentials: { username: USERNAME, password: 'x'.repeat(21) } })), /password/);
  await t.rejects(IpmiSimBmc.start(await options({ workDir: join(scratch, 'with space') })), /workDir/);
  await t.rejects(IpmiSimBmc.start(await options({ host: 'localhost' })), /host must be an IP address/);
});

t.test('every power request becomes an event', async (t) => {
  const { sim, events } = await started(t, { gracefulShutdownMs: 100 });
  const requests: string[] = [];
  const unsubscribe = sim.onRequest((r) => requests.push(`${r.op} ${r.args.join(' ')}`));

  t.match(await ipmitool(sim, 'chassis power status'), { ok: true, stdout: 'Chassis Power is off' });
  t.match(await ipmitool(sim, 'chassis power soft'), { ok: true });
  t.match(await ipmitool(sim, 'chassis power off'), { ok: true });
  t.match(await ipmitool(sim, 'chassis power on'), { ok: true, stdout: 'Chassis Power Control: Up/On' });
  t.match(await ipmitool(sim, 'chassis power on'), { ok: true });
  t.match(await ipmitool(sim, 'chassis power reset'), { ok: true });
  t.same(
    events.map((e) => [e.action, e.result, e.state]),
    [
      ['soft-off', 'already', 'off'],
      ['off', 'already', 'off'],
      ['on', 'ok', 'on'],
      ['on', 'already', 'on'],
      ['reset', 'ok', 'on'],
    ],
  );
  t.ok(
    events.every((e) => e.machine === sim.machine),
    'events name the machine',
  );
  t.same(requests, ['get power', 'set shutdown 1', 'set power 0', 'set power 1', 'set power 1', 'set reset 1'], 'the hook calls as ipmi_sim made them');
  unsubscribe();

  events.length = 0;
  t.match(await ipmitool(sim, 'chassis power soft'), { ok: true });
  t.equal(sim.power, 'on', 'the OS is shutting down');
  await until(() => sim.power === 'off');
  t.same(
    events.map((e) => [e.action, e.state, e.detail]),
    [
      ['soft-off', 'on', 'the OS shuts down in 100 ms'],
      ['soft-off', 'off', 'completed after 100 ms'],
    ],
  );

  // ipmi_sim's power cycle: off, then on again from its own one-second timer.
  await sim.setPowerDirect('on');
  events.length = 0;
  t.match(await ipmitool(sim, 'chassis power cycle'), { ok: true });
  await until(() => events.length >= 2);
  t.same(
    events.map((e) => [e.action, e.state]),
    [
      ['off', 'off'],
      ['on', 'on'],
    ],
  );
  t.equal(requests.length, 6, 'no calls after the unsubscribe');
});

t.test('setPowerDirect changes the power without an event and ends a shutdown under way', async (t) => {
  const { sim, events } = await started(t, { gracefulShutdownMs: 300 });
  await sim.setPowerDirect('on');
  t.equal(sim.power, 'on');
  t.match(await ipmitool(sim, 'chassis power status'), { stdout: 'Chassis Power is on' });
  t.same(events, []);

  await ipmitool(sim, 'chassis power soft');
  await sim.setPowerDirect('on');
  await sleep(450);
  t.equal(sim.power, 'on', 'the pending shutdown was dropped');
  t.same(
    events.map((e) => e.action),
    ['soft-off'],
  );
});

t.test('faults: hang, unreachable, wrong password, failing power on', async (t) => {
  const { sim, events } = await started(t);
  const firstPid = sim.pid ?? -1;

  await sim.setFaults({ hang: true });
  t.equal(await processState(firstPid), 'T', 'hang: ipmi_sim is stopped (SIGSTOP)');
  t.match(await ipmitool(sim, 'chassis power status'), { ok: false, stderr: /Get Auth Capabilities error|Unable to establish/ });
  await sim.setFaults({});
  t.not(await processState(firstPid), 'T', 'cleared: it runs again (SIGCONT)');
  t.equal(sim.pid, firstPid, 'the same process');
  t.match(await ipmitool(sim, 'chassis power status'), { ok: true });

  await sim.setFaults({ unreachable: true });
  t.equal(sim.pid, undefined, 'unreachable: ipmi_sim is not running');
  t.equal(await processState(firstPid), undefined);
  await sim.setFaults({});
  t.type(sim.pid, 'number', 'cleared: started again');
  t.match(await ipmitool(sim, 'chassis power status'), { ok: true });

  await sim.setFaults({ wrongPassword: true });
  const refused = await ipmitool(sim, 'chassis power status');
  t.equal(refused.ok, false, 'the real password no longer works');
  t.notOk((await readFile(join(scratch, `bmc-${sim.port}`, 'lan.conf'), 'utf8')).includes(PASSWORD), 'another password in the config');
  await sim.setFaults({ wrongPassword: true, hang: true });
  t.equal(await processState(sim.pid ?? -1), 'T', 'faults combine');
  await sim.setFaults({});
  t.match(await ipmitool(sim, 'chassis power status'), { ok: true });

  await sim.setFaults({ powerOnFails: true });
  t.match(await ipmitool(sim, 'chassis power on'), { ok: false, stderr: /Set Chassis Power Control to Up\/On failed: Unspecified error/ });
  t.equal(sim.power, 'off');
  t.match(events.at(-1), { action: 'on', result: 'failed', state: 'off' });
  await sim.setFaults({});
  t.match(await ipmitool(sim, 'chassis power on'), { ok: true });
  t.equal(sim.power, 'on');
});

t.test('the hook endpoint answers only its own simulator', async (t) => {
  const { sim } = await started(t);
  const script = await readFile(join(scratch, `bmc-${sim.port}`, 'chassis-control.sh'), 'utf8');
  const url = /'(http:\/\/127\.0\.0\.1:\d+\/chassis)'/.exec(script)?.[1];
  if (url === undefined) throw new Error('no control URL in the hook');
  t.equal((await fetch(url, { method: 'POST', body: 'set power 1\n' })).status, 403, 'no token');
  t.equal((await fetch(url, { method: 'POST', body: 'set power 1\n', headers: { 'x-bamel-sim-token': 'guess' } })).status, 403, 'wrong token');
  t.equal(sim.power, 'off');
});

t.test('freeUdpPort hands out a port once', async (t) => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freeUdpPort()));
  t.equal(new Set(ports).size, ports.length);
});
