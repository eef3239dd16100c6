import { setTimeout as sleepFor } from 'node:timers/promises';
import { BmcTimeoutError, isBmcError } from './errors.js';

export interface OperationInit {
  /** What is being done, as it appears in errors: "power on", "reading the power state". */
  operation: string;
  /** The BMC endpoint, as it appears in errors. */
  endpoint: string;
  timeoutMs: number;
  /** The caller's signal. */
  signal?: AbortSignal | undefined;
  /** Aborted when the driver closes. */
  closing: AbortSignal;
  /** OperationOptions.fence. */
  fence?: (() => void) | undefined;
}

/**
 * One driver call (Redfish or IPMI): its name and endpoint for errors, and one signal that
 * every request, ipmitool run and wait of the call obeys. The signal fires at the operation deadline, on the
 * caller's signal, or when the driver closes; `translate` then turns whatever the
 * aborted request threw into the error that says which of the three it was.
 */
export class Operation {
  readonly operation: string;
  readonly endpoint: string;
  readonly signal: AbortSignal;
  readonly startedAt = Date.now();
  protected readonly timeoutMs: number;
  private readonly deadline = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly callerSignal: AbortSignal | undefined;
  private readonly closing: AbortSignal;
  private readonly fence: (() => void) | undefined;

  constructor(init: OperationInit) {
    this.fence = init.fence;
    this.operation = init.operation;
    this.endpoint = init.endpoint;
    this.timeoutMs = init.timeoutMs;
    this.callerSignal = init.signal;
    this.closing = init.closing;
    this.timer = setTimeout(() => this.deadline.abort(), init.timeoutMs);
    this.timer.unref();
    const signals = [this.deadline.signal, init.closing];
    if (init.signal !== undefined) signals.push(init.signal);
    this.signal = AbortSignal.any(signals);
  }

  get elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  get remainingMs(): number {
    return Math.max(0, this.startedAt + this.timeoutMs - Date.now());
  }

  /** Waits, or throws when the operation is aborted meanwhile. */
  async sleep(ms: number): Promise<void> {
    await sleepFor(Math.max(0, ms), undefined, { signal: this.signal });
  }

  /** Right before a request that changes the power: aborted, or fenced off, throws. */
  beforePowerChange(): void {
    this.check();
    this.fence?.();
  }

  /** Throws at once if the operation was aborted. */
  check(): void {
    if (this.signal.aborted) throw this.translate(new Error('aborted'));
  }

  translate(err: unknown): unknown {
    if (!this.signal.aborted || (isBmcError(err) && err.code !== 'BMC_TIMEOUT')) return err;
    if (this.callerSignal?.aborted === true) {
      const reason: unknown = this.callerSignal.reason;
      return reason instanceof Error ? reason : new DOMException(`${this.operation} on ${this.endpoint} was aborted`, 'AbortError');
    }
    if (this.closing.aborted) return new DOMException(`${this.operation} on ${this.endpoint} was aborted: the driver was closed`, 'AbortError');
    return this.deadlineError(err);
  }

  /** The error for the operation deadline; a driver may say more about where it stood. */
  protected deadlineError(cause: unknown): unknown {
    return new BmcTimeoutError(`did not finish within ${this.timeoutMs} ms`, {
      address: this.endpoint,
      operation: this.operation,
      hint: 'the BMC may be slow or stuck; raise the operation timeout if it is only slow',
      cause,
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
