import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { ExponentialBackoffPerKey, TokenBucket } from './rate-limit.js';

/** Processes one key. Rejecting requeues the key with backoff; resolving resets its backoff. */
export type QueueWorker = (key: string, signal: AbortSignal) => Promise<void>;

/** Plain callbacks for whatever metrics library the caller wires up (prom-client in the manager). */
export interface WorkQueueMetrics {
  /** The number of keys ready and waiting for a worker, whenever it changes. */
  depth?(depth: number): void;
  /** Every accepted add, including ones de-duplicated against a key already queued. */
  add?(key: string): void;
  /** How long a key waited between being queued and a worker taking it. */
  latency?(key: string, ms: number): void;
  /** How long a worker spent on a key; `failed` when the worker rejected. */
  workDuration?(key: string, ms: number, failed: boolean): void;
  /** A rate-limited requeue and the delay it got. */
  retry?(key: string, delayMs: number): void;
}

export interface WorkQueueStats {
  /** Keys ready for a worker. */
  depth: number;
  /** Keys scheduled for later (addAfter, addRateLimited). */
  delayed: number;
  /** Keys a worker is processing now. */
  processing: number;
  adds: number;
  retries: number;
  processed: number;
  failures: number;
}

export interface WorkQueueOptions {
  /** Appears in log lines. */
  name?: string;
  /** First per-key retry delay; doubles per consecutive failure. Default 50 ms. */
  baseDelayMs?: number;
  /** Cap of the per-key retry delay. Default 5 min. */
  maxDelayMs?: number;
  /** Overall rate of rate-limited requeues across all keys. Default 10/s. */
  ratePerSecond?: number;
  /** Requeues allowed at once before the overall rate applies. Default 100. */
  burst?: number;
  clock?: Clock;
  metrics?: WorkQueueMetrics;
  logger?: Logger;
}

export interface ShutDownOptions {
  /**
   * true (default): keys already queued are still processed and in-flight workers finish.
   * false: queued keys are dropped and the workers' signals are aborted (a leader that
   * lost its lease must stop acting at once); resolves when the workers have returned.
   */
  drain?: boolean;
}

/**
 * The controller's work queue, keyed by an autoscaler's name. A key is processed by at
 * most one worker at a time and queued at most once: a burst of informer events for one
 * autoscaler becomes one reconcile, and an event arriving during that reconcile triggers
 * exactly one more right after it, so no change is missed and none is processed twice
 * concurrently.
 */
export class WorkQueue {
  private readonly clock: Clock;
  private readonly metrics: WorkQueueMetrics;
  private readonly log: Logger | undefined;
  private readonly backoff: ExponentialBackoffPerKey;
  private readonly bucket: TokenBucket;

  private ready: string[] = [];
  /** Keys that need processing: queued in `ready`, or added again while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly queuedAt = new Map<string, number>();
  /** Keys requeued with backoff during their own processing keep their backoff on success. */
  private readonly retriedWhileProcessing = new Set<string>();

  private readonly delayed = new Map<string, number>();
  private delayTimer: TimerHandle | undefined;
  private delayTimerAt = Infinity;

  private readonly idleWorkers: (() => void)[] = [];
  private readonly abortWorkers = new AbortController();
  private shuttingDown = false;
  private draining = true;
  private workers: Promise<void> | undefined;

  private readonly counters = { adds: 0, retries: 0, processed: 0, failures: 0 };

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics ?? {};
    this.log = opts.logger?.child({ queue: opts.name ?? 'default' });
    this.backoff = new ExponentialBackoffPerKey(opts.baseDelayMs ?? 50, opts.maxDelayMs ?? 300_000);
    this.bucket = new TokenBucket(opts.ratePerSecond ?? 10, opts.burst ?? 100, this.clock);
  }

  /** Queues `key` unless it is already queued. Ignored after shutDown. */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.counters.adds++;
    this.metrics.add?.(key);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.queuedAt.set(key, this.clock.now());
    // A key being processed goes back to `ready` when its worker is done.
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /**
   * Queues `key` after `ms`. When the key is already scheduled, the earlier time wins; a
   * key already queued now is still queued again at the later time, because whoever asked
   * wants it looked at then.
   */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing !== undefined && existing <= at) return;
    this.delayed.set(key, at);
    this.armDelayTimer();
  }

  /** Queues `key` after its own backoff and the overall rate limit, whichever is later. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    const delay = Math.max(this.backoff.when(key), this.bucket.reserve());
    this.counters.retries++;
    this.metrics.retry?.(key, delay);
    if (this.processing.has(key)) this.retriedWhileProcessing.add(key);
    this.addAfter(key, delay);
  }

  /** Resets the backoff of `key` (it succeeded, or it was deleted). */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  /** Consecutive rate-limited requeues of `key` since it was last forgotten. */
  retries(key: string): number {
    return this.backoff.retries(key);
  }

  len(): number {
    return this.ready.length;
  }

  stats(): WorkQueueStats {
    return {
      depth: this.ready.length,
      delayed: this.delayed.size,
      processing: this.processing.size,
      ...this.counters,
    };
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Starts `concurrency` workers. Resolves when the queue has been shut down and every
   * worker has returned. A worker that rejects gets its key requeued with backoff; one
   * that resolves gets its key's backoff reset, unless it requeued the key with backoff
   * itself.
   */
  run(worker: QueueWorker, concurrency = 1): Promise<void> {
    if (this.workers) throw new Error('work queue is already running');
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    const loops: Promise<void>[] = [];
    for (let i = 0; i < concurrency; i++) loops.push(this.workerLoop(worker));
    this.workers = Promise.all(loops).then(() => undefined);
    return this.workers;
  }

  /** Stops accepting keys and drops scheduled ones; see ShutDownOptions for the rest. */
  async shutDown(opts: ShutDownOptions = {}): Promise<void> {
    const drain = opts.drain ?? true;
    this.shuttingDown = true;
    if (this.delayTimer !== undefined) this.clock.clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    this.delayed.clear();
    if (!drain && this.draining) {
      this.draining = false;
      this.ready = [];
      this.dirty.clear();
      this.queuedAt.clear();
      this.metrics.depth?.(0);
      this.abortWorkers.abort(new Error('work queue shut down'));
    }
    for (const wake of this.idleWorkers.splice(0)) wake();
    await this.workers;
  }

  private push(key: string): void {
    this.ready.push(key);
    this.metrics.depth?.(this.ready.length);
    this.idleWorkers.shift()?.();
  }

  private async next(): Promise<string | undefined> {
    for (;;) {
      const key = this.ready.shift();
      if (key !== undefined) {
        this.metrics.depth?.(this.ready.length);
        this.dirty.delete(key);
        this.processing.add(key);
        const queuedAt = this.queuedAt.get(key);
        this.queuedAt.delete(key);
        if (queuedAt !== undefined) this.metrics.latency?.(key, this.clock.now() - queuedAt);
        return key;
      }
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.idleWorkers.push(resolve));
    }
  }

  private done(key: string): void {
    this.processing.delete(key);
    this.retriedWhileProcessing.delete(key);
    if (this.dirty.has(key)) this.push(key);
    // Wake everyone once the queue is empty so that a draining shutdown can finish.
    if (this.shuttingDown && this.ready.length === 0) for (const wake of this.idleWorkers.splice(0)) wake();
  }

  private async workerLoop(worker: QueueWorker): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      const started = this.clock.now();
      let failed = false;
      try {
        await worker(key, this.abortWorkers.signal);
      } catch (err) {
        failed = true;
        this.counters.failures++;
        this.log?.debug({ key, err }, 'processing failed, requeueing with backoff');
      }
      this.counters.processed++;
      this.metrics.workDuration?.(key, this.clock.now() - started, failed);
      if (failed) this.addRateLimited(key);
      else if (!this.retriedWhileProcessing.has(key)) this.forget(key);
      this.done(key);
    }
  }

  private armDelayTimer(): void {
    let earliest = Infinity;
    for (const at of this.delayed.values()) earliest = Math.min(earliest, at);
    if (earliest === this.delayTimerAt) return;
    if (this.delayTimer !== undefined) this.clock.clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.delayTimerAt = earliest;
    if (earliest === Infinity) return;
    this.delayTimer = this.clock.setTimeout(() => this.releaseDue(), earliest - this.clock.now());
  }

  private releaseDue(): void {
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    const now = this.clock.now();
    // Map order is insertion order; sort so that keys due earlier are queued first.
    const due = [...this.delayed].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
    for (const [key] of due) {
      this.delayed.delete(key);
      this.add(key);
    }
    this.armDelayTimer();
  }
}
