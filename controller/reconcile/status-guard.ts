import type { BareMetalAutoscalerStatus, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { setCondition } from '../conditions.js';
import { packLearned, unpackLearned } from './learned-codec.js';

/**
 * The last line of defence before a status goes to the API server: etcd refuses a request
 * over 1.5 MiB, and a status write that fails every time would stall the controller (no
 * intent written, nothing actuated). Over the safe size, per-machine detail is left out in
 * a fixed order, least needed first, until the status fits; the StatusTrimmed condition
 * says what was left out. Operation intents (and each machine's name, phase and since) are
 * never dropped. Pure.
 */

/** Well under etcd's 1.5 MiB request limit (the object's metadata and spec come on top). */
export const SAFE_STATUS_BYTES = 1.4 * 1024 * 1024;

interface Trim {
  /** What the condition names. */
  what: string;
  /** Per machine (a large fleet's packed learned state included: learned-codec.ts). */
  apply: (m: MachineStatus) => MachineStatus;
}

const omit = <K extends keyof MachineStatus>(m: MachineStatus, key: K): MachineStatus => {
  if (m[key] === undefined) return m;
  const { [key]: _gone, ...rest } = m;
  return rest as MachineStatus;
};

/** Least needed first: readings (in the metrics), words (in the events), then learned detail. */
export const TRIMS: readonly Trim[] = [
  { what: 'machines[].power (see the metric bamel_machine_power_watts)', apply: (m) => omit(m, 'power') },
  { what: 'machines[].blockers (see the ScaleDownBlocked events)', apply: (m) => omit(m, 'blockers') },
  {
    what: 'machines[].message and drain.lastRefusal of machines not Failed (see the events)',
    apply: (m) => {
      if (m.phase === 'Failed') return m;
      const out = omit(m, 'message');
      if (out.drain?.lastRefusal === undefined) return out;
      const { lastRefusal: _l, ...drain } = out.drain;
      return { ...out, drain };
    },
  },
  {
    what: 'machines[].boot.recentSeconds (the learned p90 stays)',
    apply: (m) => {
      if (!m.boot?.recentSeconds) return m;
      const { recentSeconds: _r, ...boot } = m.boot;
      return { ...m, boot };
    },
  },
  { what: 'machines[].breakEven', apply: (m) => omit(m, 'breakEven') },
  // An operation's reason says how it ends (a JoinTimeout power-off quarantines): kept.
  { what: 'machines[].reason and message of machines without an operation', apply: (m) => (m.operation ? m : omit(omit(m, 'reason'), 'message')) },
];

/** The final resort: machines at rest without an operation (the next reconcile reads their power state again). */
const LAST_RESORT = 'the entries of Off and Failed machines without an operation (their power state is read again)';

export interface FitResult {
  status: BareMetalAutoscalerStatus;
  /** Its JSON (what goes on the wire). */
  text: string;
  /** What was left out, in order; empty when the status fitted. */
  trimmed: string[];
}

export interface FitOptions {
  limitBytes: number;
  generation: number;
  now: number;
}

export function fitStatus(status: BareMetalAutoscalerStatus, o: FitOptions): FitResult {
  let text = JSON.stringify(status);
  const hadCondition = status.conditions?.some((c) => c.type === 'StatusTrimmed') === true;
  if (Buffer.byteLength(text) <= o.limitBytes) {
    if (!hadCondition) return { status, text, trimmed: [] };
    const cleared = withCondition(status, [], Buffer.byteLength(text), o);
    return { status: cleared, text: JSON.stringify(cleared), trimmed: [] };
  }
  const original = Buffer.byteLength(text);
  const trimmed: string[] = [];
  let current = status;
  for (const trim of TRIMS) {
    current = perMachine(current, (ms) => ms.map(trim.apply));
    trimmed.push(trim.what);
    current = withCondition(current, trimmed, original, o);
    text = JSON.stringify(current);
    if (Buffer.byteLength(text) <= o.limitBytes) return { status: current, text, trimmed };
  }
  current = perMachine(current, (ms) => ms.filter((m) => m.operation !== undefined || (m.phase !== 'Off' && m.phase !== 'Failed')));
  trimmed.push(LAST_RESORT);
  current = withCondition(current, trimmed, original, o);
  return { status: current, text: JSON.stringify(current), trimmed };
}

/** Changes the machines, their packed learned state unpacked first and packed again after. */
function perMachine(status: BareMetalAutoscalerStatus, change: (machines: MachineStatus[]) => MachineStatus[]): BareMetalAutoscalerStatus {
  const rest = unpackLearned(status);
  const machines = change(rest.machines ?? []);
  if (status.learned === undefined) return { ...rest, machines };
  const packed = packLearned(machines);
  return { ...rest, machines: packed.machines, ...(packed.learned !== undefined ? { learned: packed.learned } : {}) };
}

function withCondition(status: BareMetalAutoscalerStatus, trimmed: readonly string[], bytes: number, o: FitOptions): BareMetalAutoscalerStatus {
  const conditions = setCondition(
    status.conditions ?? [],
    trimmed.length > 0
      ? { type: 'StatusTrimmed', status: 'True', reason: 'SizeLimit', message: `the status would be ${bytes} bytes, over the safe size of ${Math.floor(o.limitBytes)}: left out ${trimmed.join('; ')}` }
      : { type: 'StatusTrimmed', status: 'False', reason: 'WithinLimit', message: `the status (${bytes} bytes) is within the safe size of ${Math.floor(o.limitBytes)}` },
    o.generation,
    new Date(o.now),
  );
  return { ...status, conditions };
}
