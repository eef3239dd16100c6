import { errorBody, task, TASK_MONITORS, type Json, type TaskState } from './resources.js';
import { isResetType, resetTarget, type FakeSystem, type ResetType } from './system.js';

/** An answer before it is written: status, JSON body, extra headers. */
export interface Reply {
  status: number;
  body?: Json;
  headers?: Record<string, string>;
}

interface Message {
  id: string;
  text: string;
}

interface FakeTask {
  id: string;
  system: FakeSystem;
  doneAt: number;
  failure: Message | undefined;
  timer: NodeJS.Timeout;
}

/** The Reset tasks of the task-monitor profile; a task carries out its Reset when it completes. */
export class TaskRegistry {
  private readonly tasks = new Map<string, FakeTask>();
  private next = 1;

  create(system: FakeSystem, failure: Message | undefined, apply: () => void): FakeTask {
    const id = String(this.next++);
    const timer = setTimeout(() => {
      if (failure === undefined) apply();
    }, system.tunables.taskMs);
    timer.unref();
    const created: FakeTask = { id, system, doneAt: Date.now() + system.tunables.taskMs, failure, timer };
    this.tasks.set(id, created);
    return created;
  }

  get(id: string): FakeTask | undefined {
    return this.tasks.get(id);
  }

  /** GET of the task monitor: 202 while running, then 200 with the finished Task. */
  monitor(found: FakeTask): Reply {
    const state = taskState(found);
    const body = task(found.id, state, found.failure === undefined ? [] : [found.failure]);
    if (state === 'Running') return { status: 202, body, headers: { 'retry-after': String(found.system.tunables.retryAfterSeconds), location: `${TASK_MONITORS}/${found.id}` } };
    return { status: 200, body };
  }

  /** GET of the Task resource itself. */
  resource(found: FakeTask): Reply {
    return { status: 200, body: task(found.id, taskState(found), found.failure === undefined ? [] : [found.failure]) };
  }

  clear(): void {
    for (const t of this.tasks.values()) clearTimeout(t.timer);
    this.tasks.clear();
  }
}

function taskState(found: FakeTask): TaskState {
  if (Date.now() < found.doneAt) return 'Running';
  return found.failure === undefined ? 'Completed' : 'Exception';
}

const POWER_ON_FAILED: Message = {
  id: 'Base.1.18.GeneralError',
  text: 'The system did not power on: the power supply reported a fault (simulated powerOnFails).',
};

/**
 * ComputerSystem.Reset as the system's profile and faults make it answer. Every request
 * emits one SimPowerEvent. Under the powerOnFails fault, On and ForceOn answer 500 with an
 * ExtendedInfo message (with task-monitor: the task ends in Exception) and the machine
 * stays off.
 */
export function handleReset(system: FakeSystem, body: unknown, tasks: TaskRegistry): Reply {
  const requested = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).ResetType : undefined;
  if (!isResetType(requested)) {
    const shown = requested === undefined ? 'missing' : JSON.stringify(requested);
    system.emit(typeof requested === 'string' ? requested : 'unknown', 'refused', `ResetType ${shown}`);
    return refuse(400, 'Base.1.18.ActionParameterNotSupported', `The value ${shown} for the parameter ResetType in the action ComputerSystem.Reset is not supported.`);
  }
  const type: ResetType = requested;
  if (!system.allowedResetTypes().includes(type)) {
    system.emit(type, 'refused', 'not allowed by the profile');
    return refuse(400, 'Base.1.18.ActionParameterNotSupported', `The value "${type}" for the parameter ResetType in the action ComputerSystem.Reset is not supported.`);
  }
  if (system.inConflictWindow()) {
    if (system.has('conflict-after-off')) {
      system.emit(type, 'refused', 'conflict after power-off');
      return refuse(409, 'IDRAC.2.9.SYS518', 'iDRAC is not ready to perform the requested power action because a previous power state change is still being processed.', 'Wait a few seconds and retry the operation.');
    }
    if (system.has('invalid-state-after-off')) {
      system.emit(type, 'refused', 'invalid operation for the system state');
      return refuse(400, 'iLO.2.15.InvalidOperationForSystemState', 'The operation was not successful due to the current power state (for example, attempting to turn the power off when it is already off).');
    }
  }
  if (system.alreadyIn(type)) {
    system.emit(type, 'already');
    if (system.has('already-in-state-conflict')) {
      const state = resetTarget(type) === 'on' ? 'on' : 'off';
      return refuse(409, 'Base.1.18.ActionNotSupported', `Unable to complete the operation because the server is already powered ${state}.`);
    }
    return { status: 204 };
  }
  const failure = system.faults.powerOnFails === true && resetTarget(type) === 'on' ? POWER_ON_FAILED : undefined;
  if (system.has('task-monitor')) {
    const created = tasks.create(system, failure, () => {
      const before = system.power;
      system.applyReset(type);
      if (system.power !== before) system.emit(type, 'ok', 'completed by task');
    });
    system.emit(type, failure === undefined ? 'ok' : 'failed', `task ${created.id}`);
    return { status: 202, headers: { location: `${TASK_MONITORS}/${created.id}`, 'retry-after': String(system.tunables.retryAfterSeconds) } };
  }
  if (failure !== undefined) {
    system.emit(type, 'failed', 'powerOnFails');
    return refuse(500, failure.id, failure.text);
  }
  system.applyReset(type);
  system.emit(type, 'ok');
  return { status: 204 };
}

export function refuse(status: number, messageId: string, message: string, resolution?: string): Reply {
  return { status, body: errorBody(messageId, message, resolution) };
}
