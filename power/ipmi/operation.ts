/**
 * One IpmiDriver call. The driver's state machine and the ipmitool runner both add to it
 * (where the call stood, what the BMC last said), so that a call that runs out of time says
 * more than "did not finish".
 */
import type { PowerState } from '../driver.js';
import { BmcTimeoutError } from '../errors.js';
import { Operation } from '../operation.js';

/**
 * An IPMI call: the shared operation deadline, plus what the call was doing and what the
 * BMC last said, for the timeout message.
 */
export class IpmiOperation extends Operation {
  phase: string | undefined;
  lastState: PowerState | undefined;
  lastFailure: string | undefined;

  protected override deadlineError(err: unknown): unknown {
    // A silence already diagnosed says more than the deadline that followed it.
    if (err instanceof BmcTimeoutError) return err;
    const doing = this.phase === undefined ? '' : ` while ${this.phase}${this.lastState === undefined ? '' : ` (it last reported ${this.lastState})`}`;
    const last = this.lastFailure === undefined ? '' : `; last failure: ${this.lastFailure}`;
    // No cause: an ipmitool failure carries its argv and environment.
    return new BmcTimeoutError(`did not finish within ${this.timeoutMs} ms${doing}${last}`, {
      address: this.endpoint,
      operation: this.operation,
      hint: 'the BMC may be slow or stuck; raise the operation timeout if it is only slow',
    });
  }
}
