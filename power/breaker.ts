import { BmcDegradedError, FencedError, isBmcError } from './errors.js';
import { errorMessage } from '../kube/errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long the first opening lasts; each failed probe doubles it up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
  /**
   * How long a refused login keeps the breaker open. Credentials do not fix themselves, and
   * BMCs lock an account after a few failed logins: one refusal opens the breaker at once,
   * and it stays open this long (a changed Secret gets a new breaker, see BmcPool).
   */
  authOpenMs: number;
  now?: () => number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 3, openMs: 30_000, maxOpenMs: 600_000, authOpenMs: 600_000 };

/**
 * A circuit breaker per BMC. After `failureThreshold` consecutive failures the BMC is
 * degraded: calls fail at once with BmcDegradedError until the open period ends; then one
 * call is let through as a probe. A success closes the breaker; a failed probe reopens it
 * for twice as long. Refusals (the BMC answered "not now") are not failures of the BMC.
 * A refused login (BMC_AUTH) opens it at once, for `authOpenMs`: retrying wrong credentials
 * only locks the BMC account.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private currentOpenMs: number;
  private probing = false;
  private lastError: string | undefined;
  private credentialsRefused = false;
  private readonly opts: BreakerOptions;
  private readonly now: () => number;

  constructor(
    readonly endpoint: string,
    opts: Partial<BreakerOptions> = {},
  ) {
    this.opts = { ...DEFAULT_BREAKER, ...opts };
    this.now = opts.now ?? Date.now;
    this.currentOpenMs = this.opts.openMs;
  }

  get state(): BreakerState {
    if (this.failures < this.opts.failureThreshold) return 'closed';
    return this.now() >= this.openUntil ? 'half-open' : 'open';
  }

  get degraded(): boolean {
    return this.failures >= this.opts.failureThreshold;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get retryAt(): Date | undefined {
    return this.degraded ? new Date(this.openUntil) : undefined;
  }

  get lastFailure(): string | undefined {
    return this.lastError;
  }

  /** Open because the BMC refused the credentials (rather than because it failed). */
  get openForCredentials(): boolean {
    return this.degraded && this.credentialsRefused;
  }

  async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.probing)) {
      const retryAt = new Date(this.openUntil);
      if (this.credentialsRefused) {
        throw new BmcDegradedError(
          `the BMC refused the credentials (BMC_AUTH): the username or password in the machine's credentials Secret is wrong; not tried again until ${retryAt.toISOString()}, since repeated failed logins lock BMC accounts`,
          { address: this.endpoint, operation, retryAt, hint: 'fix the Secret: a changed username or password is tried at once' },
        );
      }
      throw new BmcDegradedError(
        `BMC degraded after ${this.failures} consecutive failures (last: ${this.lastError ?? 'unknown'}); next probe at ${retryAt.toISOString()}`,
        { address: this.endpoint, operation, retryAt },
      );
    }
    const probe = state === 'half-open';
    if (probe) this.probing = true;
    try {
      const result = await fn();
      this.onSuccess();
      return result;
    } catch (err) {
      this.onFailure(err, probe);
      throw err;
    } finally {
      if (probe) this.probing = false;
    }
  }

  private onSuccess(): void {
    this.failures = 0;
    this.credentialsRefused = false;
    this.currentOpenMs = this.opts.openMs;
    this.lastError = undefined;
  }

  private onFailure(err: unknown, probe: boolean): void {
    if (isBmcError(err) && (err.code === 'BMC_REFUSED' || err.code === 'BMC_DEGRADED')) return;
    if (err instanceof Error && err.name === 'AbortError') return;
    if (err instanceof FencedError) return;
    this.failures++;
    this.lastError = isBmcError(err) ? err.code : errorMessage(err);
    this.credentialsRefused = isBmcError(err) && err.code === 'BMC_AUTH';
    if (this.credentialsRefused) {
      // No second try with the same wrong credentials: open now, for the credentials' period.
      this.failures = Math.max(this.failures, this.opts.failureThreshold);
      this.openUntil = this.now() + Math.max(this.currentOpenMs, this.opts.authOpenMs);
      return;
    }
    if (probe) this.currentOpenMs = Math.min(this.currentOpenMs * 2, this.opts.maxOpenMs);
    if (this.failures >= this.opts.failureThreshold) this.openUntil = this.now() + this.currentOpenMs;
  }
}
