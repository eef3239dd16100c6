import type { Logger } from 'pino';
import type { ParsedMachine } from '../api/inventory.js';
import type { Operation } from '../api/v1alpha1/baremetalautoscaler.js';
import type { BmcCredentials } from '../power/credentials.js';
import { FencedError, isBmcError } from '../power/errors.js';
import type { BmcPool } from '../power/pool.js';
import type { OperationOutcome, PowerObservation } from './lifecycle.js';
import type { ControllerMetrics } from './metrics.js';
import { errorMessage } from '../kube/errors.js';

/** The machine's BMC credentials, read from the Secret in the namespace of the autoscaler's inventory. */
export type CredentialsFor = (machine: ParsedMachine, autoscaler: string) => Promise<BmcCredentials>;

export interface ActuatorOptions {
  pool: BmcPool;
  credentials: CredentialsFor;
  metrics: ControllerMetrics;
  logger: Logger;
  gracefulTimeoutMs: number;
  /**
   * The longest one power operation may take, end to end (waiting for the BMC's other
   * operation included). A new leader counts on it: an intent it did not start may land
   * until then (controller/reconcile/settle.ts). Default 300 s.
   */
  operationTimeoutMs?: number;
  /**
   * Fencing: throws unless this replica holds its lease with a margin left. Checked before
   * an operation starts and immediately before each request that changes a machine's power.
   */
  fence?: () => void;
  /** At most one power-state read per machine per this interval (a dead BMC is not hammered). */
  minProbeIntervalMs?: number;
  /** Power-state reads at once; more wait their turn (a fleet's first reconcile asks for thousands). Default 64. */
  maxConcurrentProbes?: number;
  /** Called when an operation or a probe finishes, with the autoscaler to reconcile. */
  onDone: (autoscaler: string) => void;
  now?: () => number;
}

interface Running {
  autoscaler: string;
  outcome: OperationOutcome;
}

/**
 * Runs BMC operations in the background, after their intent is in status, and keeps their
 * outcomes until the reconciler has recorded them. Also reads power states (probes) for
 * machines whose state is unknown or whose intent must be settled. Everything here is
 * in memory: after a restart or a leader change the next leader settles from the BMC.
 */
export class Actuator {
  private readonly ops = new Map<string, Running>();
  private readonly observations = new Map<string, PowerObservation>();
  private readonly probing = new Set<string>();
  private readonly probeQueue = new Map<string, { autoscaler: string; machine: ParsedMachine }>();
  private readonly lastProbe = new Map<string, number>();
  private abort = new AbortController();
  /** Aborts the moment leadership ends, before the lease is released. */
  private leadership: AbortSignal | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: ActuatorOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * This replica leads: operations and probes obey `signal`, which aborts the moment the
   * lease is lost (before it is released), so nothing in flight outlives the leadership.
   */
  lead(signal: AbortSignal): void {
    this.leadership = signal;
    signal.addEventListener('abort', () => this.abortAll(), { once: true });
  }

  /** The signal BMC calls obey: shutdown, abortAll, and the end of leadership. */
  private signal(extra?: AbortSignal): AbortSignal {
    const signals = [this.abort.signal];
    if (this.leadership) signals.push(this.leadership);
    if (extra) signals.push(extra);
    return signals.length === 1 ? this.abort.signal : AbortSignal.any(signals);
  }

  /** The outcome of this process's operation on the machine, if it runs or ran one. */
  outcome(machine: string): OperationOutcome | undefined {
    return this.ops.get(machine)?.outcome;
  }

  power(machine: string): PowerObservation | undefined {
    return this.observations.get(machine);
  }

  /** The outcome is in status now: forget it. */
  acknowledge(machine: string, opId: string): void {
    if (this.ops.get(machine)?.outcome.id === opId) this.ops.delete(machine);
  }

  busy(machine: string): boolean {
    const r = this.ops.get(machine);
    return r !== undefined && !r.outcome.done;
  }

  start(autoscaler: string, machine: ParsedMachine, op: Operation): void {
    if (this.busy(machine.name)) throw new Error(`machine ${machine.name} already has an operation running`);
    // Not leading any more (or about to stop): the intent stays in status for the next leader.
    this.opts.fence?.();
    const outcome: OperationOutcome = { id: op.id, done: false };
    this.ops.set(machine.name, { autoscaler, outcome });
    const signal = this.signal(AbortSignal.timeout(this.opts.operationTimeoutMs ?? 300_000));
    const fence = this.opts.fence;
    const action = op.action === 'PowerOn' ? 'on' : 'off';
    const log = this.opts.logger.child({ autoscaler, machine: machine.name, operation: op.id, action });
    const started = this.now();
    void (async () => {
      let driverKind = machine.bmc.parsedAddress.driver;
      try {
        const creds = await this.opts.credentials(machine, autoscaler);
        const driver = this.opts.pool.driver({ name: machine.name, address: machine.bmc.address, insecureSkipVerify: machine.bmc.insecureSkipVerify, ...(machine.bmc.caBundle ? { caBundle: machine.bmc.caBundle } : {}) }, creds);
        driverKind = driver.kind;
        // The credentials read took a while: still leading, still holding the lease?
        signal.throwIfAborted();
        fence?.();
        log.info('power operation sent to the BMC');
        const opts = { signal, ...(fence ? { fence } : {}) };
        const result = op.action === 'PowerOn' ? await driver.powerOn(opts) : await driver.powerOff({ ...opts, gracefulTimeoutMs: this.opts.gracefulTimeoutMs });
        Object.assign(outcome, { done: true, ok: true, state: result.state, finishedAt: this.now() });
        this.observations.set(machine.name, { state: result.state, at: this.now() });
        this.opts.metrics.powerOperations.inc({ action, result: result.alreadyInState ? 'already' : 'ok', driver: driverKind });
        log.info({ state: result.state, alreadyInState: result.alreadyInState, method: result.method, ms: result.durationMs }, 'power operation done');
      } catch (err) {
        if (err instanceof FencedError || (signal.aborted && this.leadership?.aborted === true)) {
          // Not a failure of the machine: this replica stopped leading before (or while) it
          // could act. The intent stays in status; whoever leads next settles it.
          if (this.ops.get(machine.name)?.outcome === outcome) this.ops.delete(machine.name);
          this.opts.metrics.powerOperations.inc({ action, result: 'fenced', driver: driverKind });
          log.warn({ err: errorMessage(err) }, 'power operation not made: this replica no longer leads');
          return;
        }
        const code = isBmcError(err) ? err.code : 'ERROR';
        const message = errorMessage(err);
        Object.assign(outcome, { done: true, ok: false, error: message, finishedAt: this.now() });
        this.opts.metrics.powerOperations.inc({ action, result: code, driver: driverKind });
        log.warn({ code, err: message }, 'power operation failed');
      } finally {
        this.opts.metrics.powerOperationDuration.observe({ action, driver: driverKind }, (this.now() - started) / 1000);
        this.opts.onDone(autoscaler);
      }
    })();
  }

  /**
   * Reads the machine's power state in the background (one read at a time per machine, at
   * most maxConcurrentProbes at once: the others are queued). True when a read is under way
   * or queued; the autoscaler is reconciled when it finishes.
   */
  probe(autoscaler: string, machine: ParsedMachine): boolean {
    if (this.probing.has(machine.name) || this.probeQueue.has(machine.name) || this.busy(machine.name)) return false;
    // A replica that no longer holds its lease reads no BMC either.
    try {
      this.opts.fence?.();
    } catch {
      return false;
    }
    const last = this.lastProbe.get(machine.name) ?? 0;
    if (this.now() - last < (this.opts.minProbeIntervalMs ?? 2000)) return false;
    this.lastProbe.set(machine.name, this.now());
    this.probeQueue.set(machine.name, { autoscaler, machine });
    this.startProbes();
    return true;
  }

  private startProbes(): void {
    const max = this.opts.maxConcurrentProbes ?? 64;
    for (const [name, queued] of this.probeQueue) {
      if (this.probing.size >= max) return;
      this.probeQueue.delete(name);
      this.readPower(queued.autoscaler, queued.machine);
    }
  }

  private readPower(autoscaler: string, machine: ParsedMachine): void {
    this.probing.add(machine.name);
    const signal = this.signal();
    void (async () => {
      try {
        const creds = await this.opts.credentials(machine, autoscaler);
        const driver = this.opts.pool.driver({ name: machine.name, address: machine.bmc.address, insecureSkipVerify: machine.bmc.insecureSkipVerify, ...(machine.bmc.caBundle ? { caBundle: machine.bmc.caBundle } : {}) }, creds);
        const state = await driver.status({ signal });
        this.observations.set(machine.name, { state, at: this.now() });
      } catch (err) {
        const message = errorMessage(err);
        this.observations.set(machine.name, { state: 'unknown', at: this.now(), error: message });
        this.opts.logger.warn({ autoscaler, machine: machine.name, err: message }, 'reading the power state failed');
      } finally {
        this.probing.delete(machine.name);
        this.startProbes();
        this.opts.onDone(autoscaler);
      }
    })();
  }

  /** When the next probe of the machine may start (ms). */
  nextProbeAt(machine: string): number {
    return (this.lastProbe.get(machine) ?? 0) + (this.opts.minProbeIntervalMs ?? 2000);
  }

  /** Leadership lost or shutting down: stop talking to BMCs at once. */
  abortAll(): void {
    this.abort.abort();
    this.abort = new AbortController();
    this.ops.clear();
    this.probeQueue.clear();
    this.observations.clear();
    this.lastProbe.clear();
  }
}
