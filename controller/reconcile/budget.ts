import type { ParsedMachine } from '../../api/inventory.js';
import { parseQuantity } from '../../api/quantity.js';
import type { BareMetalAutoscaler, BareMetalAutoscalerSpec, ScaleEvent } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { ScaleUpBudget } from '../decide.js';
import type { ClusterCaps, MachineStates, Store } from './types.js';

/**
 * Budget: how many machines may still be powered on (maxMachines, maxConcurrentPowerOns,
 * the cluster-wide caps over every autoscaler) and whether demand must wait (the scale-up
 * cooldown, power states not read yet). Pure.
 */

/** Phases in which a machine draws power and counts against maxMachines. */
export const ON_PHASES: ReadonlySet<string> = new Set(['PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff']);

export interface BudgetInput {
  autoscaler: string;
  spec: BareMetalAutoscalerSpec;
  machines: MachineStates;
  caps: ClusterCaps;
  /** This autoscaler's machines (their capacity counts against the cluster-wide cpu and memory caps). */
  selected?: readonly ParsedMachine[];
  /** Every autoscaler, for the cluster-wide caps. */
  autoscalers: Store<BareMetalAutoscaler>;
  lastScaleEvent: ScaleEvent | undefined;
  /** Selected machines whose power state was never read. */
  unread: number;
  now: number;
}

export interface Budget {
  budget: ScaleUpBudget;
  /** Machines on (any ON_PHASES phase) and those powering on or joining. */
  onCount: number;
  inFlight: number;
  /** Why demand waits this time, if it does. */
  demandBlocked?: string;
  cooldownEnd?: number;
  wakeAts: number[];
}

export function budgetStep(input: BudgetInput): Budget {
  const { spec, caps, now } = input;
  const states = [...input.machines.values()];
  const onCount = states.filter((s) => ON_PHASES.has(s.phase)).length;
  const inFlight = states.filter((s) => s.phase === 'PoweringOn' || s.phase === 'Joining').length;
  const limits: { n: number; why: string }[] = [
    { n: spec.maxMachines - onCount, why: `maxMachines (${spec.maxMachines}) reached` },
    { n: spec.scaleUp.maxConcurrentPowerOns - inFlight, why: `maxConcurrentPowerOns (${spec.scaleUp.maxConcurrentPowerOns}) machines already powering on or joining` },
  ];
  // The cluster-wide caps count every autoscaler's machines: the others' from their status,
  // this one's from what this reconcile found.
  const usage = clusterUsage(input.autoscalers, input.autoscaler);
  const own = ownUsage(input.selected ?? [], input.machines);
  if (caps.machines !== undefined) limits.push({ n: caps.machines - usage.machines - onCount, why: `cluster-wide cap of ${caps.machines} machines reached` });
  const tightest = limits.reduce((a, b) => (b.n < a.n ? b : a));
  const budget: ScaleUpBudget = {
    machines: Math.max(0, tightest.n),
    ...(caps.cpu !== undefined ? { cpu: caps.cpu - usage.cpu - own.cpu } : {}),
    ...(caps.memory !== undefined ? { memory: caps.memory - usage.memory - own.memory } : {}),
    reason: tightest.why,
  };
  const lastUp = input.lastScaleEvent?.direction === 'Up' ? Date.parse(input.lastScaleEvent.time) : undefined;
  const cooldownEnd = lastUp !== undefined ? lastUp + spec.scaleUp.cooldownSeconds * 1000 : undefined;
  // Machines whose power state was never read yet (a fresh start) could be the best choice:
  // decide once every machine has been looked at, a second or so later.
  const wakeAts = input.unread > 0 ? [now + 1000] : [];
  const demandBlocked =
    input.unread > 0
      ? `waiting for the power state of ${input.unread} machine(s)`
      : cooldownEnd !== undefined && now < cooldownEnd
        ? `scale-up cooldown until ${new Date(cooldownEnd).toISOString()}`
        : undefined;
  return {
    budget,
    onCount,
    inFlight,
    wakeAts,
    ...(demandBlocked !== undefined ? { demandBlocked } : {}),
    ...(cooldownEnd !== undefined ? { cooldownEnd } : {}),
  };
}

/** Machines on, and their cpu and memory, across every other autoscaler (cluster-wide caps). */
export function clusterUsage(autoscalers: Store<BareMetalAutoscaler>, except: string): { machines: number; cpu: bigint; memory: bigint } {
  let machines = 0;
  let cpu = 0n;
  let memory = 0n;
  for (const other of autoscalers.list()) {
    if (other.metadata.name === except) continue;
    const s = other.status;
    machines += (s?.readyMachines ?? 0) + (s?.pendingMachines ?? 0);
    for (const cap of [s?.onlineCapacity, s?.pendingCapacity]) {
      if (cap?.cpu !== undefined) cpu += quantityOrZero(String(cap.cpu));
      if (cap?.memory !== undefined) memory += quantityOrZero(String(cap.memory));
    }
  }
  return { machines, cpu, memory };
}

/** The cpu and memory of this autoscaler's machines that are on (status's online and pending capacity). */
function ownUsage(selected: readonly ParsedMachine[], machines: MachineStates): { cpu: bigint; memory: bigint } {
  let cpu = 0n;
  let memory = 0n;
  for (const m of selected) {
    const phase = machines.get(m.name)?.phase;
    if (phase !== 'Ready' && phase !== 'PoweringOn' && phase !== 'Joining') continue;
    cpu += m.capacity.cpu ?? 0n;
    memory += m.capacity.memory ?? 0n;
  }
  return { cpu, memory };
}

function quantityOrZero(q: string): bigint {
  try {
    return parseQuantity(q);
  } catch {
    return 0n;
  }
}
