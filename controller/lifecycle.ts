import type { MachinePhase, MachineStatus, Operation } from '../api/v1alpha1/baremetalautoscaler.js';
import { bootOnPhase } from './boot-times.js';

/**
 * The machine lifecycle, pure: from a machine's recorded status and what is observed now
 * (its Node, its BMC's power state, the outcome of an operation this process runs), the
 * next status and the actions to take.
 *
 *   Off → PoweringOn → Joining → Ready → Draining → PoweringOff → Off, and Failed.
 *
 * An operation recorded in status but not running in this process is an intent left by an
 * earlier leader: it is settled from the BMC's real power state before anything else
 * happens to the machine. A power state read before the intent was written says nothing
 * about it; one read after does. If the BMC still shows the old state once `settleGraceMs`
 * has passed since the intent, the operation was never carried out and is dropped (the
 * decision is taken again from scratch): no machine is powered twice for one decision.
 */

export interface PowerObservation {
  state: 'on' | 'off' | 'unknown';
  /** When it was read (ms). */
  at: number;
  error?: string;
}

export interface OperationOutcome {
  id: string;
  done: boolean;
  ok?: boolean;
  state?: 'on' | 'off';
  error?: string;
  /** True when the error says nothing about the machine's state (auth, unreachable...). */
  finishedAt?: number;
}

export interface MachineFacts {
  /** createdAt: when the Node object was created (ms), if known. */
  node?: { ready: boolean; exists: boolean; createdAt?: number };
  power?: PowerObservation;
  /** The operation of this process for this machine, if any. */
  outcome?: OperationOutcome;
  /**
   * For an intent this process did not start: until when it may still land (ms, on the
   * `now` clock; reconcile/settle.ts). Without it, settleGraceMs after the intent's startedAt.
   */
  mayLandUntil?: number;
}

export interface LifecycleSettings {
  joinTimeoutMs: number;
  settleGraceMs: number;
  quarantineBaseMs: number;
  quarantineMaxMs: number;
}

export type LifecycleAction =
  | { type: 'probe' }
  | { type: 'powerOff'; reason: 'JoinTimeout' }
  | { type: 'retryPowerOff' }
  | { type: 'joined'; joinMs: number }
  | { type: 'failed'; reason: string; message: string }
  | { type: 'poweredOff'; reason: string }
  | { type: 'adopted'; how: string };

export interface LifecycleResult {
  status: MachineStatus;
  actions: LifecycleAction[];
  /** When this machine next needs a look (ms), if it is waiting on time. */
  wakeAt?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function withPhase(s: MachineStatus, phase: MachinePhase, now: number, reason?: string, message?: string): MachineStatus {
  const next: MachineStatus = { name: s.name, phase, since: s.phase === phase ? s.since : iso(now) };
  if (s.failures !== undefined) next.failures = s.failures;
  if (s.powerCyclesToday !== undefined) next.powerCyclesToday = s.powerCyclesToday;
  if (s.powerCyclesDay !== undefined) next.powerCyclesDay = s.powerCyclesDay;
  const boot = bootOnPhase(s.boot, s.phase, phase, now);
  if (boot !== undefined) next.boot = boot;
  if (s.breakEven !== undefined) next.breakEven = s.breakEven;
  if (s.powerCycles !== undefined) next.powerCycles = s.powerCycles;
  if (reason !== undefined) next.reason = reason;
  if (message !== undefined) next.message = message;
  return next;
}

export function quarantineMs(failures: number, s: LifecycleSettings): number {
  return Math.min(s.quarantineMaxMs, s.quarantineBaseMs * 2 ** Math.max(0, failures - 1));
}

function failed(s: MachineStatus, now: number, settings: LifecycleSettings, reason: string, message: string): LifecycleResult {
  const failures = (s.failures ?? 0) + 1;
  const until = now + quarantineMs(failures, settings);
  const status: MachineStatus = { ...withPhase(s, 'Failed', now, reason, message), failures, retryAfter: iso(until) };
  return { status, actions: [{ type: 'failed', reason, message }], wakeAt: until };
}

/** One power-on counted against today's cycles (UTC), a scoring tie-breaker. */
export function countPowerCycle(s: MachineStatus, now: number): MachineStatus {
  const day = iso(now).slice(0, 10);
  const today = s.powerCyclesDay === day ? (s.powerCyclesToday ?? 0) : 0;
  return { ...s, powerCyclesToday: today + 1, powerCyclesDay: day };
}

export function advance(name: string, prev: MachineStatus | undefined, facts: MachineFacts, settings: LifecycleSettings, now: number): LifecycleResult {
  const s: MachineStatus = prev ?? { name, phase: 'Unknown', since: iso(now) };
  const nodeReady = facts.node?.ready === true;
  const op = s.operation;

  switch (s.phase) {
    case 'Unknown': {
      if (nodeReady) return { status: withPhase(s, 'Ready', now, 'NodeReady', 'its Node is Ready'), actions: [{ type: 'adopted', how: 'found Ready' }] };
      const p = facts.power;
      if (!p || p.state === 'unknown') return { status: s, actions: [{ type: 'probe' }] };
      if (p.state === 'on') {
        return { status: withPhase(s, 'Joining', now, 'FoundPoweredOn', 'the BMC reports it on; waiting for its Node'), actions: [] };
      }
      return { status: withPhase(s, 'Off', now, 'PoweredOff', 'the BMC reports it off'), actions: [] };
    }

    case 'Off':
      // Only a Node registered after the machine went off says it was powered on by hand: the
      // Node of a machine just powered off may still look Ready until the kubelet's lease ends.
      if (nodeReady && (facts.node?.createdAt === undefined || facts.node.createdAt > Date.parse(s.since))) {
        return {
          status: withPhase(s, 'Ready', now, 'PoweredOnByHand', 'its Node became Ready without bamel powering it on; adopted as Ready'),
          actions: [{ type: 'adopted', how: 'powered on by hand' }],
        };
      }
      return { status: s, actions: [] };

    case 'PoweringOn':
    case 'PoweringOff': {
      const action = s.phase === 'PoweringOn' ? 'PowerOn' : 'PowerOff';
      if (!op) {
        // A phase without its operation cannot be settled: look again from scratch.
        return { status: withPhase(s, 'Unknown', now, 'Resettled', 'no operation recorded'), actions: [{ type: 'probe' }] };
      }
      const outcome = facts.outcome && facts.outcome.id === op.id ? facts.outcome : undefined;
      if (outcome && !outcome.done) return { status: s, actions: [] };
      if (outcome?.done) {
        if (outcome.ok) return completed(s, op, now, settings);
        if (action === 'PowerOn') return failed(s, now, settings, 'PowerOnFailed', outcome.error ?? 'the power-on failed');
        return failed(s, now, settings, 'PowerOffFailed', outcome.error ?? 'the power-off failed');
      }
      // An intent from an earlier leader (or an earlier run of this process).
      if (action === 'PowerOn' && nodeReady) return { status: clearOp(withPhase(s, 'Ready', now, 'NodeReady', 'its Node is Ready')), actions: [] };
      const started = Date.parse(op.startedAt);
      const p = facts.power;
      if (!p || p.at <= started || p.state === 'unknown') return { status: s, actions: [{ type: 'probe' }], wakeAt: now + 1000 };
      const wanted = action === 'PowerOn' ? 'on' : 'off';
      if (p.state === wanted) return completed(s, op, now, settings);
      const landBy = facts.mayLandUntil ?? started + settings.settleGraceMs;
      if (now < landBy) return { status: s, actions: [{ type: 'probe' }], wakeAt: Math.min(now + 1000, landBy) };
      if (action === 'PowerOn') {
        return {
          status: clearOp(withPhase(s, 'Off', now, 'IntentNotCarriedOut', `power-on ${op.id} was recorded but the machine is still off; deciding again`)),
          actions: [],
        };
      }
      return { status: s, actions: [{ type: 'retryPowerOff' }] };
    }

    case 'Joining': {
      if (nodeReady) {
        const joinMs = now - Date.parse(s.since);
        return { status: { ...withPhase(s, 'Ready', now, 'Joined', 'its Node joined and is Ready'), failures: 0 }, actions: [{ type: 'joined', joinMs }] };
      }
      const deadline = Date.parse(s.since) + settings.joinTimeoutMs;
      if (now >= deadline) return { status: s, actions: [{ type: 'powerOff', reason: 'JoinTimeout' }] };
      return { status: s, actions: [], wakeAt: deadline };
    }

    case 'Ready':
      if (facts.node?.exists === false || (facts.node && !facts.node.ready)) {
        const p = facts.power;
        if (p && p.state === 'off' && p.at > Date.parse(s.since)) {
          return { status: withPhase(s, 'Off', now, 'PoweredOffByHand', 'the BMC reports it off and its Node is not Ready'), actions: [] };
        }
        return { status: s, actions: [{ type: 'probe' }] };
      }
      return { status: s, actions: [] };

    case 'Failed': {
      const until = s.retryAfter ? Date.parse(s.retryAfter) : now;
      if (now < until) return { status: s, actions: [], wakeAt: until };
      const next: MachineStatus = { ...withPhase(s, 'Unknown', now, 'QuarantineEnded', 'quarantine over; checking its power state') };
      delete next.retryAfter;
      return { status: next, actions: [{ type: 'probe' }] };
    }

    case 'Draining':
      return { status: s, actions: [] };
  }
}

function clearOp(s: MachineStatus): MachineStatus {
  const { operation: _op, ...rest } = s;
  return rest;
}

function completed(s: MachineStatus, op: Operation, now: number, settings: LifecycleSettings): LifecycleResult {
  if (op.action === 'PowerOn') {
    return { status: clearOp(withPhase(s, 'Joining', now, 'PoweredOn', 'the BMC reports it on; waiting for its Node')), actions: [] };
  }
  if (s.reason === 'JoinTimeout') {
    const f = failed(clearOp(s), now, settings, 'JoinTimeout', s.message ?? 'its Node did not join in time');
    return f;
  }
  return { status: clearOp(withPhase(s, 'Off', now, 'PoweredOff', 'powered off')), actions: [{ type: 'poweredOff', reason: s.reason ?? 'PowerOff' }] };
}

export function newOperation(action: Operation['action'], now: number, holder: string): Operation {
  const id = `${action === 'PowerOn' ? 'on' : 'off'}-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return { id, action, startedAt: iso(now), attempt: 1, holder };
}
