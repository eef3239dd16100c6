/**
 * The IPMI power driver: the power state machine (read the state, send the command, wait
 * until the BMC reports the requested state; soft off first, the hard one after a grace
 * period) and the turn-taking per BMC. How ipmitool is run is runner.ts's concern, what its
 * failures mean classify.ts's.
 */
import { pino, type Logger } from 'pino';
import type { BmcAddress } from '../address.js';
import type { BmcCredentials } from '../credentials.js';
import { DEFAULT_TIMEOUTS, endpointOf, type DriverTimeouts, type OperationOptions, type PowerDriver, type PowerOffOptions, type PowerResult, type PowerState } from '../driver.js';
import { BmcProtocolError, BmcUnsupportedError } from '../errors.js';
import { parseDcmiPowerReading, type PowerReadingResult } from '../reading.js';
import { quote } from './classify.js';
import { IpmiOperation } from './operation.js';
import { IpmiEndpoints, IpmitoolRunner, type CipherSuite } from './runner.js';

export interface IpmiDriverOptions {
  address: BmcAddress;
  credentials: BmcCredentials;
  timeouts?: Partial<DriverTimeouts>;
  logger?: Logger;
  /** Default 'ipmitool' (looked up in PATH). */
  ipmitoolPath?: string;
  /**
   * Pause between the end of one ipmitool run and the start of the next to the same BMC,
   * shared by every IpmiDriver of that host:port. Default 5000, as Ironic: small BMCs drop
   * sessions when they come faster.
   */
  minGapMs?: number;
  /** Tries in all for transient failures (busy BMC, no answer) and the first pause, doubled each time. Default 4 x 1000 ms. */
  retries?: { attempts: number; delayMs: number };
  /** The first pause between power-state reads while waiting for a change; grows x1.5 up to 10 s. Default 1000. */
  pollIntervalMs?: number;
  /** How long a soft power off may take before the hard one. Default 180000; counts within timeouts.operationMs. */
  gracefulTimeoutMs?: number;
}

const DEFAULTS = { minGapMs: 5_000, retries: { attempts: 4, delayMs: 1_000 }, pollIntervalMs: 1_000, maxPollIntervalMs: 10_000, gracefulTimeoutMs: 180_000 };

// One for the process, not per driver: two drivers for one BMC (a re-read inventory, the
// CLI next to the manager in tests) must still take turns and keep the gap between their
// commands.
const processEndpoints = new IpmiEndpoints();

/** The cipher suite that last worked with an endpoint, if any ipmitool run to it succeeded. */
export function workingCipherSuite(endpoint: string): CipherSuite | undefined {
  return processEndpoints.cipherSuite(endpoint);
}

/** `chassis power status` output, exactly; anything else is a BmcProtocolError. */
export function parsePowerStatus(stdout: string, ctx: { address: string; operation: string }, redact: (text: string) => string = (text) => text): PowerState {
  const match = /^Chassis Power is (on|off)$/.exec(stdout.trim());
  if (match?.[1] === 'on' || match?.[1] === 'off') return match[1];
  throw new BmcProtocolError(`unexpected answer to "chassis power status": ${quote(redact(stdout))}`, { ...ctx, hint: 'expected "Chassis Power is on" or "Chassis Power is off"' });
}

type ControlAction = 'on' | 'off' | 'soft';
// What ipmitool prints when the BMC took the command (ipmi_chassis_power_control_vals).
const CONTROL_CONFIRMATION: Record<ControlAction, string> = { on: 'Chassis Power Control: Up/On', off: 'Chassis Power Control: Down/Off', soft: 'Chassis Power Control: Soft' };

/**
 * Powers one machine through its BMC with ipmitool (lanplus). Each operation holds the
 * endpoint for itself, reads the power state first, and finishes when the BMC reports the
 * requested state, within timeouts.operationMs.
 *
 * The password reaches ipmitool only through IPMI_PASSWORD in the environment of the child
 * (-E): never in an argument list, a file, a log line or an error.
 */
export class IpmiDriver implements PowerDriver {
  readonly kind = 'ipmi' as const;
  readonly endpoint: string;
  private readonly timeouts: DriverTimeouts;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly gracefulTimeoutMs: number;
  private readonly endpoints: IpmiEndpoints = processEndpoints;
  private readonly ipmitool: IpmitoolRunner;
  private readonly closing = new AbortController();

  constructor(opts: IpmiDriverOptions) {
    const { address } = opts;
    if (address.driver !== 'ipmi') throw new Error(`IpmiDriver needs an ipmi:// address, not ${address.scheme}://`);
    this.endpoint = endpointOf(address);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'ipmi', endpoint: this.endpoint });
    this.pollIntervalMs = opts.pollIntervalMs ?? DEFAULTS.pollIntervalMs;
    this.maxPollIntervalMs = Math.max(this.pollIntervalMs, DEFAULTS.maxPollIntervalMs);
    this.gracefulTimeoutMs = opts.gracefulTimeoutMs ?? DEFAULTS.gracefulTimeoutMs;
    this.ipmitool = new IpmitoolRunner({
      endpoint: this.endpoint,
      host: address.host,
      port: address.port,
      credentials: opts.credentials,
      ipmitoolPath: opts.ipmitoolPath ?? 'ipmitool',
      minGapMs: opts.minGapMs ?? DEFAULTS.minGapMs,
      retries: { attempts: Math.max(1, opts.retries?.attempts ?? DEFAULTS.retries.attempts), delayMs: opts.retries?.delayMs ?? DEFAULTS.retries.delayMs },
      requestMs: this.timeouts.requestMs,
      endpoints: this.endpoints,
      log: this.log,
    });
  }

  /** The cipher suite that works with this BMC, once a command has succeeded. */
  get cipherSuite(): CipherSuite | undefined {
    return this.endpoints.cipherSuite(this.endpoint);
  }

  status(opts?: OperationOptions): Promise<PowerState> {
    return this.run('reading the power state', opts, (op) => this.readPower(op));
  }

  /** What the machine draws, through DCMI (`dcmi power reading`); a BMC without DCMI power management has no reading. */
  reading(opts?: OperationOptions): Promise<PowerReadingResult> {
    return this.run('reading the power draw', opts, async (op) => {
      try {
        const stdout = await this.ipmitool.command(op, ['dcmi', 'power', 'reading']);
        return parseDcmiPowerReading(this.ipmitool.redact(stdout), { address: this.endpoint, operation: op.operation }, new Date());
      } catch (err) {
        if (err instanceof BmcUnsupportedError) return { kind: 'none', reason: `the BMC offers no DCMI power reading: ${err.message}` };
        throw err;
      }
    });
  }

  powerOn(opts?: OperationOptions): Promise<PowerResult> {
    return this.run('power on', opts, async (op) => {
      if ((await this.readPower(op)) === 'on') return this.result(op, 'on', true, 'none');
      await this.control(op, 'on');
      await this.waitFor(op, 'on');
      return this.result(op, 'on', false, 'chassis power on');
    });
  }

  powerOff(opts?: PowerOffOptions & OperationOptions): Promise<PowerResult> {
    return this.run('power off', opts, async (op) => {
      if ((await this.readPower(op)) === 'off') return this.result(op, 'off', true, 'none');
      if (opts?.force !== true) {
        const gracefulEnd = Date.now() + (opts?.gracefulTimeoutMs ?? this.gracefulTimeoutMs);
        await this.control(op, 'soft');
        if (await this.waitFor(op, 'off', gracefulEnd)) return this.result(op, 'off', false, 'chassis power soft');
        this.log.info({ gracefulMs: op.elapsedMs }, 'the soft power off did not finish in time; forcing the power off');
      }
      await this.control(op, 'off');
      await this.waitFor(op, 'off');
      return this.result(op, 'off', false, opts?.force === true ? 'chassis power off' : 'chassis power soft, chassis power off');
    });
  }

  /** Aborts the operation in flight (killing its ipmitool). IPMI keeps no session between commands. */
  close(): Promise<void> {
    this.closing.abort();
    return Promise.resolve();
  }

  private async run<T>(operation: string, opts: OperationOptions | undefined, fn: (op: IpmiOperation) => Promise<T>): Promise<T> {
    if (this.closing.signal.aborted) throw new Error(`the IPMI driver for ${this.endpoint} is closed`);
    const waiting = AbortSignal.any(opts?.signal === undefined ? [this.closing.signal] : [this.closing.signal, opts.signal]);
    const queued = this.endpoints.exclusive(this.endpoint, async () => {
      const op = new IpmiOperation({ operation, endpoint: this.endpoint, timeoutMs: this.timeouts.operationMs, signal: opts?.signal, closing: this.closing.signal, fence: opts?.fence });
      try {
        op.check();
        return await fn(op);
      } catch (err) {
        throw op.translate(err);
      } finally {
        op.dispose();
      }
    });
    // Another operation on this BMC may hold it for minutes (a graceful shutdown); a caller
    // that gives up meanwhile gets its answer now, and its turn then ends at once.
    return raceAbort(queued, waiting, () => {
      const reason: unknown = opts?.signal?.aborted === true ? opts.signal.reason : undefined;
      return reason instanceof Error ? reason : new DOMException(`${operation} on ${this.endpoint} was aborted while waiting for another operation on this BMC`, 'AbortError');
    });
  }

  private async readPower(op: IpmiOperation): Promise<PowerState> {
    const stdout = await this.ipmitool.command(op, ['chassis', 'power', 'status']);
    const state = parsePowerStatus(stdout, { address: this.endpoint, operation: op.operation }, (text) => this.ipmitool.redact(text));
    op.lastState = state;
    return state;
  }

  private async control(op: IpmiOperation, action: ControlAction): Promise<void> {
    const stdout = await this.ipmitool.command(op, ['chassis', 'power', action], { changesPower: true });
    if (stdout.trim() !== CONTROL_CONFIRMATION[action]) {
      throw new BmcProtocolError(`unexpected answer to "chassis power ${action}": ${quote(this.ipmitool.redact(stdout))}`, { address: this.endpoint, operation: op.operation, hint: `expected "${CONTROL_CONFIRMATION[action]}"` });
    }
    this.log.info({ operation: op.operation, command: `chassis power ${action}` }, 'power command accepted');
  }

  /**
   * Polls the power state with backoff until it is `target` (true) or `until` passes
   * (false). Without `until`, the operation deadline ends it with a timeout.
   */
  private async waitFor(op: IpmiOperation, target: PowerState, until = Infinity): Promise<boolean> {
    op.phase = `waiting for the BMC to report ${target}`;
    let delay = this.pollIntervalMs;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return false;
      await op.sleep(Math.min(delay, left));
      delay = Math.min(delay * 1.5, this.maxPollIntervalMs);
      if ((await this.readPower(op)) === target) return true;
    }
  }

  private result(op: IpmiOperation, state: PowerState, alreadyInState: boolean, method: string): PowerResult {
    this.log.info({ operation: op.operation, state, alreadyInState, method, ms: op.elapsedMs }, 'power operation done');
    return { state, alreadyInState, method, durationMs: op.elapsedMs };
  }
}

async function raceAbort<T>(work: Promise<T>, signal: AbortSignal, reason: () => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    throw reason();
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    work.catch(() => undefined);
    aborted.catch(() => undefined);
  }
}
