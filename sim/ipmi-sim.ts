import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { pino, type Logger } from 'pino';
import { SimChassis, type PowerDraw, type SimActivity } from './chassis.js';
import { ChassisHookServer, type ChassisRequest, type HookReply } from './ipmi-sim/hook.js';
import { IpmiSimProcess } from './ipmi-sim/process.js';
import type { SimFaults, SimPowerEvent, SimPowerState, SimulatedBmc } from './types.js';

export type { ChassisRequest } from './ipmi-sim/hook.js';
export { freeUdpPort } from './ipmi-sim/port.js';

export interface IpmiSimBmcOptions {
  machine: string;
  /** An IP address (ipmi_sim binds it; 127.0.0.1 in tests). */
  host: string;
  /** UDP port; see freeUdpPort. */
  port: number;
  credentials: { username: string; password: string };
  initialPower?: SimPowerState;
  /** What the machine draws. ipmi_sim cannot report it: OpenIPMI's lanserv has no DCMI (Get Power Reading answers 0xC1). */
  draw?: PowerDraw;
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

const DEFAULT_GRACEFUL_SHUTDOWN_MS = 2_000;
// IPMI 2.0 limits (and what ipmitool accepts); the config syntax wants no quotes or blanks.
const CONFIG_WORD = /^[A-Za-z0-9_.@:+=,%!#*~^-]+$/;
const SAFE_PATH = /^[A-Za-z0-9_./+-]+$/;

/**
 * The simulated IPMI BMC of one machine: OpenIPMI's ipmi_sim speaking IPMI 2.0 on
 * host:port, whose chassis control program forwards every power request to this object.
 * The power state lives here (a SimChassis), not in ipmi_sim, so that it survives the
 * restarts that the faults need and so that a test sees each request as it happens.
 */
export class IpmiSimBmc implements SimulatedBmc {
  readonly machine: string;
  readonly host: string;
  readonly port: number;
  private readonly opts: IpmiSimBmcOptions;
  private readonly log: Logger;
  private readonly gracefulShutdownMs: number;
  private readonly chassis: SimChassis;
  private readonly hook: ChassisHookServer;
  private readonly ipmiSim: IpmiSimProcess;
  private readonly requestListeners = new Set<(request: ChassisRequest) => void>();
  private faults: SimFaults = {};
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(opts: IpmiSimBmcOptions) {
    this.opts = opts;
    this.machine = opts.machine;
    this.host = opts.host;
    this.port = opts.port;
    this.gracefulShutdownMs = opts.gracefulShutdownMs ?? DEFAULT_GRACEFUL_SHUTDOWN_MS;
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'ipmi-sim', machine: opts.machine, bmc: `${opts.host}:${opts.port}` });
    this.chassis = new SimChassis({ machine: opts.machine, initialPower: opts.initialPower ?? 'off', ...(opts.draw ? { draw: opts.draw } : {}), log: (event) => this.log.info(event, 'power request') });
    this.hook = new ChassisHookServer((request) => this.handleHook(request));
    this.ipmiSim = new IpmiSimProcess({
      machine: opts.machine,
      host: opts.host,
      port: opts.port,
      username: opts.credentials.username,
      workDir: opts.workDir,
      ipmiSimPath: opts.ipmiSimPath,
      ipmitoolPath: opts.ipmitoolPath,
      startTimeoutMs: opts.startTimeoutMs,
      log: this.log,
      stopping: () => this.stopped,
    });
  }

  /** Starts ipmi_sim and resolves once the BMC answers an IPMI session. */
  static async start(opts: IpmiSimBmcOptions): Promise<IpmiSimBmc> {
    validate(opts);
    const bmc = new IpmiSimBmc(opts);
    try {
      await mkdir(opts.workDir, { recursive: true, mode: 0o700 });
      await bmc.hook.listen();
      // The token keeps a hook of a stopped simulator from changing one that reuses the port.
      await bmc.ipmiSim.writeStaticFiles(bmc.hook.script());
      await bmc.ipmiSim.start(opts.credentials.password);
    } catch (err) {
      await bmc.stop();
      throw err;
    }
    return bmc;
  }

  get power(): SimPowerState {
    return this.chassis.power;
  }

  get watts(): number {
    return this.chassis.watts;
  }

  setActivity(activity: SimActivity): void {
    this.chassis.setActivity(activity);
  }

  /** The ipmi_sim process, while one runs (tests look for it in /proc). */
  get pid(): number | undefined {
    return this.ipmiSim.pid;
  }

  onPower(listener: (event: SimPowerEvent) => void): () => void {
    return this.chassis.onPower(listener);
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
        await this.ipmiSim.stop();
        return;
      }
      const password = faults.wrongPassword === true ? wrongPasswordFor(this.opts.credentials.password) : this.opts.credentials.password;
      if (!this.ipmiSim.running || this.ipmiSim.password !== password) {
        await this.ipmiSim.stop();
        await this.ipmiSim.start(password);
      }
      await this.ipmiSim.freeze(faults.hang === true);
    });
  }

  setPowerDirect(state: SimPowerState): Promise<void> {
    this.chassis.set(state, false);
    this.log.info({ state }, 'power set directly');
    return Promise.resolve();
  }

  /** Kills ipmi_sim and its hook children, closes the control server, removes the files. */
  stop(): Promise<void> {
    if (this.stopped) return this.chain;
    this.stopped = true;
    return this.serial(async () => {
      this.chassis.cancel();
      await this.ipmiSim.stop();
      await this.hook.close();
      await this.ipmiSim.removeFiles();
      this.chassis.stop();
      this.requestListeners.clear();
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private handleHook(request: ChassisRequest): HookReply {
    for (const listener of this.requestListeners) listener(request);
    return request.op === 'get' ? this.chassisGet(request.args) : this.chassisSet(request.args);
  }

  private chassisGet(parms: string[]): HookReply {
    const lines: string[] = [];
    for (const parm of parms) {
      if (parm === 'power') lines.push(`power:${this.chassis.power === 'on' ? 1 : 0}`);
      else if (parm === 'boot') lines.push('boot:default');
      else return { status: 400, text: `Invalid parameter: ${parm}\n` };
    }
    return { status: 200, text: lines.map((l) => `${l}\n`).join('') };
  }

  private chassisSet(args: string[]): HookReply {
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
        this.chassis.emit('reset', this.chassis.power === 'on' ? 'ok' : 'already', this.chassis.power === 'on' ? 'the OS restarts' : 'the machine is off');
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
      this.chassis.emit('on', 'failed', 'simulated power-on failure');
      return 'power on failed (simulated fault)';
    }
    if (this.chassis.power === 'on') {
      this.chassis.emit('on', 'already');
      return undefined;
    }
    this.chassis.set('on', true);
    this.chassis.emit('on', 'ok');
    return undefined;
  }

  private powerOff(): undefined {
    const was = this.chassis.power;
    this.chassis.set('off', true);
    this.chassis.emit('off', was === 'off' ? 'already' : 'ok');
    return undefined;
  }

  private softOff(): void {
    if (this.chassis.power === 'off') {
      this.chassis.emit('soft-off', 'already');
      return;
    }
    if (this.chassis.change !== undefined) {
      this.chassis.emit('soft-off', 'ok', 'a shutdown is already under way');
      return;
    }
    if (!Number.isFinite(this.gracefulShutdownMs)) {
      this.chassis.emit('soft-off', 'ok', 'the OS ignores it: only a hard power off works');
      return;
    }
    const delay = Math.max(0, this.gracefulShutdownMs);
    const now = Date.now();
    // ipmi_sim gets its answer first; the power goes off from a timer even after 0 ms.
    this.chassis.schedule(
      { to: 'off', shutdownUntil: now + delay, landsAt: now + delay, graceful: true },
      { deferred: true, landed: () => this.chassis.emit('soft-off', 'ok', `completed after ${delay} ms`) },
    );
    this.chassis.emit('soft-off', 'ok', `the OS shuts down in ${delay} ms`);
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

function wrongPasswordFor(password: string): string {
  let other = `wrong-${randomBytes(4).toString('hex')}`;
  while (other === password) other = `wrong-${randomBytes(4).toString('hex')}`;
  return other;
}
