import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { untoleratedTaints } from '../../scheduling/index.js';
import { learnedBootSeconds } from '../boot-times.js';
import { decideScaleUp, type ScaleUpCandidate, type ScaleUpDecision } from '../decide.js';
import { isDaemonSetPod, isMirrorPod } from '../observe.js';
import type { PressureObservation } from '../pressure-tracker.js';
import type { ResourceVector } from '../scoring.js';
import type { Budget } from './budget.js';
import type { Demand } from './demand.js';
import type { MachineStates } from './types.js';

/**
 * Scale-up: the powered-off machines that may be chosen, then the decision (controller/decide.ts,
 * pure) for the pending pods, or for pressure when no pod waits, or to reach minMachines.
 */

export interface ScaleUpStepInput {
  spec: BareMetalAutoscalerSpec;
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  demand: Demand;
  /** Pending pods (not traffic replicas): pressure only counts when none wait. */
  pendingCount: number;
  budget: Budget;
  pressure: PressureObservation;
  /** A machine with a BMC operation of this process still running cannot be chosen. */
  busy: (machine: string) => boolean;
  /** Pods running on a machine (for the taints the pressured workloads tolerate). */
  podsOn: (machine: string) => k8s.V1Pod[];
  unread: number;
  /** Until when an Off machine rests after its power-off (scaleDown.minOffSeconds; controller/break-even.ts). */
  resting?: (machine: string) => number | undefined;
  now: number;
}

export interface ScaleUpStep {
  decision: ScaleUpDecision;
  wakeAts: number[];
}

export function scaleUpStep(input: ScaleUpStepInput): ScaleUpStep {
  const { spec, machines, demand, budget, pressure, now } = input;
  const phaseOf = (n: string): string | undefined => machines.get(n)?.phase;
  const offCandidates: ScaleUpCandidate[] = input.selected
    .filter((m) => phaseOf(m.name) === 'Off' && !input.busy(m.name))
    .map((m) => ({
      name: m.name,
      capacity: m.capacity,
      ...(m.power?.maxWatts !== undefined ? { powerCost: m.power.maxWatts } : m.power?.idleWatts !== undefined ? { powerCost: m.power.idleWatts } : {}),
      powerCyclesToday: powerCyclesToday(machines.get(m.name), now),
      ...bootOf(m, machines.get(m.name)),
    }));

  let pressureDeficit: ResourceVector | undefined;
  let pressureCandidates = offCandidates;
  if (input.pendingCount === 0 && budget.inFlight === 0 && pressure.deficit) {
    pressureDeficit = pressure.deficit;
    // Only machines the pressured workloads could use: their taints tolerated by a pod running there now.
    const byName = new Map(input.selected.map((m) => [m.name, m]));
    const running = input.selected
      .filter((m) => phaseOf(m.name) === 'Ready')
      .flatMap((m) => input.podsOn(m.name))
      .filter((p) => !isDaemonSetPod(p) && !isMirrorPod(p));
    pressureCandidates = offCandidates.filter((c) => {
      const m = byName.get(c.name) as ParsedMachine;
      const blocking = m.taints.filter((t) => t.effect !== 'PreferNoSchedule');
      if (blocking.length === 0) return true;
      return running.some((p) => untoleratedTaints(p.spec?.tolerations ?? [], blocking).length === 0);
    });
  }

  // Machines within their minimum off time are left out, then asked for only the pods no
  // other machine can take now.
  const restingNames = new Set(offCandidates.filter((c) => input.resting?.(c.name) !== undefined).map((c) => c.name));
  const awake = (list: ScaleUpCandidate[]): ScaleUpCandidate[] => list.filter((c) => !restingNames.has(c.name));
  const first = decideScaleUp({
    pending: demand.pending,
    absorbing: demand.absorbing,
    candidates: awake(demand.pending.length > 0 ? offCandidates : pressureCandidates),
    feasible: demand.feasible,
    weights: spec.scoring,
    pressured: new Set(pressure.readings.filter((r) => r.pressured).map((r) => r.category)),
    budget: budget.budget,
    ...(pressureDeficit ? { pressureDeficit } : {}),
    belowMinimum: input.unread > 0 ? 0 : Math.max(0, spec.minMachines - budget.onCount),
    ...(budget.demandBlocked ? { demandBlocked: budget.demandBlocked } : {}),
  });
  const decision = restingNames.size > 0 ? wakeResting(first, { ...input, restingNames, offCandidates }) : first;
  const wakeAts: number[] = [];
  // A rest ending may let minMachines or pressure choose that machine.
  const restEnds = [...restingNames].map((n) => input.resting?.(n) ?? now);
  if (restEnds.length > 0) wakeAts.push(Math.min(...restEnds));
  if (budget.demandBlocked && budget.cooldownEnd !== undefined && budget.cooldownEnd > now && (decision.waiting.length > 0 || pressureDeficit)) wakeAts.push(budget.cooldownEnd);
  return { decision, wakeAts };
}

function bootOf(m: ParsedMachine, s: MachineStatus | undefined): { bootSeconds?: number } {
  const b = learnedBootSeconds(m, s);
  return b !== undefined ? { bootSeconds: b } : {};
}

/** The pods left over by the first decision, offered to the resting machines alone. */
function wakeResting(first: ScaleUpDecision, input: ScaleUpStepInput & { restingNames: Set<string>; offCandidates: ScaleUpCandidate[] }): ScaleUpDecision {
  const left = [...first.unplaceable, ...first.waiting];
  if (left.length === 0 || input.budget.demandBlocked) return first;
  const second = decideScaleUp({
    pending: left,
    absorbing: [],
    candidates: input.offCandidates.filter((c) => input.restingNames.has(c.name)),
    feasible: input.demand.feasible,
    weights: input.spec.scoring,
    pressured: new Set(),
    budget: { ...input.budget.budget, machines: Math.max(0, input.budget.budget.machines - first.powerOn.length) },
    belowMinimum: 0,
  });
  const woken = second.powerOn.map((c) => ({ ...c, detail: `${c.detail}; within its minimum off time (scaleDown.minOffSeconds), as no other machine can host these pods now` }));
  const { limitedBy: _l, ...rest } = first;
  return { ...rest, powerOn: [...first.powerOn, ...woken], unplaceable: second.unplaceable, waiting: second.waiting, ...(second.limitedBy !== undefined ? { limitedBy: second.limitedBy } : {}) };
}

/** Power cycles counted today (UTC) in a machine's status. */
export function powerCyclesToday(s: MachineStatus | undefined, now: number): number {
  if (!s?.powerCyclesDay) return 0;
  return s.powerCyclesDay === new Date(now).toISOString().slice(0, 10) ? (s.powerCyclesToday ?? 0) : 0;
}
