import { scoreCandidates, type ResourceVector, type ScoringCandidate, type ScoringWeights } from './scoring.js';

/**
 * Scale-up decisions, pure: which powered-off machines to power on for the pending pods
 * (and for pressure), within the limits. No I/O; the reconciler gathers the inputs.
 */

export interface PendingPod {
  /** namespace/name */
  key: string;
  uid: string;
  requests: ResourceVector;
  /** When the pod was marked Unschedulable (ms since the epoch), for the decision latency. */
  unschedulableSince?: number;
}

export interface AbsorbingMachine {
  name: string;
  /** Capacity not yet requested by pods bound to it. */
  free: ResourceVector;
}

export interface ScaleUpCandidate extends ScoringCandidate {
  /** Expected seconds from power-on to Ready (the inventory's bootSeconds). */
  bootSeconds?: number;
}

export interface ScaleUpBudget {
  /** Machines that may still be powered on (max machines, concurrency, cluster caps). */
  machines: number;
  /** Cluster-wide caps still available, when set. */
  cpu?: bigint;
  memory?: bigint;
  /** Why the budget is what it is, for ScalingLimited. */
  reason?: string;
}

export interface ScaleUpInput {
  pending: PendingPod[];
  /** Machines powering on, joining or just Ready: pods they will take do not count again. */
  absorbing: AbsorbingMachine[];
  candidates: ScaleUpCandidate[];
  /** Taints, selectors, affinity, and fit on the empty machine (the feasibility engine). */
  feasible: (pod: PendingPod, machine: string) => boolean;
  weights: ScoringWeights;
  pressured: Set<string>;
  budget: ScaleUpBudget;
  /** For pressure without pending pods: the capacity the pressure asks for. */
  pressureDeficit?: ResourceVector;
  /** Machines to power on to reach minMachines, regardless of demand. */
  belowMinimum: number;
  /** Set (to the reason) when demand may not power anything on now, e.g. a cooldown; minMachines still applies. */
  demandBlocked?: string;
}

export interface PowerOnChoice {
  machine: string;
  reason: 'PendingPods' | 'Pressure' | 'MinMachines';
  pods: PendingPod[];
  score: number;
  /** Why this machine, in words. */
  detail: string;
}

export interface ScaleUpDecision {
  powerOn: PowerOnChoice[];
  /** Pods that machines already on their way (or just Ready) will take. */
  absorbed: PendingPod[];
  /** Pods no candidate machine can host (the caller explains why per machine). */
  unplaceable: PendingPod[];
  /** Pods a machine could host but the limits do not allow powering one on now. */
  waiting: PendingPod[];
  limitedBy?: string;
}

const SIZE_CATEGORIES = ['cpu', 'memory'];

function fits(req: ResourceVector, free: ResourceVector): boolean {
  for (const [r, v] of Object.entries(req)) {
    if (v > 0n && (free[r] ?? 0n) < v) return false;
  }
  return true;
}

function subtract(free: ResourceVector, req: ResourceVector): void {
  for (const [r, v] of Object.entries(req)) free[r] = (free[r] ?? 0n) - v;
}

function add(into: ResourceVector, v: ResourceVector): void {
  for (const [r, x] of Object.entries(v)) into[r] = (into[r] ?? 0n) + x;
}

/** Largest pods first (by their cpu and memory share of the biggest machine), then by key for stability. */
function sortLargestFirst(pods: PendingPod[], scale: ResourceVector): PendingPod[] {
  const size = (p: PendingPod): number =>
    SIZE_CATEGORIES.reduce((s, c) => s + (scale[c] ? Number(p.requests[c] ?? 0n) / Number(scale[c]) : 0), 0);
  return [...pods].sort((a, b) => size(b) - size(a) || (a.key < b.key ? -1 : 1));
}

function largest(machines: { capacity?: ResourceVector; free?: ResourceVector }[]): ResourceVector {
  const out: ResourceVector = {};
  for (const m of machines) {
    for (const [r, v] of Object.entries(m.capacity ?? m.free ?? {})) if (v > (out[r] ?? 0n)) out[r] = v;
  }
  return out;
}

export function decideScaleUp(input: ScaleUpInput): ScaleUpDecision {
  const scale = largest([...input.candidates, ...input.absorbing]);
  const absorbed: PendingPod[] = [];
  let remaining: PendingPod[] = [];

  // Pods first go to machines already coming: no overshoot.
  const absorbing = input.absorbing.map((m) => ({ name: m.name, free: { ...m.free } }));
  for (const pod of sortLargestFirst(input.pending, scale)) {
    const target = absorbing.find((m) => fits(pod.requests, m.free) && input.feasible(pod, m.name));
    if (target) {
      subtract(target.free, pod.requests);
      absorbed.push(pod);
    } else remaining.push(pod);
  }

  const canHost = (p: PendingPod, c: ScaleUpCandidate): boolean => fits(p.requests, c.capacity) && input.feasible(p, c.name);
  const unplaceable = remaining.filter((p) => !input.candidates.some((c) => canHost(p, c)));
  remaining = remaining.filter((p) => !unplaceable.includes(p));

  const powerOn: PowerOnChoice[] = [];
  let budgetMachines = input.budget.machines;
  let budgetCpu = input.budget.cpu;
  let budgetMemory = input.budget.memory;
  let limitedBy: string | undefined;
  let candidates = [...input.candidates];

  const withinCaps = (c: ScaleUpCandidate): boolean =>
    (budgetCpu === undefined || (c.capacity.cpu ?? 0n) <= budgetCpu) && (budgetMemory === undefined || (c.capacity.memory ?? 0n) <= budgetMemory);
  const take = (c: ScaleUpCandidate): void => {
    budgetMachines--;
    if (budgetCpu !== undefined) budgetCpu -= c.capacity.cpu ?? 0n;
    if (budgetMemory !== undefined) budgetMemory -= c.capacity.memory ?? 0n;
    candidates = candidates.filter((x) => x.name !== c.name);
  };

  if (input.demandBlocked && remaining.length > 0) limitedBy = input.demandBlocked;
  while (remaining.length > 0 && !input.demandBlocked) {
    if (budgetMachines <= 0) {
      limitedBy = input.budget.reason ?? 'no more machines may be powered on now';
      break;
    }
    const deficit: ResourceVector = {};
    for (const p of remaining) add(deficit, p.requests);
    const usable = candidates.filter((c) => withinCaps(c) && remaining.some((p) => canHost(p, c)));
    if (usable.length === 0) {
      limitedBy = candidates.length > 0 ? 'cluster-wide cpu or memory cap reached' : 'no powered-off machine left that can host the remaining pods';
      break;
    }
    const { ranked, useful } = scoreCandidates(deficit, usable, input.weights, input.pressured);
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    // Fill the chosen machine, largest pods first, with the pods it can host.
    const free: ResourceVector = { ...chosen.capacity };
    const placed: PendingPod[] = [];
    for (const pod of sortLargestFirst(remaining, scale)) {
      if (canHost(pod, chosen) && fits(pod.requests, free)) {
        subtract(free, pod.requests);
        placed.push(pod);
      }
    }
    take(chosen);
    if (placed.length === 0) continue;
    remaining = remaining.filter((p) => !placed.includes(p));
    powerOn.push({
      machine: chosen.name,
      reason: 'PendingPods',
      pods: placed,
      score: best.score,
      detail: `closest to the ideal machine for ${placed.length} pending pod(s) (score ${best.score.toFixed(3)}, useful: ${[...useful].join(', ') || 'none'})`,
    });
  }
  const waiting = remaining;

  // Pressure without pending pods: one machine for the capacity the pressure asks for.
  if (input.pending.length === 0 && input.pressureDeficit && input.demandBlocked) {
    limitedBy ??= input.demandBlocked;
  } else if (input.pending.length === 0 && input.pressureDeficit && powerOn.length === 0 && budgetMachines > 0) {
    const usable = candidates.filter(withinCaps);
    const { ranked, useful } = scoreCandidates(input.pressureDeficit, usable, input.weights, input.pressured);
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (best && chosen) {
      take(chosen);
      powerOn.push({
        machine: chosen.name,
        reason: 'Pressure',
        pods: [],
        score: best.score,
        detail: `closest to the ideal machine for the pressure in ${[...useful].join(', ')} (score ${best.score.toFixed(3)})`,
      });
    }
  } else if (input.pending.length === 0 && input.pressureDeficit && budgetMachines <= 0) {
    limitedBy ??= input.budget.reason ?? 'no more machines may be powered on now';
  }

  // minMachines is a floor: the smallest, cheapest machines first.
  let below = input.belowMinimum - powerOn.length;
  while (below > 0 && budgetMachines > 0) {
    const usable = candidates.filter(withinCaps);
    const { ranked } = scoreCandidates({}, usable, input.weights, new Set());
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    take(chosen);
    powerOn.push({ machine: chosen.name, reason: 'MinMachines', pods: [], score: best.score, detail: 'to reach minMachines' });
    below--;
  }
  if (below > 0 && budgetMachines <= 0) limitedBy ??= input.budget.reason ?? 'no more machines may be powered on now';

  return { powerOn, absorbed, unplaceable, waiting, ...(limitedBy ? { limitedBy } : {}) };
}
