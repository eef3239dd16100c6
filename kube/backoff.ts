/**
 * Exponential backoff with jitter for reconnect loops. The jitter ("equal jitter": half
 * fixed, half random) keeps the replicas of a restarted API server's clients from
 * reconnecting in lockstep, while still guaranteeing half of each step.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!(initialMs > 0) || !(maxMs >= initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs (${initialMs}) <= maxMs (${maxMs})`);
    }
  }

  /** The next delay; each call doubles the step up to the maximum. */
  next(): number {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt++;
    return step / 2 + (this.random() * step) / 2;
  }

  reset(): void {
    this.attempt = 0;
  }
}
