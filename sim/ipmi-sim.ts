import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmod, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, isIPv6, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import type { SimFaults, SimPowerEvent, SimPowerState, SimulatedBmc } from './types.js';

export interface IpmiSimBmcOptions {
  machine: string;
  /** An IP address (ipmi_sim binds it; 127.0.0.1 in tests). */
  host: string;
  /** UDP port; see freeUdpPort. */
  port: number;
  credentials: { username: string; password: string };
  initialPower?: SimPowerState;
  /** How long the simulated OS takes to shut down after a soft off. Infinity: it never does (only a hard off works). Default 2000. */
  gracefulShutdownMs?: number;
  /** Holds the generated config (mode 0600: it has the simulated BMC's password); created if missing. */
  workDir: string;
  logger?: Logger;
  /** Default 'ipmi_sim' (Debian package openipmi). */
  ipmiSimPath?: string;
  /** Used to wait until the BMC answers. Default 'ipmitool'. */
  ipmitoolPath?: string;
  /** How long start() waits for the BMC to answer. Default 10000. */
  startTimeoutMs?: number;
}

/** One call of the chassis-control hook, as ipmi_sim made it ("get power", "set power 1", ...). */
export interface ChassisRequest {
  op: 'get' | 'set';
  args: string[];
  /** Date.now() when the simulator received it. */
  at: number;
}

const DEFAULT_GRACEFUL_SHUTDOWN_MS = 2_000;
const DEFAULT_START_TIMEOUT_MS = 10_000;
const MAX_STDERR_CHARS = 8_192;
// IPMI 2.0 limits (and what ipmitool accepts); the config syntax wants no quotes or blanks.
const CONFIG_WORD = /^[A-Za-z0-9_.@:+=,%!#*~^-]+$/;
const SAFE_PATH = /^[A-Za-z0-9_./+-]+$/;
const HOOK_TOKEN_HEADER = 'x-bamel-sim-token';

// ipmi_sim runs in its own process group (so that stop() takes its hook children too); if
// the test or `bamel sim` dies without stop(), these are killed on the way out.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of liveGroups) killGroup(group, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

const handedOutPorts = new Set<number>();

/**
 * A UDP port nothing is bound to on `host`. ipmi_sim binds with SO_REUSEADDR, so a port
 * in use by another ipmi_sim would not make it fail: the kernel's choice is checked here,
 * and never handed out twice in one process.
 */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve(socket.address().port));
    });
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
}

/**
 * The simulated IPMI BMC of one machine: OpenIPMI's ipmi_sim speaking IPMI 2.0 on
 * host:port, whose chassis control program forwards every power request to this object.
 * The power state lives here, not in ipmi_sim, so that it survives the restarts that the
 * faults need and so that a test sees each request as it happens.
 */
export class IpmiSimBmc implements SimulatedBmc {
  readonly machine: string;
  readonly host: string;
  readonly port: number;
  private powerState: SimPowerState;
  private readonly opts: IpmiSimBmcOptions;
  private readonly log: Logger;
  private readonly gracefulShutdownMs: number;
  private readonly token = randomBytes(16).toString('hex');
  private readonly powerListeners = new Set<(event: SimPowerEvent) => void>();
  private readonly requestListeners = new Set<(request: ChassisRequest) => void>();
  private readonly files: string[] = [];
  private server: Server | undefined;
  private controlPort = 0;
  private child: ChildProcess | undefined;
  private childExited: Promise<void> = Promise.resolve();
  private childStderr = '';
  private runningPassword: string | undefined;
  private frozen = false;
  private faults: SimFaults = {};
  private shutdownTimer: NodeJS.Timeout | undefined;
  private shutdownPending = false;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(opts: IpmiSimBmcOptions) {
    this.opts = opts;
    this.machine = opts.machine;
    this.host = opts.host;
    this.port = opts.port;
    this.powerState = opts.initialPower ?? 'off';
    this.gracefulShutdownMs = opts.gracefulShutdownMs ?? DEFAULT_GRACEFUL_SHUTDOWN_MS;
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'ipmi-sim', machine: opts.machine, bmc: `${opts.host}:${opts.port}` });
  }

  /** Starts ipmi_sim and resolves once the BMC answers an IPMI session. */
  static async start(opts: IpmiSimBmcOptions): Promise<IpmiSimBmc> {
    validate(opts);
    const bmc = new IpmiSimBmc(opts);
    try {
      await mkdir(opts.workDir, { recursive: true, mode: 0o700 });
      await bmc.startControlServer();
      await bmc.writeStaticFiles();
      await bmc.startIpmiSim(opts.credentials.password);
    } catch (err) {
      await bmc.stop();
      throw err;
    }
    return bmc;
  }

  get power(): SimPowerState {
    return this.powerState;
  }

  /** The ipmi_sim process, while one runs (tests look for it in /proc). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  onPower(listener: (event: SimPowerEvent) => void): () => void {
    this.powerListeners.add(listener);
    return () => this.powerListeners.delete(listener);
  }

  /** Every call of the chassis-control hook, reads included: what actually reached the BMC. */
  onRequest(listener: (request: ChassisRequest) => void): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  /**
   * Sets the faults (the whole set: what is not named is cleared). unreachable: ipmi_sim is
   * stopped, so its port is closed. hang: ipmi_sim is SIGSTOPped, so requests queue
   * unanswered. wrongPassword: ipmi_sim runs with another password. powerOnFails: the hook
   * answers `set power 1` with an error, which ipmi_sim reports as completion code 0xFF.
   */
  setFaults(faults: SimFaults): Promise<void> {
    return this.serial(async () => {
      if (this.stopped) throw new Error(`the simulated BMC of ${this.machine} is stopped`);
      this.faults = { ...faults };
      this.log.info({ faults: this.faults }, 'faults set');
      if (faults.unreachable === true) {
        await this.stopIpmiSim();
        return;
      }
      const password = faults.wrongPassword === true ? wrongPasswordFor(this.opts.credentials.password) : this.opts.credentials.password;
      if (this.child === undefined || this.runningPassword !== password) {
        await this.stopIpmiSim();
        await this.startIpmiSim(password);
      }
      const pid = this.child?.pid;
      if (pid === undefined) return;
      if (faults.hang === true && !this.frozen) {
        process.kill(pid, 'SIGSTOP');
        this.frozen = true;
        await untilStopped(pid, true);
      } else if (faults.hang !== true && this.frozen) {
        process.kill(pid, 'SIGCONT');
        this.frozen = false;
        await untilStopped(pid, false);
      }
    });
  }

  setPowerDirect(state: SimPowerState): Promise<void> {
    this.cancelShutdown();
    this.powerState = state;
    this.log.info({ state }, 'power set directly');
    return Promise.resolve();
  }

  /** Kills ipmi_sim and its hook children, closes the control server, removes the files. */
  stop(): Promise<void> {
    if (this.stopped) return this.chain;
    this.stopped = true;
    return this.serial(async () => {
      this.cancelShutdown();
      await this.stopIpmiSim();
      if (this.server !== undefined) {
        const server = this.server;
        this.server = undefined;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await Promise.all(this.files.map((f) => rm(f, { recursive: true, force: true })));
      // Only if nothing else lives there: the directory may be the caller's.
      await rmdir(this.opts.workDir).catch(() => undefined);
      this.powerListeners.clear();
      this.requestListeners.clear();
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private get stateDir(): string {
    return join(this.opts.workDir, 'state');
  }

  private get configPath(): string {
    return join(this.opts.workDir, 'lan.conf');
  }

  private async startControlServer(): Promise<void> {
    const server = createServer((req, res) => this.handleHook(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.controlPort = (server.address() as AddressInfo).port;
  }

  private async writeStaticFiles(): Promise<void> {
    const hook = join(this.opts.workDir, 'chassis-control.sh');
    // ipmi_sim popen()s this for every power read and change and waits for it, with the
    // whole BMC blocked meanwhile: a shell and curl start in milliseconds, node would not.
    // The token keeps a hook of a stopped simulator from changing one that reuses the port.
    const script = [
      '#!/bin/sh',
      '# Written by IpmiSimBmc: ipmi_sim runs "<this> <tag> get power" or "<this> <tag> set power 1";',
      '# the arguments after the tag go, one per line, to the simulator that owns the power state.',
      'shift',
      `printf '%s\\n' "$@" | curl --silent --show-error --fail-with-body --noproxy '*' --max-time 10 \\`,
      `  -H '${HOOK_TOKEN_HEADER}: ${this.token}' --data-binary @- 'http://127.0.0.1:${this.controlPort}/chassis'`,
      '',
    ].join('\n');
    await this.writePrivate(hook, script, 0o700);
    const emu = join(this.opts.workDir, 'bmc.emu');
    // One BMC at IPMB 0x20 with no sensors: the chassis commands are all the driver uses.
    await this.writePrivate(emu, ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02', 'mc_enable 0x20', ''].join('\n'), 0o600);
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    this.files.push(this.stateDir);
  }

  private lanConfig(password: string): string {
    const guid = randomBytes(16).toString('hex');
    const hook = join(this.opts.workDir, 'chassis-control.sh');
    return [
      `name "${this.opts.machine.replace(/[^A-Za-z0-9_.-]/g, '_')}"`,
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr ${this.host} ${this.port}`,
      '    priv_limit admin',
      // Only the RMCP+ (IPMI 2.0) path is exercised; 1.5 auth types stay for ipmitool -I lan.
      '    allowed_auths_callback md5',
      '    allowed_auths_user md5',
      '    allowed_auths_operator md5',
      '    allowed_auths_admin md5',
      `    guid ${guid}`,
      '  endlan',
      `  chassis_control "${hook} 0x20"`,
      `  user 2 true "${this.opts.credentials.username}" "${password}" admin 10 md5`,
      '',
    ].join('\n');
  }

  private async writePrivate(path: string, content: string, mode: number): Promise<void> {
    await writeFile(path, content, { mode });
    // writeFile's mode only applies to a new file and goes through the umask.
    await chmod(path, mode);
    if (!this.files.includes(path)) this.files.push(path);
  }

  private async startIpmiSim(password: string): Promise<void> {
    await this.writePrivate(this.configPath, this.lanConfig(password), 0o600);
    const emu = join(this.opts.workDir, 'bmc.emu');
    // -n: no console on stdin; -p: nothing persisted (users come from the config every time).
    const args = ['-c', this.configPath, '-f', emu, '-s', this.stateDir, '-n', '-p'];
    const child = spawn(this.opts.ipmiSimPath ?? 'ipmi_sim', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    this.child = child;
    this.frozen = false;
    this.runningPassword = password;
    this.childStderr = '';
    const collect = (chunk: Buffer): void => {
      this.childStderr = (this.childStderr + chunk.toString('utf8')).slice(-MAX_STDERR_CHARS);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited = false;
    let exitDescription = '';
    this.childExited = new Promise<void>((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        exited = true;
        exitDescription = `could not be started: ${err.code ?? err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exited = true;
        exitDescription = signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`;
        if (child.pid !== undefined) liveGroups.delete(child.pid);
        if (this.child === child && !this.stopped) this.log.warn({ code, signal, stderr: this.childStderr.trim() }, 'ipmi_sim exited');
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    if (child.pid !== undefined) trackGroup(child.pid);

    const deadline = Date.now() + (this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const probing = new AbortController();
    void this.childExited.then(() => probing.abort());
    for (;;) {
      if (!exited && (await this.answers(password, probing.signal))) break;
      if (exited) throw new Error(`ipmi_sim for ${this.machine} (${this.host}:${this.port}) ${exitDescription}: ${this.childStderr.trim() || '(no output)'}`);
      if (Date.now() > deadline) {
        await this.stopIpmiSim();
        throw new Error(`ipmi_sim for ${this.machine} (${this.host}:${this.port}) did not answer within ${this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms: ${this.childStderr.trim() || '(no output)'}`);
      }
      await sleep(50);
    }
    this.log.info({ pid: child.pid }, 'ipmi_sim answers');
  }

  /**
   * One quick session with the password ipmi_sim runs with. Get Device ID (`mc info`),
   * not a power read: the hook sees only the requests of the code under test.
   */
  private answers(password: string, signal: AbortSignal): Promise<boolean> {
    const { username } = this.opts.credentials;
    const args = ['-I', 'lanplus', '-H', this.host, '-p', String(this.port), '-U', username, '-L', 'ADMINISTRATOR', '-R', '1', '-N', '1', '-C', '3', '-E', 'mc', 'info'];
    return new Promise((resolve) => {
      execFile(
        this.opts.ipmitoolPath ?? 'ipmitool',
        args,
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: password }, timeout: 3_000, killSignal: 'SIGKILL', signal },
        (err) => resolve(err === null),
      );
    });
  }

  private async stopIpmiSim(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (child.pid !== undefined) {
      // SIGKILL works on a stopped process too, and the group takes a hook still running.
      killGroup(child.pid, 'SIGKILL');
    }
    await this.childExited;
    this.child = undefined;
    this.frozen = false;
    this.runningPassword = undefined;
  }

  private handleHook(req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    };
    if (req.method !== 'POST' || req.url !== '/chassis' || req.headers[HOOK_TOKEN_HEADER] !== this.token) {
      reply(403, 'not this simulator\n');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 4096) req.destroy();
    });
    req.on('end', () => {
      const [op, ...args] = body.split('\n').filter((line) => line !== '');
      if (op !== 'get' && op !== 'set') {
        reply(400, `unknown operation: ${op ?? '(none)'}\n`);
        return;
      }
      const request: ChassisRequest = { op, args, at: Date.now() };
      for (const listener of this.requestListeners) listener(request);
      const { status, text } = op === 'get' ? this.chassisGet(args) : this.chassisSet(args);
      reply(status, text);
    });
  }

  private chassisGet(parms: string[]): { status: number; text: string } {
    const lines: string[] = [];
    for (const parm of parms) {
      if (parm === 'power') lines.push(`power:${this.powerState === 'on' ? 1 : 0}`);
      else if (parm === 'boot') lines.push('boot:default');
      else return { status: 400, text: `Invalid parameter: ${parm}\n` };
    }
    return { status: 200, text: lines.map((l) => `${l}\n`).join('') };
  }

  private chassisSet(args: string[]): { status: number; text: string } {
    for (let i = 0; i + 1 < args.length; i += 2) {
      const parm = args[i] ?? '';
      const value = args[i + 1] ?? '';
      const failure = this.setOne(parm, value);
      if (failure !== undefined) return { status: 500, text: `${failure}\n` };
    }
    if (args.length % 2 !== 0) return { status: 400, text: `No value present for parameter ${args.at(-1) ?? ''}\n` };
    return { status: 200, text: '' };
  }

  /** One "set" pair; returns an error text when the request fails. */
  private setOne(parm: string, value: string): string | undefined {
    switch (parm) {
      case 'power':
        return value === '1' ? this.powerOn() : this.powerOff();
      case 'shutdown':
        this.softOff();
        return undefined;
      case 'reset':
        this.emit('reset', this.powerState === 'on' ? 'ok' : 'already', this.powerState === 'on' ? 'the OS restarts' : 'the machine is off');
        return undefined;
      case 'boot':
      case 'identify':
        this.log.debug({ parm, value }, 'chassis setting accepted');
        return undefined;
      default:
        return `Invalid parameter: ${parm}`;
    }
  }

  private powerOn(): string | undefined {
    if (this.faults.powerOnFails === true) {
      this.emit('on', 'failed', 'simulated power-on failure');
      return 'power on failed (simulated fault)';
    }
    if (this.powerState === 'on') {
      this.emit('on', 'already');
      return undefined;
    }
    this.cancelShutdown();
    this.powerState = 'on';
    this.emit('on', 'ok');
    return undefined;
  }

  private powerOff(): undefined {
    const was = this.powerState;
    this.cancelShutdown();
    this.powerState = 'off';
    this.emit('off', was === 'off' ? 'already' : 'ok');
    return undefined;
  }

  private softOff(): void {
    if (this.powerState === 'off') {
      this.emit('soft-off', 'already');
      return;
    }
    if (this.shutdownPending) {
      this.emit('soft-off', 'ok', 'a shutdown is already under way');
      return;
    }
    if (!Number.isFinite(this.gracefulShutdownMs)) {
      this.emit('soft-off', 'ok', 'the OS ignores it: only a hard power off works');
      return;
    }
    this.shutdownPending = true;
    const delay = Math.max(0, this.gracefulShutdownMs);
    this.emit('soft-off', 'ok', `the OS shuts down in ${delay} ms`);
    this.shutdownTimer = setTimeout(() => {
      this.shutdownTimer = undefined;
      this.shutdownPending = false;
      this.powerState = 'off';
      // Listeners follow the power through events: the change that lands later gets its own.
      this.emit('soft-off', 'ok', `completed after ${delay} ms`);
    }, delay);
    this.shutdownTimer.unref();
  }

  private cancelShutdown(): void {
    if (this.shutdownTimer !== undefined) clearTimeout(this.shutdownTimer);
    this.shutdownTimer = undefined;
    this.shutdownPending = false;
  }

  private emit(action: string, result: SimPowerEvent['result'], detail?: string): void {
    const event: SimPowerEvent = { machine: this.machine, action, result, state: this.powerState, ...(detail === undefined ? {} : { detail }) };
    this.log.info(event, 'power request');
    for (const listener of this.powerListeners) listener(event);
  }
}

function validate(opts: IpmiSimBmcOptions): void {
  const where = `simulated IPMI BMC of ${opts.machine}`;
  if (isIP(opts.host) === 0) throw new Error(`${where}: host must be an IP address, not ${JSON.stringify(opts.host)}`);
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new Error(`${where}: port ${opts.port} is out of range`);
  const { username, password } = opts.credentials;
  if (!CONFIG_WORD.test(username) || Buffer.byteLength(username) > 16) throw new Error(`${where}: the username must be 1 to 16 characters without blanks or quotes`);
  // Checked without repeating the password: this message may be logged.
  if (!CONFIG_WORD.test(password) || Buffer.byteLength(password) > 20) throw new Error(`${where}: the password must be 1 to 20 characters without blanks or quotes`);
  // ipmi_sim hands the hook's path to a shell, unquoted.
  if (!SAFE_PATH.test(opts.workDir)) throw new Error(`${where}: workDir ${JSON.stringify(opts.workDir)} must consist of letters, digits and _ . / + -`);
}

/**
 * Waits until the kernel shows the process stopped (or running again): SIGSTOP lands when
 * the process is next scheduled, and a request sent before that would still be answered.
 */
async function untilStopped(pid: number, stopped: boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
    if ((state === 'T') === stopped) return;
    await sleep(5);
  }
}

function wrongPasswordFor(password: string): string {
  let other = `wrong-${randomBytes(4).toString('hex')}`;
  while (other === password) other = `wrong-${randomBytes(4).toString('hex')}`;
  return other;
}
