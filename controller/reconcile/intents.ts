import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec, MachineStatus, ScaleEvent } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { ScaleUpDecision } from '../decide.js';
import { countPowerCycle, newOperation } from '../lifecycle.js';
import type { CategoryReading } from '../pressure.js';
import type { Intent, MachineStates } from './types.js';

/**
 * Intents: the power operations this reconcile asks for, turned into status entries (the
 * operation id, action, time and holder) that are written before any BMC is called. A new
 * leader reads them back, so no machine is powered twice for one decision.
 */

/**
 * Deletion with deletionPolicy PowerOff: machines still joining are powered off at once (no
 * pod runs there yet); Ready ones are drained first by the scale-down step, which says what
 * keeps each one on. Retain leaves every machine as it is. Returns the power-offs to add and
 * what the deletion waits for.
 */
export function deletionIntents(spec: BareMetalAutoscalerSpec, selected: readonly ParsedMachine[], machines: MachineStates, already: readonly Intent[]): { intents: Intent[]; blocked: string[] } {
  const intents: Intent[] = [];
  const blocked: string[] = [];
  if (spec.deletionPolicy !== 'PowerOff') return { intents, blocked };
  for (const m of selected) {
    const s = machines.get(m.name);
    if (s?.operation) {
      blocked.push(`${m.name}: waiting for its ${s.operation.action} operation`);
      continue;
    }
    if (s?.phase !== 'Joining') continue;
    if (!already.some((i) => i.machine.name === m.name)) {
      intents.push({ machine: m, action: 'PowerOff', reason: 'AutoscalerDeleted', message: 'the autoscaler is being deleted with deletionPolicy PowerOff' });
    }
    blocked.push(`${m.name}: powering off`);
  }
  return { intents, blocked };
}

/** The scale-up decision's power-ons, with the message status and events carry. */
export function powerOnIntents(spec: BareMetalAutoscalerSpec, decision: ScaleUpDecision, selected: readonly ParsedMachine[], readings: readonly CategoryReading[]): Intent[] {
  const byName = new Map(selected.map((m) => [m.name, m]));
  return decision.powerOn.map((choice) => {
    const message =
      choice.reason === 'PendingPods'
        ? `powering on for ${choice.pods.length} pending pod(s): ${choice.detail}`
        : choice.reason === 'Pressure'
          ? `powering on for ${readings.filter((r) => r.pressured).map((r) => r.reason).join('; ')}: ${choice.detail}`
          : choice.reason === 'PreWarm'
            ? `pre-warming: ${choice.detail}`
            : `powering on to reach minMachines ${spec.minMachines}`;
    return { machine: byName.get(choice.machine) as ParsedMachine, action: 'PowerOn', reason: choice.reason, message };
  });
}

export interface Started {
  machine: ParsedMachine;
  status: MachineStatus;
}

export interface AppliedIntents {
  machines: Map<string, MachineStatus>;
  started: Started[];
  lastScaleEvent: ScaleEvent | undefined;
}

/** Each intent becomes its machine's status: PoweringOn or PoweringOff with a new operation. */
export function applyIntents(machines: MachineStates, intents: readonly Intent[], lastScaleEvent: ScaleEvent | undefined, identity: string, now: number): AppliedIntents {
  const next = new Map(machines);
  const started: Started[] = [];
  const nowIso = new Date(now).toISOString();
  let last = lastScaleEvent;
  for (const intent of intents) {
    const found = next.get(intent.machine.name) ?? { name: intent.machine.name, phase: 'Unknown' as const, since: nowIso };
    const { drain: _drain, disruption: _disruption, unneededSince: _unneeded, blockers: _blockers, ...base } = found;
    let status: MachineStatus = {
      ...base,
      phase: intent.action === 'PowerOn' ? 'PoweringOn' : 'PoweringOff',
      since: nowIso,
      operation: newOperation(intent.action, now, identity),
      reason: intent.reason,
      message: intent.message,
    };
    if (intent.action === 'PowerOn') status = countPowerCycle(status, now);
    next.set(intent.machine.name, status);
    started.push({ machine: intent.machine, status });
    if (intent.action === 'PowerOn' || !intent.retry) {
      last = { time: nowIso, direction: intent.action === 'PowerOn' ? 'Up' : 'Down', machine: intent.machine.name, reason: intent.message };
    }
  }
  return { machines: next, started, lastScaleEvent: last };
}
