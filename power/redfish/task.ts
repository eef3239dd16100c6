import type { Logger } from 'pino';
import { BmcRefusedError } from '../errors.js';
import type { RedfishAuth } from './auth.js';
import { redfishMessages, retryAfterMs, statusError, stringField, type RedfishResponse } from './messages.js';
import type { Operation } from '../operation.js';
import type { RedfishTransport } from './transport.js';

const RUNNING_STATES = new Set(['New', 'Starting', 'Running', 'Pending', 'Stopping', 'Suspended', 'Service', 'Interrupted', 'Cancelling']);
const FAILED_STATES = new Set(['Exception', 'Killed', 'Cancelled']);

export interface TaskWait {
  auth: RedfishAuth;
  transport: RedfishTransport;
  log: Logger;
  /** The pause between polls when the BMC gives no Retry-After. */
  pollMs: number;
}

/**
 * Follows the task monitor of an action the BMC accepted with 202. The action is done
 * when the monitor answers 200/204 without a running Task, or a Task in state Completed;
 * gone (404/410) also means done, as BMCs delete finished monitors. A Task that ends in
 * Exception, Killed or Cancelled is a refusal carrying the Task's messages.
 */
export async function waitForTask(op: Operation, accepted: RedfishResponse, wait: TaskWait): Promise<void> {
  const location = firstHeader(accepted, 'location');
  const monitor = location === undefined ? undefined : wait.transport.sameOriginPath(location);
  if (monitor === undefined) {
    // Without a monitor on this BMC the power state is the only progress there is.
    if (location !== undefined) wait.log.warn({ location }, 'not following a task monitor on another origin');
    return;
  }
  let delay = retryAfterMs(accepted.headers) ?? wait.pollMs;
  for (;;) {
    await op.sleep(delay);
    const res = await wait.auth.request(op, { method: 'GET', path: monitor });
    const state = stringField(res.body, 'TaskState');
    if (state !== undefined && FAILED_STATES.has(state)) {
      const messages = redfishMessages(res.body);
      const detail = messages.length === 0 ? '' : `: ${messages.join('; ')}`;
      throw new BmcRefusedError(wait.transport.redact(`the BMC's task for ${accepted.method} ${accepted.path} ended in ${state}${detail}`), {
        address: op.endpoint,
        operation: op.operation,
        status: res.status,
      });
    }
    if (res.status === 204 || res.status === 404 || res.status === 410) return;
    if (res.status === 200 && (state === undefined || !RUNNING_STATES.has(state))) return;
    if (res.status !== 200 && res.status !== 202) throw statusError({ operation: op.operation, endpoint: op.endpoint, redact: wait.transport.redact }, 'following the task monitor', res);
    delay = retryAfterMs(res.headers) ?? wait.pollMs;
    wait.log.debug({ monitor, state, delay }, 'task still running');
  }
}

function firstHeader(res: RedfishResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
