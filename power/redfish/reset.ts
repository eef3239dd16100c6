import type { Logger } from 'pino';
import { BmcProtocolError, BmcRefusedError } from '../errors.js';
import type { RedfishAuth, RetryPolicy } from './auth.js';
import { isTransientResetRefusal, retryAfterMs, saysAlreadyInState, statusError, type RedfishResponse } from './messages.js';
import type { Operation } from '../operation.js';
import type { RedfishSystem, SystemView } from './system.js';
import { waitForTask } from './task.js';
import type { RedfishTransport } from './transport.js';

export interface ResetSenderDeps {
  auth: RedfishAuth;
  transport: RedfishTransport;
  system: RedfishSystem;
  retry: RetryPolicy;
  log: Logger;
  /** Task monitor polls when the BMC gives no Retry-After. */
  pollMs: number;
}

export interface ResetOutcome {
  /** The ResetType the BMC accepted. */
  resetType: string;
  /** The BMC said (or showed, while refusing) that the system already was in that state. */
  already: boolean;
}

/**
 * POSTs ComputerSystem.Reset and sees it through: picks the first candidate ResetType the
 * BMC allows, follows a 202's task monitor, treats "already in that state" as success,
 * and waits out transient refusals (iDRAC's 409 after a power change, iLO's
 * InvalidOperationForSystemState), re-reading the power state before each retry in case
 * the refusal meant the change had already happened.
 */
export class ResetSender {
  constructor(private readonly deps: ResetSenderDeps) {}

  async send(op: Operation, view: SystemView, candidates: readonly string[], target: 'On' | 'Off'): Promise<ResetOutcome> {
    const reset = view.reset;
    if (reset === undefined) {
      throw new BmcProtocolError(`the system ${view.path} has no #ComputerSystem.Reset action with a target`, { address: op.endpoint, operation: op.operation });
    }
    const allowed = await this.deps.system.allowedResetTypes(op, reset);
    const types = allowed === undefined ? candidates : candidates.filter((c) => allowed.includes(c));
    if (allowed !== undefined && types.length === 0) {
      throw new BmcRefusedError(`the BMC allows none of ${candidates.join(', ')} for ${view.path}; it allows ${allowed.join(', ')}`, {
        address: op.endpoint,
        operation: op.operation,
      });
    }
    for (let i = 0; i < types.length; i++) {
      const type = types[i] as string;
      const next = types[i + 1];
      // Only when the BMC did not list its values is a 400 read as "not this ResetType".
      const outcome = await this.post(op, reset.target, type, target, allowed === undefined && next !== undefined);
      if (outcome !== 'unsupported') return { resetType: type, already: outcome === 'already' };
      this.deps.log.info({ refused: type, next }, 'the BMC refused the ResetType (400) and lists no allowed values; trying the next one');
    }
    /* c8 ignore next */
    throw new Error('unreachable: the last candidate never answers "unsupported"');
  }

  private async post(op: Operation, path: string, type: string, target: 'On' | 'Off', mayTryNext: boolean): Promise<'sent' | 'already' | 'unsupported'> {
    const { auth, retry, log } = this.deps;
    for (let attempt = 1; ; attempt++) {
      op.beforePowerChange();
      const res = await auth.request(op, { method: 'POST', path, body: { ResetType: type } });
      if (res.status === 200 || res.status === 204) return 'sent';
      if (res.status === 202) {
        await waitForTask(op, res, this.deps);
        return 'sent';
      }
      if (saysAlreadyInState(res, target)) return 'already';
      if (isTransientResetRefusal(res)) {
        if ((await this.deps.system.read(op)).powerState === target) return 'already';
        if (attempt >= retry.attempts) {
          throw this.error(op, `ResetType ${type} was still refused after ${attempt} tries`, res, {
            transient: true,
            hint: 'the BMC is busy with an earlier power change or in a state that forbids this one; try again later',
          });
        }
        const waitMs = retryAfterMs(res.headers) ?? retry.delayMs;
        log.info({ status: res.status, resetType: type, attempt, waitMs }, 'the BMC refused the Reset for now; retrying');
        await op.sleep(waitMs);
        continue;
      }
      if (res.status === 400 && mayTryNext) return 'unsupported';
      throw this.error(op, `sending ResetType ${type}`, res);
    }
  }

  private error(op: Operation, what: string, res: RedfishResponse, extra?: { transient: boolean; hint: string }) {
    return statusError({ operation: op.operation, endpoint: op.endpoint, redact: this.deps.transport.redact }, what, res, extra);
  }
}
