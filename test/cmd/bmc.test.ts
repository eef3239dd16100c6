import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BMC_EXIT_CODES, runBmc } from '../../cmd/bmc.js';
import { freeUdpPort, IpmiSimBmc } from '../../sim/ipmi-sim.js';
import { RedfishFakeServer } from '../../sim/redfish-fake.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { BMC_SCHEMES } from '../../power/address.js';
import type { BmcErrorCode } from '../../power/errors.js';
import { freeTcpPort } from '../helpers/ports.js';
import { bamelEntry } from '../integration/helpers/cluster.js';

// `bamel bmc` as an operator runs it: a child process with flags, a password file, an
// exit code per error type. Starting the CLI from source costs seconds of CPU (the
// TypeScript loader), so real children run each subcommand, --force, a success, a usage
// error and a refused login; the other combinations call runBmc, whose return value is
// the command's exit code, in this process.

const root = fileURLToPath(new URL('../../', import.meta.url));
const USERNAME = 'admin';
// Distinct from anything the BMC could echo by accident, so a leak is unambiguous.
const PASSWORD = 'cli-Pw-7f3a9c';
const WRONG_PASSWORD = 'cli-Wrong-5e1d2b';

/** Where `tool` is found in PATH, if anywhere. */
function onPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return join(dir, tool);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The argument list the child was started with, as the kernel shows it to every user. */
  cmdline: string;
}

/** Runs `bamel ...` the way a user would (from dist/ after `make build` in the test runner, else from source). */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...bamelEntry(), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BAMEL_LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    let cmdline: Promise<string> = Promise.resolve('');
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('spawn', () => {
      // 'spawn' fires after exec, and the CLI runs for seconds: there is time to read it.
      cmdline = readFile(`/proc/${child.pid}/cmdline`)
        .then((raw) => raw.toString('utf8').split('\0').join(' '))
        .catch(() => '');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      void cmdline.then((line) => resolve({ code: code ?? -1, stdout, stderr, cmdline: line }));
    });
  });
}

/** An ipmitool first on PATH that logs its arguments, then runs the real one. */
async function recordingIpmitool(): Promise<{ dir: string; calls: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(scratch, 'ipmitool-'));
  const log = join(dir, 'calls');
  // By its full path: with this directory first on PATH, "ipmitool" would be the wrapper.
  const real = onPath('ipmitool') ?? 'ipmitool';
  await writeFile(join(dir, 'ipmitool'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  return { dir, calls: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '') };
}

/** The exit code the CLI owes for the error code it printed ("bamel bmc ACTION: CODE: ..."). */
function typedExit(stderr: string): { code: BmcErrorCode; exit: number } | undefined {
  const printed = /^bamel bmc \w+: (BMC_[A-Z]+): /m.exec(stderr)?.[1] as BmcErrorCode | undefined;
  return printed === undefined ? undefined : { code: printed, exit: BMC_EXIT_CODES[printed] };
}

let scratch = '';
let passwordFile = '';
let wrongPasswordFile = '';
let redfish: RedfishFakeServer;
const redfishEvents: SimPowerEvent[] = [];

t.before(async () => {
  const missing = ['ipmitool', 'ipmi_sim', 'curl'].filter((tool) => onPath(tool) === undefined);
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not found in PATH: install them with hack/install-system-deps.sh (Debian packages ipmitool openipmi curl)`);
  }
  scratch = await mkdtemp(join(tmpdir(), 'bamel-bmc-cli-'));
  passwordFile = join(scratch, 'password');
  wrongPasswordFile = join(scratch, 'wrong-password');
  // A trailing newline, as `echo pw > file` leaves it: the CLI must strip it.
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  await writeFile(wrongPasswordFile, `${WRONG_PASSWORD}\n`, { mode: 0o600 });
  redfish = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await redfish.start();
  for (const [id, initialPower] of [
    ['status', 'off'],
    ['off-1', 'off'],
    ['on-graceful', 'on'],
    ['on-force', 'on'],
    ['auth', 'on'],
    ['power', 'on'],
    ['no-reading', 'on'],
  ] as const) {
    const profile = id === 'power' ? 'power-environmentmetrics-only' : id === 'no-reading' ? 'no-power-reading' : 'generic';
    const draw = { idleWatts: 180, maxWatts: 420 };
    const system = redfish.addSystem({ id, machine: `rack-cli-${id}`, credentials: { username: USERNAME, password: PASSWORD }, initialPower, profile, draw });
    // Requests only: a change that lands later also reports its completion.
    system.onPower((e) => {
      if (!(e.detail ?? '').startsWith('completed')) redfishEvents.push(e);
    });
  }
});

t.teardown(async () => {
  await redfish?.stop();
  await rm(scratch, { recursive: true, force: true });
});

async function ipmiSim(tt: { teardown(fn: () => unknown): void }, initialPower: 'on' | 'off'): Promise<{ sim: IpmiSimBmc; address: string; events: SimPowerEvent[] }> {
  const port = await freeUdpPort();
  const sim = await IpmiSimBmc.start({
    machine: `rack-cli-ipmi-${port}`,
    host: '127.0.0.1',
    port,
    credentials: { username: USERNAME, password: PASSWORD },
    initialPower,
    workDir: await mkdtemp(join(scratch, 'ipmi-')),
  });
  tt.teardown(() => sim.stop());
  const events: SimPowerEvent[] = [];
  sim.onPower((e) => events.push(e));
  return { sim, address: `ipmi://127.0.0.1:${port}`, events };
}

const withPassword = (file = passwordFile): string[] => ['--username', USERNAME, '--password-file', file];

type BmcFlags = Parameters<typeof runBmc>[1];
type BmcIo = NonNullable<Parameters<typeof runBmc>[2]>;

/** The command's action without the process around it; the defaults are the CLI's. */
async function runInProcess(action: 'status' | 'on' | 'off' | 'power', flags: Partial<BmcFlags>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  // runBmc only ever calls write(): a string sink stands in for the process streams.
  const io = {
    out: { write: (text: string) => ((stdout += text), true) },
    err: { write: (text: string) => ((stderr += text), true) },
  } as unknown as BmcIo;
  const code = await runBmc(action, { timeout: '300', gracefulTimeout: '180', ...flags }, io);
  return { code, stdout, stderr };
}

const credentialFlags = (file = passwordFile): Partial<BmcFlags> => ({ username: USERNAME, passwordFile: file });

// CPU-bound CLI starts interleave with IPMI's waits (the 5 s gap between ipmitool runs).
t.jobs = 3;

t.test('redfish: status, on, graceful off and off --force print the state and exit 0', async (t) => {
  const events = (id: string) => redfishEvents.filter((e) => e.machine === `rack-cli-${id}`).map((e) => [e.action, e.result]);
  const [status, forced, on, graceful] = await Promise.all([
    runInProcess('status', { address: redfish.addressOf('status'), ...credentialFlags() }),
    runCli(['bmc', 'off', '--force', '--address', redfish.addressOf('on-force'), ...withPassword()]),
    runInProcess('on', { address: redfish.addressOf('off-1'), ...credentialFlags() }),
    runInProcess('off', { address: redfish.addressOf('on-graceful'), ...credentialFlags(), gracefulTimeout: '20' }),
  ]);
  t.same(status, { code: 0, stdout: 'off\n', stderr: '' });
  t.same(forced, { ...forced, code: 0, stdout: 'off\n', stderr: '' });
  t.same(on, { code: 0, stdout: 'on\n', stderr: '' });
  t.same(graceful, { code: 0, stdout: 'off\n', stderr: '' });
  t.same(events('status'), [], 'status changed nothing');
  t.same(events('on-force'), [['force-off', 'ok']], 'off --force sends ForceOff, no graceful shutdown first');
  t.same(events('off-1'), [['on', 'ok']], 'on sent On');
  t.same(events('on-graceful'), [['graceful-off', 'ok']], 'off without --force shuts down gracefully');
  t.equal(redfish.sessionCount, 0, 'every run deleted its session on the way out');
});

t.test('ipmi: status, on and off --force print the state and exit 0', async (t) => {
  const [off, on, other] = await Promise.all([ipmiSim(t, 'off'), ipmiSim(t, 'on'), ipmiSim(t, 'on')]);
  const [status, powerOn, forced] = await Promise.all([
    runCli(['bmc', 'status', '--address', other.address, ...withPassword()]),
    runInProcess('on', { address: off.address, ...credentialFlags() }),
    runInProcess('off', { address: on.address, ...credentialFlags(), force: true }),
  ]);
  t.same(status, { ...status, code: 0, stdout: 'on\n', stderr: '' });
  t.same(powerOn, { code: 0, stdout: 'on\n', stderr: '' });
  t.same(forced, { code: 0, stdout: 'off\n', stderr: '' });
  t.equal(off.sim.power, 'on');
  t.equal(on.sim.power, 'off');
  t.same(off.events.map((e) => [e.action, e.result]), [['on', 'ok']]);
  t.same(on.events.map((e) => [e.action, e.result]), [['off', 'ok']], 'a hard off, no soft off first');
  t.same(other.events, [], 'status changed nothing');
});

t.test('a wrong password: exit 4, BMC_AUTH and the endpoint, and no password anywhere', async (t) => {
  const ipmi = await ipmiSim(t, 'off');
  const redfishAddress = redfish.addressOf('auth');
  const runs = {
    redfish: { address: redfishAddress, endpoint: redfishAddress.replace(/\/redfish\/v1\/.*$/, '') },
    ipmi: { address: ipmi.address, endpoint: ipmi.address },
  };
  const ipmitool = await recordingIpmitool();
  const results = await Promise.all(
    Object.entries(runs).map(async ([kind, { address, endpoint }]) => {
      const args = ['bmc', 'on', '--address', address, ...withPassword(wrongPasswordFile)];
      const env = kind === 'ipmi' ? { PATH: `${ipmitool.dir}${delimiter}${process.env.PATH ?? ''}` } : {};
      return { kind, endpoint, args, run: await runCli(args, env) };
    }),
  );
  for (const { kind, endpoint, args, run } of results) {
    t.equal(run.code, BMC_EXIT_CODES.BMC_AUTH, `${kind}: exit ${BMC_EXIT_CODES.BMC_AUTH}`);
    t.equal(run.stdout, '', `${kind}: nothing on stdout`);
    t.match(run.stderr, /^bamel bmc on: BMC_AUTH: /, `${kind}: the error code first`);
    t.ok(run.stderr.includes(endpoint), `${kind}: stderr names the endpoint ${endpoint}`);
    t.match(run.stderr, /check the username and password/, `${kind}: and says what to fix`);
    t.ok(run.cmdline.includes(wrongPasswordFile), `${kind}: the kernel's view of the arguments was read`);
    for (const secret of [PASSWORD, WRONG_PASSWORD]) {
      t.notOk(run.stdout.includes(secret) || run.stderr.includes(secret), `${kind}: no password in the output`);
      t.notOk(args.some((a) => a.includes(secret)), `${kind}: no password among the arguments given`);
      t.notOk(run.cmdline.includes(secret), `${kind}: no password in /proc/<pid>/cmdline`);
    }
  }
  // The CLI's own children: ipmitool gets the password through its environment (-E).
  const calls = await ipmitool.calls();
  const port = ipmi.address.split(':').at(-1) ?? '';
  t.ok(calls.length > 0 && calls.every((c) => c.includes(` -p ${port} `) && / -E( |$)/.test(c)), `ipmitool ran with -E: ${calls.join(' | ')}`);
  t.same(
    calls.filter((c) => c.includes(PASSWORD) || c.includes(WRONG_PASSWORD)),
    [],
    'no ipmitool argument list held the password',
  );
  t.same(ipmi.events, [], 'the IPMI BMC was not powered');
  t.same(
    redfishEvents.filter((e) => e.machine === 'rack-cli-auth'),
    [],
    'the Redfish BMC was not powered',
  );
});

t.test('a closed port: BMC_UNREACHABLE, exit 3', async (t) => {
  const [tcp, udp] = await Promise.all([freeTcpPort(), freeUdpPort()]);
  const runs = await Promise.all([
    runInProcess('status', { address: `redfish+http://127.0.0.1:${tcp}/redfish/v1/Systems/1`, ...credentialFlags() }),
    runInProcess('status', { address: `ipmi://127.0.0.1:${udp}`, ...credentialFlags() }),
  ]);
  for (const [i, run] of runs.entries()) {
    const port = i === 0 ? tcp : udp;
    const typed = typedExit(run.stderr);
    t.ok(typed !== undefined && ['BMC_UNREACHABLE', 'BMC_TIMEOUT'].includes(typed.code), `a network error type: ${run.stderr.trim()}`);
    t.equal(run.code, typed?.exit, 'the exit code of the type it printed');
    // Nothing listens on loopback: the kernel says so at once (RST, ICMP port unreachable).
    t.equal(typed?.code, 'BMC_UNREACHABLE');
    t.equal(run.code, 3);
    t.ok(run.stderr.includes(`127.0.0.1:${port}`), 'names the endpoint');
    t.equal(run.stdout, '');
  }
});

t.test('usage errors exit 2 and say what to give', async (t) => {
  const badScheme = await runCli(['bmc', 'status', '--address', 'ipmii://10.0.0.12', ...withPassword()]);
  t.equal(badScheme.code, BMC_EXIT_CODES.USAGE);
  t.match(badScheme.stderr, /unknown scheme "ipmii"; expected one of /);
  for (const scheme of BMC_SCHEMES) t.ok(badScheme.stderr.includes(scheme), `lists the scheme ${scheme}`);

  const noPasswordFile = await runInProcess('status', { address: redfish.addressOf('auth'), username: USERNAME });
  t.equal(noPasswordFile.code, BMC_EXIT_CODES.USAGE);
  t.match(noPasswordFile.stderr, /--password-file is required with --address \(passwords are never taken as arguments\)/);

  const withUserInfo = await runInProcess('status', { address: `redfish+https://${USERNAME}:${PASSWORD}@10.0.0.11/redfish/v1/Systems/1`, ...credentialFlags() });
  t.equal(withUserInfo.code, BMC_EXIT_CODES.USAGE);
  t.match(withUserInfo.stderr, /contains credentials/);
  t.notOk(withUserInfo.stderr.includes(PASSWORD), 'the password typed into the address is not repeated');

  const unreadable = await runInProcess('status', { address: redfish.addressOf('auth'), ...credentialFlags(join(scratch, 'no-such-file')) });
  t.equal(unreadable.code, BMC_EXIT_CODES.USAGE);
  t.match(unreadable.stderr, /cannot read the password file .*no-such-file: ENOENT/);

  const noUsername = await runInProcess('status', { address: redfish.addressOf('auth'), passwordFile });
  t.equal(noUsername.code, BMC_EXIT_CODES.USAGE);
  t.match(noUsername.stderr, /--username is required/);

  const neither = await runInProcess('status', {});
  t.equal(neither.code, BMC_EXIT_CODES.USAGE);
  t.match(neither.stderr, /give --address, --username and --password-file, or --inventory and --machine/);
  for (const run of [badScheme, noPasswordFile, withUserInfo, unreadable, noUsername, neither]) t.equal(run.stdout, '');
});

t.test('a hung BMC past --timeout: BMC_TIMEOUT, exit 6', async (t) => {
  // Its own user: its hung requests then concern it alone, not the other tests' systems.
  const system = redfish.addSystem({ id: 'hung', machine: 'rack-cli-hung', credentials: { username: 'hung-user', password: PASSWORD } });
  await system.setFaults({ hang: true });
  t.teardown(() => system.stop());
  const run = await runInProcess('status', { address: redfish.addressOf('hung'), username: 'hung-user', passwordFile, timeout: '1' });
  t.match(run.stderr, /BMC_TIMEOUT/);
  t.ok(run.stderr.includes(redfish.url.replace(/^http/, 'redfish+http')), 'names the endpoint');
  t.equal(run.code, BMC_EXIT_CODES.BMC_TIMEOUT);
});

t.test('power: the reading in watts and its source; a BMC without one says so and exits 9', async (t) => {
  const ipmi = await ipmiSim(t, 'on');
  const [child, json, none, dcmi] = await Promise.all([
    runCli(['bmc', 'power', '--address', redfish.addressOf('power'), ...withPassword()]),
    runInProcess('power', { address: redfish.addressOf('power'), ...credentialFlags(), json: true }),
    runInProcess('power', { address: redfish.addressOf('no-reading'), ...credentialFlags() }),
    // OpenIPMI's ipmi_sim has no DCMI: Get Power Reading answers "Invalid command (c1)".
    runInProcess('power', { address: ipmi.address, ...credentialFlags() }),
  ]);
  t.same(child, { ...child, code: 0, stdout: '180 W (redfish-environmentmetrics)\n', stderr: '' });
  t.equal(json.code, 0);
  t.match(JSON.parse(json.stdout), { watts: 180, source: 'redfish-environmentmetrics', observedAt: String });
  t.equal(none.code, BMC_EXIT_CODES.NO_READING);
  t.equal(none.code, 9);
  t.equal(none.stdout, '');
  t.match(none.stderr, /^bamel bmc power: NO_READING: redfish\+http:\/\/127\.0\.0\.1:\d+ offers no power reading: the chassis \/redfish\/v1\/Chassis\/no-reading offers no power reading/);
  t.equal(dcmi.code, 9, dcmi.stderr);
  t.match(dcmi.stderr, /NO_READING: ipmi:\/\/127\.0\.0\.1:\d+ offers no power reading: the BMC offers no DCMI power reading: .*DCMI request failed because: Invalid command \(c1\)/);
  t.same(ipmi.events, [], 'reading changed nothing');
  const help = await runCli(['bmc', 'power', '--help']);
  t.match(help.stdout, /Exit codes:[\s\S]*9 {2}NO_READING: power: the BMC offers no power reading/);
  t.match(help.stdout, /--json/);
});
