import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BMC_EXIT_CODES } from '../../cmd/bmc.js';
import { freeUdpPort, IpmiSimBmc } from '../../hack/sim/ipmi-sim.js';
import { RedfishFakeServer } from '../../hack/sim/redfish-fake.js';
import type { SimPowerEvent } from '../../hack/sim/types.js';
import { BMC_SCHEMES } from '../../power/address.js';
import type { BmcErrorCode } from '../../power/errors.js';
import { freeTcpPort } from '../helpers/ports.js';

// `bamel bmc` as an operator runs it: a child process with flags, a password file, an
// exit code per error type. Each CLI start costs seconds (the TypeScript loader), so the
// subtests run side by side and each spawn checks as much as it can.

const root = fileURLToPath(new URL('../../', import.meta.url));
const USERNAME = 'admin';
// Distinct from anything the BMC could echo by accident, so a leak is unambiguous.
const PASSWORD = 'cli-Pw-7f3a9c';
const WRONG_PASSWORD = 'cli-Wrong-5e1d2b';

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

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The argument list the child was started with, as the kernel shows it. */
  cmdline: string;
  /** Every process command line seen while the child ran (sampled), when asked for. */
  seen: string[];
}

/** Every process's command line right now (the CLI's ipmitool children included). */
async function commandLines(): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const raw = await readFile(`/proc/${name}/cmdline`).catch(() => undefined);
    if (raw !== undefined && raw.length > 0) found.push(raw.toString('utf8').split('\0').join(' ').trim());
  }
  return found;
}

/** Runs `bamel ...` the way a user would; tap's TypeScript loader is in execArgv. */
function runCli(args: string[], opts: { sampleProcesses?: boolean } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, 'cmd/bamel.ts', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BAMEL_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    let cmdline = '';
    const seen = new Set<string>();
    let sampling: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('spawn', () => {
      // 'spawn' fires after exec: this is the argument list everyone on the host can read.
      void readFile(`/proc/${child.pid}/cmdline`)
        .then((raw) => (cmdline = raw.toString('utf8').split('\0').join(' ')))
        .catch(() => undefined);
      if (opts.sampleProcesses) {
        const sample = (): void => {
          void commandLines().then((lines) => {
            for (const l of lines) seen.add(l);
            if (child.exitCode === null && child.signalCode === null) sampling = setTimeout(sample, 20);
          });
        };
        sample();
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(sampling);
      resolve({ code: code ?? -1, stdout, stderr, cmdline, seen: [...seen] });
    });
  });
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
  const missing = ['ipmitool', 'ipmi_sim', 'curl'].filter((tool) => !onPath(tool));
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
    ['off-1', 'off'],
    ['on-graceful', 'on'],
    ['on-force', 'on'],
    ['auth', 'on'],
  ] as const) {
    const system = redfish.addSystem({ id, machine: `rack-cli-${id}`, credentials: { username: USERNAME, password: PASSWORD }, initialPower });
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

// CPU-bound CLI starts interleave with IPMI's waits (the 5 s gap between ipmitool runs).
t.jobs = 3;

t.test('redfish: status, on, graceful off and off --force print the state and exit 0', async (t) => {
  const events = (id: string) => redfishEvents.filter((e) => e.machine === `rack-cli-${id}`).map((e) => [e.action, e.result]);
  const [status, on, graceful, forced] = await Promise.all([
    runCli(['bmc', 'status', '--address', redfish.addressOf('off-1'), ...withPassword()]),
    // The same machine, after the status read: on, then on again (already in state).
    (async () => {
      await new Promise((r) => setTimeout(r, 0));
      return runCli(['bmc', 'on', '--address', redfish.addressOf('on-graceful').replace('on-graceful', 'off-1'), ...withPassword()]);
    })(),
    runCli(['bmc', 'off', '--address', redfish.addressOf('on-graceful'), ...withPassword(), '--graceful-timeout', '20']),
    runCli(['bmc', 'off', '--force', '--address', redfish.addressOf('on-force'), ...withPassword()]),
  ]);
  t.match(status, { code: 0, stderr: '' });
  t.ok(['off\n', 'on\n'].includes(status.stdout), `status printed one word: ${JSON.stringify(status.stdout)}`);
  t.same({ code: on.code, stdout: on.stdout, stderr: on.stderr }, { code: 0, stdout: 'on\n', stderr: '' });
  t.same({ code: graceful.code, stdout: graceful.stdout, stderr: graceful.stderr }, { code: 0, stdout: 'off\n', stderr: '' });
  t.same({ code: forced.code, stdout: forced.stdout, stderr: forced.stderr }, { code: 0, stdout: 'off\n', stderr: '' });
  t.same(events('off-1'), [['on', 'ok']], 'on sent On');
  t.same(events('on-graceful'), [['graceful-off', 'ok']], 'off without --force shuts down gracefully');
  t.same(events('on-force'), [['force-off', 'ok']], 'off --force sends ForceOff, no graceful shutdown first');

  const again = await runCli(['bmc', 'status', '--address', redfish.addressOf('off-1'), ...withPassword()]);
  t.same({ code: again.code, stdout: again.stdout }, { code: 0, stdout: 'on\n' }, 'status reads the new state');
  t.equal(redfish.sessionCount, 0, 'every CLI run deleted its session on the way out');
});

t.test('ipmi: status, on and off --force print the state and exit 0', async (t) => {
  const [off, on, other] = await Promise.all([ipmiSim(t, 'off'), ipmiSim(t, 'on'), ipmiSim(t, 'on')]);
  const [status, powerOn, forced] = await Promise.all([
    runCli(['bmc', 'status', '--address', other.address, ...withPassword()]),
    runCli(['bmc', 'on', '--address', off.address, ...withPassword()]),
    runCli(['bmc', 'off', '--force', '--address', on.address, ...withPassword()]),
  ]);
  t.same({ code: status.code, stdout: status.stdout, stderr: status.stderr }, { code: 0, stdout: 'on\n', stderr: '' });
  t.same({ code: powerOn.code, stdout: powerOn.stdout, stderr: powerOn.stderr }, { code: 0, stdout: 'on\n', stderr: '' });
  t.same({ code: forced.code, stdout: forced.stdout, stderr: forced.stderr }, { code: 0, stdout: 'off\n', stderr: '' });
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
  const results = await Promise.all(
    Object.entries(runs).map(async ([kind, { address, endpoint }]) => {
      const args = ['bmc', 'on', '--address', address, ...withPassword(wrongPasswordFile)];
      return { kind, endpoint, args, run: await runCli(args, { sampleProcesses: kind === 'ipmi' }) };
    }),
  );
  for (const { kind, endpoint, args, run } of results) {
    t.equal(run.code, BMC_EXIT_CODES.BMC_AUTH, `${kind}: exit ${BMC_EXIT_CODES.BMC_AUTH}`);
    t.equal(run.stdout, '', `${kind}: nothing on stdout`);
    t.match(run.stderr, /^bamel bmc on: BMC_AUTH: /, `${kind}: the error code first`);
    t.ok(run.stderr.includes(endpoint), `${kind}: stderr names the endpoint ${endpoint}`);
    t.match(run.stderr, /check the username and password/, `${kind}: and says what to fix`);
    for (const secret of [PASSWORD, WRONG_PASSWORD]) {
      t.notOk(run.stdout.includes(secret) || run.stderr.includes(secret), `${kind}: no password in the output`);
      t.notOk(args.some((a) => a.includes(secret)), `${kind}: no password among the arguments given`);
      t.notOk(run.cmdline.includes(secret), `${kind}: no password in /proc/<pid>/cmdline`);
    }
    t.ok(run.cmdline.includes(wrongPasswordFile), `${kind}: the kernel's view of the arguments was read (${run.cmdline.slice(-80)})`);
    if (kind === 'ipmi') {
      const ipmitools = run.seen.filter((l) => /(^|\/)ipmitool /.test(l) && l.includes(` -p ${ipmi.address.split(':').at(-1)} `));
      t.ok(ipmitools.length > 0, 'the sampler saw the ipmitool runs of the CLI');
      t.same(
        run.seen.filter((l) => l.includes(WRONG_PASSWORD) || l.includes(PASSWORD)),
        [],
        'no process on the host had the password in its command line while the CLI ran',
      );
    }
  }
  t.same(ipmi.events, [], 'the IPMI BMC was not powered');
  t.same(
    redfishEvents.filter((e) => e.machine === 'rack-cli-auth' && e.result !== 'refused'),
    [],
    'the Redfish BMC was not powered',
  );
});

t.test('a closed port: BMC_UNREACHABLE, exit 3', async (t) => {
  const [tcp, udp] = await Promise.all([freeTcpPort(), freeUdpPort()]);
  const runs = await Promise.all([
    runCli(['bmc', 'status', '--address', `redfish+http://127.0.0.1:${tcp}/redfish/v1/Systems/1`, ...withPassword()]),
    runCli(['bmc', 'status', '--address', `ipmi://127.0.0.1:${udp}`, ...withPassword()]),
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
  const [badScheme, withUserInfo, noPasswordFile, unreadable, noUsername] = await Promise.all([
    runCli(['bmc', 'status', '--address', 'ipmii://10.0.0.12', ...withPassword()]),
    runCli(['bmc', 'status', '--address', `redfish+https://${USERNAME}:${PASSWORD}@10.0.0.11/redfish/v1/Systems/1`, ...withPassword()]),
    runCli(['bmc', 'status', '--address', redfish.addressOf('auth'), '--username', USERNAME]),
    runCli(['bmc', 'status', '--address', redfish.addressOf('auth'), ...withPassword(join(scratch, 'no-such-file'))]),
    runCli(['bmc', 'status', '--address', redfish.addressOf('auth'), '--password-file', passwordFile]),
  ]);
  t.equal(badScheme.code, BMC_EXIT_CODES.USAGE);
  t.match(badScheme.stderr, /unknown scheme "ipmii"; expected one of /);
  for (const scheme of BMC_SCHEMES) t.ok(badScheme.stderr.includes(scheme), `lists the scheme ${scheme}`);

  t.equal(withUserInfo.code, BMC_EXIT_CODES.USAGE);
  t.match(withUserInfo.stderr, /contains credentials/);
  t.notOk(withUserInfo.stderr.includes(PASSWORD), 'the password typed into the address is not repeated');

  t.equal(noPasswordFile.code, BMC_EXIT_CODES.USAGE);
  t.match(noPasswordFile.stderr, /--password-file is required with --address/);

  t.equal(unreadable.code, BMC_EXIT_CODES.USAGE);
  t.match(unreadable.stderr, /cannot read the password file .*no-such-file: ENOENT/);

  t.equal(noUsername.code, BMC_EXIT_CODES.USAGE);
  t.match(noUsername.stderr, /--username is required/);
  for (const run of [badScheme, withUserInfo, noPasswordFile, unreadable, noUsername]) t.equal(run.stdout, '');
});

t.test('a hung BMC past --timeout: BMC_TIMEOUT, exit 6', { todo: 'cmd/bmc.ts aborts with AbortSignal.timeout: the DOMException TimeoutError exits 1' }, async (t) => {
  const system = redfish.addSystem({ id: 'hung', machine: 'rack-cli-hung', credentials: { username: USERNAME, password: PASSWORD } });
  await system.setFaults({ hang: true });
  t.teardown(() => system.stop());
  const run = await runCli(['bmc', 'status', '--address', redfish.addressOf('hung'), ...withPassword(), '--timeout', '2']);
  t.match(run.stderr, /BMC_TIMEOUT/);
  t.ok(run.stderr.includes(redfish.url.replace(/^http/, 'redfish+http')), 'names the endpoint');
  t.equal(run.code, BMC_EXIT_CODES.BMC_TIMEOUT);
});
