import type { Clock } from './clock.js';

/**
 * Per-key exponential backoff: the n-th consecutive failure of a key waits
 * base * 2^(n-1), capped. Keys are independent, so one broken autoscaler backing off to
 * minutes does not slow the retries of a healthy one.
 */
export class ExponentialBackoffPerKey {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseDelayMs: number,
    private readonly maxDelayMs: number,
  ) {
    if (!(baseDelayMs > 0) || !(maxDelayMs >= baseDelayMs)) {
      throw new RangeError(`backoff needs 0 < baseDelayMs (${baseDelayMs}) <= maxDelayMs (${maxDelayMs})`);
    }
  }

  /** Records one more failure of `key` and returns how long it must wait. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long before it matters; the cap absorbs it.
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

/**
 * A token bucket that hands out reservations: each call takes a token, going into debt
 * when the bucket is empty, and returns how long the caller must wait for its token. A
 * burst of failures across many keys is thereby spread out at `ratePerSecond`.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new RangeError(`token bucket needs ratePerSecond > 0 (${ratePerSecond}) and burst >= 1 (${burst})`);
    }
    this.tokens = burst;
    this.updatedAt = clock.now();
  }

  /** Reserves one token; the delay in ms until it is available (0 when there was one). */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSecond) * 1000;
  }
}
