import { pino, type Logger } from 'pino';
import type { BmcAddress } from '../address.js';
import type { BmcCredentials } from '../credentials.js';
import { DEFAULT_TIMEOUTS, endpointOf, type DriverTimeouts, type OperationOptions, type PowerDriver, type PowerOffOptions, type PowerResult, type PowerState } from '../driver.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { RedfishAuth, type RetryPolicy } from './auth.js';
import { Operation } from '../operation.js';
import { ResetSender } from './reset.js';
import { RedfishSystem, type RedfishPowerState, type SystemView } from './system.js';
import type { PowerReadingResult } from '../reading.js';
import { readRedfishPower } from './power-reading.js';
import { RedfishTransport } from './transport.js';

export interface RedfishDriverOptions {
  address: BmcAddress;
  credentials: BmcCredentials;
  /** Accept any certificate (BMCs with self-signed certificates and no CA to give). */
  insecureSkipVerify?: boolean;
  /** PEM CA certificates this BMC's certificate is checked against instead of the system's. */
  caBundle?: string;
  timeouts?: Partial<DriverTimeouts>;
  logger?: Logger;
  /** The first pause before reading the power state after a Reset; grows x1.5. Default 1000. */
  pollIntervalMs?: number;
  /** The longest pause between power-state reads. Default 10000. */
  maxPollIntervalMs?: number;
  /**
   * How long a graceful shutdown may take before ForceOff. Default 180000. It counts within
   * timeouts.operationMs, so keep it well below that or the ForceOff never comes.
   */
  gracefulTimeoutMs?: number;
  /** Retries of transient refusals (iDRAC's 409 after a power change, 503): tries in all and the pause. Default 6 x 10 s, as Ironic. */
  transientRetry?: RetryPolicy;
}

const DEFAULTS = { pollIntervalMs: 1_000, maxPollIntervalMs: 10_000, gracefulTimeoutMs: 180_000, transientRetry: { attempts: 6, delayMs: 10_000 } };

const REPORTED: Record<RedfishPowerState, PowerState> = { On: 'on', PoweringOn: 'on', Paused: 'on', Off: 'off', PoweringOff: 'off' };

/**
 * Powers one machine through its BMC's Redfish service. One operation at a time; each
 * finishes when the BMC reports the requested state, within timeouts.operationMs.
 */
export class RedfishDriver implements PowerDriver {
  readonly kind = 'redfish' as const;
  readonly endpoint: string;
  private readonly timeouts: DriverTimeouts;
  private readonly log: Logger;
  private readonly transport: RedfishTransport;
  private readonly auth: RedfishAuth;
  private readonly system: RedfishSystem;
  private readonly resets: ResetSender;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly gracefulTimeoutMs: number;
  private readonly queue = new KeyedMutex();
  private readonly closing = new AbortController();
  private closed: Promise<void> | undefined;

  constructor(opts: RedfishDriverOptions) {
    const { address } = opts;
    if (address.driver !== 'redfish' || address.baseUrl === undefined) throw new Error(`RedfishDriver needs a Redfish address, not ${address.scheme}://`);
    this.endpoint = endpointOf(address);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.pollIntervalMs = opts.pollIntervalMs ?? DEFAULTS.pollIntervalMs;
    this.maxPollIntervalMs = Math.max(this.pollIntervalMs, opts.maxPollIntervalMs ?? DEFAULTS.maxPollIntervalMs);
    this.gracefulTimeoutMs = opts.gracefulTimeoutMs ?? DEFAULTS.gracefulTimeoutMs;
    const retry = opts.transientRetry ?? DEFAULTS.transientRetry;
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'redfish', endpoint: this.endpoint, vendor: address.vendor });
    this.transport = new RedfishTransport({
      baseUrl: address.baseUrl,
      timeouts: this.timeouts,
      insecureSkipVerify: opts.insecureSkipVerify ?? false,
      caBundle: opts.caBundle,
      // iLO 5 answers 406 to Accept-Encoding: identity; the generic path finds out by itself.
      identityEncoding: address.vendor !== 'ilo5',
      logger: this.log,
    });
    this.auth = new RedfishAuth(this.transport, opts.credentials, retry, this.log);
    this.system = new RedfishSystem(this.auth, this.transport, address.systemPath, this.log);
    this.resets = new ResetSender({
      auth: this.auth,
      transport: this.transport,
      system: this.system,
      retry,
      log: this.log,
      pollMs: this.pollIntervalMs,
    });
  }

  status(opts?: OperationOptions): Promise<PowerState> {
    return this.run('reading the power state', opts, async (op) => REPORTED[(await this.system.read(op)).powerState]);
  }

  /** What the machine draws, from its chassis's power resources (see power-reading.ts). */
  reading(opts?: OperationOptions): Promise<PowerReadingResult> {
    return this.run('reading the power draw', opts, async (op) => {
      const place = { operation: op.operation, endpoint: op.endpoint, redact: this.transport.redact };
      return readRedfishPower((path) => this.auth.request(op, { method: 'GET', path }), await this.system.resource(op), place);
    });
  }

  powerOn(opts?: OperationOptions): Promise<PowerResult> {
    return this.run('power on', opts, async (op) => {
      const view = await this.settled(op, await this.system.read(op));
      if (view.powerState === 'On' || view.powerState === 'Paused') return this.result(op, 'on', true, 'none');
      const sent = await this.resets.send(op, view, ['On', 'ForceOn'], 'On');
      await this.waitFor(op, 'On');
      return this.result(op, 'on', sent.already, sent.resetType);
    });
  }

  powerOff(opts?: PowerOffOptions & OperationOptions): Promise<PowerResult> {
    return this.run('power off', opts, async (op) => {
      const view = await this.settled(op, await this.system.read(op));
      if (view.powerState === 'Off') return this.result(op, 'off', true, 'none');
      if (opts?.force === true) {
        const sent = await this.resets.send(op, view, ['ForceOff'], 'Off');
        await this.waitFor(op, 'Off');
        return this.result(op, 'off', sent.already, sent.resetType);
      }
      const gracefulEnd = Date.now() + (opts?.gracefulTimeoutMs ?? this.gracefulTimeoutMs);
      const sent = await this.resets.send(op, view, ['GracefulShutdown', 'ForceOff'], 'Off');
      if (sent.resetType === 'ForceOff' || (await this.waitFor(op, 'Off', gracefulEnd))) return this.result(op, 'off', sent.already, sent.resetType);
      this.log.info({ gracefulMs: op.elapsedMs }, 'the graceful shutdown did not finish in time; forcing the power off');
      const forced = await this.resets.send(op, await this.system.read(op), ['ForceOff'], 'Off');
      await this.waitFor(op, 'Off');
      return this.result(op, 'off', false, forced.already ? sent.resetType : `${sent.resetType}, ${forced.resetType}`);
    });
  }

  /** Aborts the operation in flight, deletes the session and closes the connections. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      await this.queue.run(this.endpoint, async () => {
        const op = new Operation({ operation: 'closing the session', endpoint: this.endpoint, timeoutMs: this.timeouts.requestMs, closing: new AbortController().signal });
        try {
          await this.auth.logout(op);
        } finally {
          op.dispose();
          await this.transport.close();
        }
      });
    })();
    return this.closed;
  }

  private async run<T>(operation: string, opts: OperationOptions | undefined, fn: (op: Operation) => Promise<T>): Promise<T> {
    if (this.closed !== undefined) throw new Error(`the Redfish driver for ${this.endpoint} is closed`);
    return this.queue.run(this.endpoint, async () => {
      const op = new Operation({ operation, endpoint: this.endpoint, timeoutMs: this.timeouts.operationMs, signal: opts?.signal, closing: this.closing.signal, fence: opts?.fence });
      try {
        op.check();
        const result = await fn(op);
        this.log.debug({ operation, ms: op.elapsedMs }, 'redfish operation done');
        return result;
      } catch (err) {
        throw op.translate(err);
      } finally {
        op.dispose();
      }
    });
  }

  /** While the system is PoweringOn/PoweringOff, waits for it to settle before deciding. */
  private async settled(op: Operation, view: SystemView): Promise<SystemView> {
    let current = view;
    let delay = this.pollIntervalMs;
    while (current.powerState === 'PoweringOn' || current.powerState === 'PoweringOff') {
      await op.sleep(delay);
      delay = Math.min(delay * 1.5, this.maxPollIntervalMs);
      current = await this.system.read(op);
    }
    return current;
  }

  /**
   * Polls the power state with backoff until it is `target` (true), or until `until`
   * passes (false). The operation deadline ends it with a timeout.
   */
  private async waitFor(op: Operation, target: 'On' | 'Off', until?: number): Promise<boolean> {
    let delay = this.pollIntervalMs;
    for (;;) {
      const left = until === undefined ? Infinity : until - Date.now();
      if (left <= 0) return false;
      await op.sleep(Math.min(delay, left));
      delay = Math.min(delay * 1.5, this.maxPollIntervalMs);
      const { powerState } = await this.system.read(op);
      if (powerState === target) return true;
      if (powerState !== 'PoweringOn' && powerState !== 'PoweringOff') this.log.debug({ powerState, target }, 'waiting for the power state');
    }
  }

  private result(op: Operation, state: PowerState, alreadyInState: boolean, method: string): PowerResult {
    this.log.info({ operation: op.operation, state, alreadyInState, method, ms: op.elapsedMs }, 'power operation done');
    return { state, alreadyInState, method, durationMs: op.elapsedMs };
  }
}

