/**
 * Power readings on a slow cadence: each managed machine's BMC is asked what the machine
 * draws once per interval (a BMC without readings ten times less often), in the
 * background, never more than a few at once, and only through the BMC pool, which skips a
 * reading when a power operation holds the BMC or its breaker is not closed, and drops it
 * when a power operation arrives. The reconcile takes the latest reading of each machine.
 */
import type { Logger } from 'pino';
import type { ParsedMachine } from '../api/inventory.js';
import { errorMessage } from '../kube/errors.js';
import type { BmcCredentials } from '../power/credentials.js';
import type { BmcPool } from '../power/pool.js';
import type { PowerReading } from '../power/reading.js';
import type { ControllerMetrics } from './metrics.js';

export interface PowerReaderOptions {
  pool: BmcPool;
  credentials: (machine: ParsedMachine, autoscaler: string) => Promise<BmcCredentials>;
  metrics: ControllerMetrics;
  logger: Logger;
  /** Between two readings of one BMC. Default 60 s. */
  intervalMs?: number;
  /** The longest one reading may take. Default 30 s. */
  timeoutMs?: number;
  /** Readings in flight at once, over every BMC. Default 8. */
  maxConcurrent?: number;
  now?: () => number;
  /** A reading changed what a machine of this autoscaler draws (the manager enqueues it, so status follows). */
  onChange?: (autoscaler: string) => void;
}

interface Track {
  reading: PowerReading | undefined;
  nextAt: number;
  /** The last problem reported (logged once per distinct text). */
  problem: string | undefined;
}

export const DEFAULT_READING_INTERVAL_MS = 60_000;
const NO_READING_FACTOR = 10;

export class PowerReader {
  private readonly tracks = new Map<string, Track>();
  private readonly inFlight = new Set<string>();
  /** Per autoscaler: the timer of its next poll, so readings keep their cadence between reconciles. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxConcurrent: number;
  private readonly now: () => number;

  constructor(private readonly opts: PowerReaderOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_READING_INTERVAL_MS;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxConcurrent = opts.maxConcurrent ?? 8;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Starts the readings that are due among these machines and returns at once; until the
   * next call, a timer polls the same machines when the next reading is due.
   */
  poll(autoscaler: string, machines: readonly ParsedMachine[]): void {
    if (this.stopped) return;
    const now = this.now();
    let next = now + this.intervalMs;
    for (const m of machines) {
      const track = this.tracks.get(m.name) ?? { reading: undefined, nextAt: 0, problem: undefined };
      this.tracks.set(m.name, track);
      if (this.inFlight.has(m.name)) continue;
      if (now >= track.nextAt && this.inFlight.size < this.maxConcurrent) {
        this.inFlight.add(m.name);
        track.nextAt = now + this.intervalMs;
        void this.read(autoscaler, m, track).finally(() => this.inFlight.delete(m.name));
      }
      next = Math.min(next, Math.max(track.nextAt, now + 1_000));
    }
    clearTimeout(this.timers.get(autoscaler));
    const timer = setTimeout(() => this.poll(autoscaler, machines), next - now);
    timer.unref();
    this.timers.set(autoscaler, timer);
  }

  /** No more readings for this autoscaler (deleted, or not managed here any more). */
  forgetAutoscaler(autoscaler: string): void {
    clearTimeout(this.timers.get(autoscaler));
    this.timers.delete(autoscaler);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** A reading older than this is stale: three intervals and a reading's timeout (the BMC stopped answering). */
  get maxAgeMs(): number {
    return 3 * this.intervalMs + this.timeoutMs;
  }

  /** The latest reading of the machine's BMC, if one was taken. */
  latest(machine: string): PowerReading | undefined {
    return this.tracks.get(machine)?.reading;
  }

  forget(machine: string): void {
    this.tracks.delete(machine);
  }

  private async read(autoscaler: string, m: ParsedMachine, track: Track): Promise<void> {
    const driver = m.bmc.parsedAddress.driver;
    const log = this.opts.logger.child({ autoscaler, machine: m.name });
    try {
      const creds = await this.opts.credentials(m, autoscaler);
      const spec = { name: m.name, address: m.bmc.address, insecureSkipVerify: m.bmc.insecureSkipVerify, ...(m.bmc.caBundle ? { caBundle: m.bmc.caBundle } : {}) };
      const result = await this.opts.pool.reading(spec, creds, this.timeoutMs);
      this.opts.metrics.powerReadings.inc({ driver, result: result.kind === 'reading' ? 'ok' : result.kind });
      if (result.kind === 'reading') {
        const changed = track.reading?.watts !== result.watts || track.reading.source !== result.source;
        track.reading = result;
        if (changed) this.opts.onChange?.(autoscaler);
        this.report(track, log, undefined);
      } else if (result.kind === 'none') {
        track.reading = undefined;
        track.nextAt = this.now() + this.intervalMs * NO_READING_FACTOR;
        this.report(track, log, `the BMC offers no power reading: ${result.reason}; the inventory figures stand in`);
      } else {
        // Skipped: tried again soon, the power operation (or the breaker) permitting.
        track.nextAt = this.now() + Math.min(this.intervalMs, 10_000);
      }
    } catch (err) {
      this.opts.metrics.powerReadings.inc({ driver, result: 'error' });
      this.report(track, log, `reading the power draw failed: ${errorMessage(err)}`);
    }
  }

  private report(track: Track, log: Logger, problem: string | undefined): void {
    if (problem !== undefined && problem !== track.problem) log.warn(problem);
    if (problem === undefined && track.problem !== undefined) log.info('the BMC reports the power draw again');
    track.problem = problem;
  }
}
