import { BmcDegradedError, isBmcError } from './errors.js';
import { errorMessage } from '../kube/errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long the first opening lasts; each failed probe doubles it up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
  now?: () => number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 3, openMs: 30_000, maxOpenMs: 600_000 };

/**
 * A circuit breaker per BMC. After `failureThreshold` consecutive failures the BMC is
 * degraded: calls fail at once with BmcDegradedError until the open period ends; then one
 * call is let through as a probe. A success closes the breaker; a failed probe reopens it
 * for twice as long. Refusals (the BMC answered "not now") are not failures of the BMC.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private currentOpenMs: number;
  private probing = false;
  private lastError: string | undefined;
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

  async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.probing)) {
      throw new BmcDegradedError(
        `BMC degraded after ${this.failures} consecutive failures (last: ${this.lastError ?? 'unknown'}); next probe at ${new Date(this.openUntil).toISOString()}`,
        { address: this.endpoint, operation, retryAt: new Date(this.openUntil) },
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
    this.currentOpenMs = this.opts.openMs;
    this.lastError = undefined;
  }

  private onFailure(err: unknown, probe: boolean): void {
    if (isBmcError(err) && (err.code === 'BMC_REFUSED' || err.code === 'BMC_DEGRADED')) return;
    if (err instanceof Error && err.name === 'AbortError') return;
    this.failures++;
    this.lastError = isBmcError(err) ? err.code : errorMessage(err);
    if (probe) this.currentOpenMs = Math.min(this.currentOpenMs * 2, this.opts.maxOpenMs);
    if (this.failures >= this.opts.failureThreshold) this.openUntil = this.now() + this.currentOpenMs;
  }
}
