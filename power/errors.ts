/**
 * Typed BMC errors. Each carries what an operator needs to fix the problem: the BMC
 * (address, never credentials), what was being done, and a hint. `transient` errors may
 * succeed when retried; the others need a person or a configuration change.
 */

export type BmcErrorCode =
  | 'BMC_UNREACHABLE'
  | 'BMC_AUTH'
  | 'BMC_REFUSED'
  | 'BMC_TIMEOUT'
  | 'BMC_PROTOCOL'
  | 'BMC_DEGRADED';

export interface BmcErrorOptions {
  /** The BMC address (as in the inventory; it holds no credentials). */
  address: string;
  /** What was being done: "power on", "reading the power state", ... */
  operation: string;
  hint?: string;
  transient?: boolean;
  cause?: unknown;
  /** HTTP status or ipmitool exit code, where there is one. */
  status?: number;
}

export abstract class BmcError extends Error {
  abstract readonly code: BmcErrorCode;
  readonly address: string;
  readonly operation: string;
  readonly hint: string | undefined;
  readonly transient: boolean;
  readonly status: number | undefined;

  constructor(message: string, opts: BmcErrorOptions) {
    super(`${opts.operation} on ${opts.address}: ${message}${opts.hint ? ` (${opts.hint})` : ''}`, { cause: opts.cause });
    this.name = new.target.name;
    this.address = opts.address;
    this.operation = opts.operation;
    this.hint = opts.hint;
    this.transient = opts.transient ?? false;
    this.status = opts.status;
  }

  /** A form safe for logs, events and status: no stack, no cause chain. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, address: this.address, operation: this.operation, transient: this.transient };
  }
}

/** No answer at the network level: connection refused, no route, DNS, UDP silence. */
export class BmcUnreachableError extends BmcError {
  readonly code = 'BMC_UNREACHABLE';
  constructor(message: string, opts: BmcErrorOptions) {
    super(message, { hint: 'check the address and port in the inventory and that the BMC network is reachable from the manager', transient: true, ...opts });
  }
}

/** The BMC refused the credentials. Retrying does not help (and may lock the account). */
export class BmcAuthError extends BmcError {
  readonly code = 'BMC_AUTH';
  constructor(message: string, opts: BmcErrorOptions) {
    super(message, { hint: "check the username and password in the machine's credentials Secret", transient: false, ...opts });
  }
}

/** The BMC understood and said no (busy, wrong state, unsupported action). */
export class BmcRefusedError extends BmcError {
  readonly code = 'BMC_REFUSED';
}

/** The BMC did not answer in time, or the operation did not complete in time. */
export class BmcTimeoutError extends BmcError {
  readonly code = 'BMC_TIMEOUT';
  constructor(message: string, opts: BmcErrorOptions) {
    super(message, { transient: true, ...opts });
  }
}

/**
 * The BMC does not implement what was asked (IPMI completion code 0xC1 "Invalid command",
 * 0xC1-like answers to an optional command such as DCMI's power reading): a refusal that
 * no retry changes.
 */
export class BmcUnsupportedError extends BmcRefusedError {}

/** The BMC answered something this driver cannot interpret. */
export class BmcProtocolError extends BmcError {
  readonly code = 'BMC_PROTOCOL';
}

/**
 * The BMC's answer was larger than a Redfish answer can sensibly be, as sent or once
 * decompressed (a gzip bomb, or not a Redfish service): not read further, so it cannot
 * exhaust the manager's memory.
 */
export class BmcResponseTooLargeError extends BmcProtocolError {
  /** The limit that was exceeded, in bytes. */
  readonly limitBytes: number;
  constructor(message: string, opts: BmcErrorOptions & { limitBytes: number }) {
    super(message, { hint: 'a Redfish BMC answers in kilobytes: check that the address in the inventory is the BMC\'s Redfish service', ...opts });
    this.limitBytes = opts.limitBytes;
  }
}

/** The circuit breaker is open: the BMC failed repeatedly and is only probed rarely. */
export class BmcDegradedError extends BmcError {
  readonly code = 'BMC_DEGRADED';
  readonly retryAt: Date;
  constructor(message: string, opts: BmcErrorOptions & { retryAt: Date }) {
    super(message, { transient: true, ...opts });
    this.retryAt = opts.retryAt;
  }
}

export function isBmcError(err: unknown): err is BmcError {
  return err instanceof BmcError;
}

/**
 * A power change refused before it was sent, because the caller no longer may make it (the
 * controller's replica does not hold its lease: OperationOptions.fence). Not a fault of the
 * BMC: the breaker does not count it, and the intent stays for the next leader to settle.
 */
export class FencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FencedError';
  }
}
