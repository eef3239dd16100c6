import { createHash } from 'node:crypto';
import { parseBmcAddress, type BmcAddress } from './address.js';
import { CircuitBreaker, type BreakerOptions, type BreakerState } from './breaker.js';
import type { BmcCredentials } from './credentials.js';
import { BmcAuthError } from './errors.js';
import type { PowerReadingResult } from './reading.js';
import { endpointOf, type OperationOptions, type PowerDriver, type PowerOffOptions, type PowerResult, type PowerState } from './driver.js';
import { createPowerDriver, type DriverOptions } from './factory.js';
import { KeyedMutex } from './keyed-mutex.js';

export interface MachineBmcSpec {
  /** The machine (Node) name. */
  name: string;
  address: string;
  insecureSkipVerify?: boolean;
  caBundle?: string;
}

export interface BmcHealth {
  endpoint: string;
  state: BreakerState;
  degraded: boolean;
  consecutiveFailures: number;
  retryAt?: Date;
  lastFailure?: string;
  /** Open because the BMC refused the credentials: fix the Secret (tried at once), or wait for retryAt. */
  credentialsRefused: boolean;
}

export interface BmcPoolOptions extends DriverOptions {
  breaker?: Partial<BreakerOptions>;
  /** Replaces createPowerDriver (tests of the pool itself). */
  driverFactory?: (spec: MachineBmcSpec & { parsed: BmcAddress }, credentials: BmcCredentials, opts: DriverOptions) => PowerDriver;
}

interface Entry {
  driver: PowerDriver;
  fingerprint: string;
  breaker: CircuitBreaker;
  key: string;
  /** Aborts the power reading in flight, if one is. */
  reading: AbortController | undefined;
}

/** Why a power reading was not taken now; the next one may be. */
export interface ReadingSkipped {
  kind: 'skipped';
  reason: string;
}

/**
 * The controller's access to BMCs: one driver per machine (rebuilt when its address or
 * credentials change), one operation at a time per BMC, and a circuit breaker per BMC so a
 * dead BMC is reported degraded and probed rarely instead of being hammered. A refused login
 * opens the breaker at once: wrong credentials are not retried into an account lock-out.
 */
export class BmcPool {
  private readonly entries = new Map<string, Entry>();
  private readonly mutex = new KeyedMutex();

  constructor(private readonly opts: BmcPoolOptions = {}) {}

  /** A driver for the machine whose calls go through the BMC's mutex and breaker. */
  driver(spec: MachineBmcSpec, credentials: BmcCredentials): PowerDriver {
    const entry = this.entry(spec, credentials);
    const run = <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
      // A power operation never waits for a reading: the reading in flight is dropped.
      entry.reading?.abort(new Error(`${operation} was asked of this BMC`));
      return this.mutex.run(entry.key, () =>
        entry.breaker.run(operation, fn).catch((err: unknown) => {
          if (err instanceof BmcAuthError) {
            this.opts.logger?.warn(
              { machine: spec.name, endpoint: entry.breaker.endpoint, operation, retryAt: entry.breaker.retryAt?.toISOString() },
              `the BMC refused the credentials: the username or password in the machine's credentials Secret is wrong; no further login until ${entry.breaker.retryAt?.toISOString() ?? 'the Secret changes'} (repeated failed logins lock BMC accounts), or at once when the Secret changes`,
            );
          }
          throw err;
        }),
      );
    };
    return {
      kind: entry.driver.kind,
      endpoint: entry.driver.endpoint,
      status: (o?: OperationOptions): Promise<PowerState> => run('reading the power state', () => entry.driver.status(o)),
      powerOn: (o?: OperationOptions): Promise<PowerResult> => run('power on', () => entry.driver.powerOn(o)),
      powerOff: (o?: PowerOffOptions & OperationOptions): Promise<PowerResult> => run('power off', () => entry.driver.powerOff(o)),
      close: async () => undefined,
    };
  }

  /**
   * What the machine draws, if its BMC can say, without standing in the way of power
   * operations: skipped when an operation holds or waits for the BMC, or its breaker is not
   * closed; aborted when a power operation arrives meanwhile. A reading is one turn of the
   * BMC's mutex like any call, but its failures do not count towards the breaker: a BMC with
   * a broken power sensor still powers its machine.
   */
  async reading(spec: MachineBmcSpec, credentials: BmcCredentials, timeoutMs: number): Promise<PowerReadingResult | ReadingSkipped> {
    const entry = this.entry(spec, credentials);
    const read = entry.driver.reading?.bind(entry.driver);
    if (read === undefined) return { kind: 'none', reason: `the ${entry.driver.kind} driver reads no power` };
    if (this.mutex.busy(entry.key)) return { kind: 'skipped', reason: 'a power operation holds the BMC' };
    if (entry.breaker.state !== 'closed') return { kind: 'skipped', reason: `the BMC's circuit breaker is ${entry.breaker.state}` };
    const abort = new AbortController();
    entry.reading = abort;
    try {
      return await this.mutex.run(entry.key, () => read({ signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]) }));
    } catch (err) {
      if (abort.signal.aborted) return { kind: 'skipped', reason: 'a power operation was asked of the BMC' };
      throw err;
    } finally {
      if (entry.reading === abort) entry.reading = undefined;
    }
  }

  health(name: string): BmcHealth | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const b = e.breaker;
    return {
      endpoint: b.endpoint,
      state: b.state,
      degraded: b.degraded,
      consecutiveFailures: b.consecutiveFailures,
      ...(b.retryAt ? { retryAt: b.retryAt } : {}),
      ...(b.lastFailure ? { lastFailure: b.lastFailure } : {}),
      credentialsRefused: b.openForCredentials,
    };
  }

  /** Forget a machine (removed from the inventory): its sessions are closed. */
  async forget(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) return;
    this.entries.delete(name);
    await e.driver.close().catch((err: unknown) => this.opts.logger?.warn({ machine: name, err }, 'closing BMC driver failed'));
  }

  async close(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((n) => this.forget(n)));
  }

  private entry(spec: MachineBmcSpec, credentials: BmcCredentials): Entry {
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([spec.address, spec.insecureSkipVerify ?? false, spec.caBundle ?? '', credentials.username]))
      .update('\0')
      .update(credentials.reveal())
      .digest('hex');
    const existing = this.entries.get(spec.name);
    if (existing && existing.fingerprint === fingerprint) return existing;
    const parsed = parseBmcAddress(spec.address);
    const key = `${endpointOf(parsed)}${parsed.systemPath ?? ''}`;
    const factory = this.opts.driverFactory ?? ((s, c, o) => createPowerDriver({ ...s, address: s.parsed, credentials: c }, o));
    const driverOpts: DriverOptions = {
      ...(this.opts.timeouts ? { timeouts: this.opts.timeouts } : {}),
      ...(this.opts.logger ? { logger: this.opts.logger.child({ machine: spec.name }) } : {}),
      ...(this.opts.gracefulTimeoutMs !== undefined ? { gracefulTimeoutMs: this.opts.gracefulTimeoutMs } : {}),
    };
    const driver = factory({ ...spec, parsed }, credentials, driverOpts);
    // A new address or password is a new chance: the breaker starts closed again.
    const breaker = existing && existing.key === key && existing.fingerprint === fingerprint ? existing.breaker : new CircuitBreaker(key, this.opts.breaker);
    if (existing) void existing.driver.close().catch(() => undefined);
    const entry: Entry = { driver, fingerprint, breaker, key, reading: undefined };
    this.entries.set(spec.name, entry);
    return entry;
  }
}
