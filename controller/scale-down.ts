import type { V1Node, V1Pod, V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';
import { DRAINING_TAINT, type Disruption, type MachineStatus, type ScaleDown } from '../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, compileCandidate, formatResource, podRequests, type CompiledCandidate } from '../scheduling/index.js';
import { FreeRoom } from './free-room.js';
import { moving, type Movable } from './placement.js';
import { isMovable, nodeBlocker, podBlockers, podName, type Blocker } from './blockers.js';
import { isDaemonSetPod, isMirrorPod, isNodeReady } from './observe.js';

/**
 * Scale-down planning, pure: which Ready machines are unneeded, what keeps each one on (in
 * words), and which to drain now. The reconciler gathers the inputs from its caches and acts
 * on the plan; nothing here does I/O.
 *
 * A machine is a candidate when its utilisation (the larger of cpu and memory requested over
 * allocatable, DaemonSet and mirror pods ignored) has stayed under the threshold for
 * `unneededSeconds`, nothing on it blocks (see blockers.ts), and every pod it runs fits on the
 * other Ready Nodes' free room, placed largest first, first fit, fullest Node first (the
 * feasibility engine decides each fit; free-room.ts finds the Node without a scan). A machine held by its break-even hold or at its daily power-cycle limit is not one
 * (controller/break-even.ts, wear.ts). Candidates are ranked: highest power cost, then most
 * capacity freed, then fewest power cycles in the last 24 hours, then fewest pods to move.
 * The first ones, as many as drain slots allow and as keep minMachines, become `Next`; a
 * machine that was already `Next` at the previous reconcile and is chosen again is drained now
 * (the extender has had one round to keep new pods off it).
 */

export interface ReadyMachine {
  machine: ParsedMachine;
  status: MachineStatus;
  node: V1Node;
  pods: readonly V1Pod[];
}

export interface PlacementNode {
  node: V1Node;
  pods: readonly V1Pod[];
}

export interface ScaleDownInput {
  now: number;
  scaleDown: ScaleDown;
  minMachines: number;
  /** This autoscaler's machines in phase Ready with a Ready Node and no operation. */
  ready: ReadyMachine[];
  /** Every Ready Node of the cluster that could take moved pods (the planner leaves out the candidates themselves). */
  nodes: PlacementNode[];
  pdbs: readonly V1PodDisruptionBudget[];
  /** Machines of this autoscaler that count as on (PoweringOn, Joining, Ready, Draining, PoweringOff). */
  onCount: number;
  /** Machines of this autoscaler draining or powering off now. */
  inFlight: number;
  /** Set when no drain may start now (pressure, pending pods, a cooldown...): the reason, in words. */
  paused?: string;
  /** Leave the PodDisruptionBudget check to the Eviction API (a drain for deletion). */
  ignoreBudgets?: boolean;
  /** Skip utilisation, unneeded time and fit (deletion with deletionPolicy PowerOff drains everything). */
  force?: boolean;
  /** Per machine: its break-even hold, wear limit and recent power cycles (controller/reconcile/energy.ts). */
  energy?: (machine: string) => MachineEnergy | undefined;
}

/** What energy and wear say about powering one machine off. */
export interface MachineEnergy {
  /** Extra time unneeded before its power-off (break-even hysteresis), ms. */
  holdMs: number;
  /** Why the hold, in words. */
  holdWhy?: string;
  /** At scaleDown.maxPowerCyclesPerDay: the blocker and when it lifts. */
  wear?: { blocker: Blocker; until: number };
  /** Power-offs in the last 24 hours (fewer goes first among equal candidates). */
  cycles: number;
}

export interface MachinePlan {
  name: string;
  utilization: number;
  /** The resource the utilisation comes from (cpu or memory). */
  utilizationOf: string;
  unneededSince?: string;
  disruption?: Disruption;
  /** Why not now, in words (status). */
  blockers: Blocker[];
  /** Pods the drain would move. */
  podsToMove: number;
}

export interface ScaleDownPlan {
  machines: Map<string, MachinePlan>;
  /** Machines to start draining now (were Next, chosen again). */
  drain: string[];
  /** When a machine's unneeded time ends, if one is waiting for it (ms). */
  wakeAt?: number;
}

/** cpu and memory requested over allocatable, the larger; DaemonSet and mirror pods do not count. */
export function utilization(node: V1Node, pods: readonly V1Pod[]): { value: number; of: string } {
  const hit = utilizationOf.get(pods);
  if (hit !== undefined && hit.node === node) return { ...hit.result };
  const result = computeUtilization(node, pods);
  utilizationOf.set(pods, { node, result });
  return { ...result };
}

/**
 * Kept by pod list (the reconciler's pod index keeps a Node's list while its pods stay the
 * same objects, and cache objects are replaced, never changed) and Node object.
 */
const utilizationOf = new WeakMap<readonly V1Pod[], { node: V1Node; result: { value: number; of: string } }>();
const roomsOf = new WeakMap<readonly V1Pod[], { node: V1Node; candidate: CompiledCandidate }>();

function computeUtilization(node: V1Node, pods: readonly V1Pod[]): { value: number; of: string } {
  const alloc = compileCandidate(candidateFromNode(node)).allocatable;
  const used = new Map<string, bigint>();
  for (const p of pods) {
    if (isDaemonSetPod(p) || isMirrorPod(p) || !isMovableOrDeleting(p)) continue;
    for (const [r, v] of podRequests(p)) used.set(r, (used.get(r) ?? 0n) + v);
  }
  let best = { value: 0, of: 'cpu' };
  for (const r of ['cpu', 'memory']) {
    const a = alloc.get(r) ?? 0n;
    const u = used.get(r) ?? 0n;
    const v = a > 0n ? Number(u) / Number(a) : u > 0n ? Infinity : 0;
    if (v > best.value) best = { value: v, of: r };
  }
  return best;
}

function isMovableOrDeleting(p: V1Pod): boolean {
  return isMovable(p) || p.metadata?.deletionTimestamp !== undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function roomOf(n: PlacementNode): CompiledCandidate {
  const hit = roomsOf.get(n.pods);
  if (hit !== undefined && hit.node === n.node) return hit.candidate;
  const candidate = compileCandidate(candidateFromNode(n.node, n.pods));
  roomsOf.set(n.pods, { node: n.node, candidate });
  return candidate;
}

function describeNeeds(pod: V1Pod): string {
  const req = podRequests(pod);
  const parts = ['cpu', 'memory'].filter((r) => (req.get(r) ?? 0n) > 0n).map((r) => `${r} ${formatResource(r, req.get(r) ?? 0n)}`);
  return parts.length > 0 ? ` (needs ${parts.join(', ')})` : '';
}

export function hasDrainingTaint(node: V1Node | undefined): boolean {
  return node?.spec?.taints?.some((t) => t.key === DRAINING_TAINT) ?? false;
}

function powerCost(m: ParsedMachine): number {
  return m.power?.maxWatts ?? m.power?.idleWatts ?? 0;
}

export function planScaleDown(input: ScaleDownInput): ScaleDownPlan {
  const { now, scaleDown } = input;
  const threshold = scaleDown.utilizationThreshold;
  const unneededMs = scaleDown.unneededSeconds * 1000;
  const machines = new Map<string, MachinePlan>();
  const wake: number[] = [];

  interface Eligible {
    r: ReadyMachine;
    plan: MachinePlan;
    movable: Movable[];
  }
  const eligible: Eligible[] = [];
  const byNs = new Map<string, V1PodDisruptionBudget[]>();
  for (const b of input.pdbs) {
    const ns = b.metadata?.namespace ?? '';
    let list = byNs.get(ns);
    if (!list) byNs.set(ns, (list = []));
    list.push(b);
  }

  // The free room of every other Ready Node, one per Node: the fit of one machine's pods is
  // checked against all of them but its own.
  const candidates: CompiledCandidate[] = [];
  for (const n of input.nodes) {
    if (!isNodeReady(n.node) || hasDrainingTaint(n.node)) continue;
    candidates.push(roomOf(n));
  }
  // Fullest first (least free cpu), so that moved pods pack onto machines that stay on.
  candidates.sort((a, b) => {
    const fa = a.free.get('cpu') ?? 0n;
    const fb = b.free.get('cpu') ?? 0n;
    return fa < fb ? -1 : fa > fb ? 1 : a.name < b.name ? -1 : 1;
  });
  // Built on the first placement: a plan where every machine is busy places nothing.
  let index: FreeRoom | undefined;
  const rooms = (): FreeRoom => (index ??= new FreeRoom(candidates));

  for (const r of input.ready) {
    const name = r.machine.name;
    const energy = input.energy?.(name);
    const u = utilization(r.node, r.pods);
    const { pods: movable, largestFirst, signature } = moving(r.pods);
    const plan: MachinePlan = { name, utilization: round(u.value), utilizationOf: u.of, blockers: [], podsToMove: movable.length };
    machines.set(name, plan);
    if (!scaleDown.enabled && !input.force) {
      plan.blockers.push({ kind: 'Paused', message: 'scale-down is disabled (spec.scaleDown.enabled: false)' });
      continue;
    }
    if (!input.force) {
      if (u.value >= threshold) {
        plan.blockers.push({
          kind: 'Busy',
          message: `utilisation ${pct(u.value)} (${u.of}) is at or above scaleDown.utilizationThreshold ${pct(threshold)}`,
        });
        continue;
      }
      const since = r.status.unneededSince ? Date.parse(r.status.unneededSince) : now;
      plan.unneededSince = iso(Number.isFinite(since) ? since : now);
      const base = Date.parse(plan.unneededSince) + unneededMs;
      const due = base + (energy?.holdMs ?? 0);
      if (now < base) {
        plan.blockers.push({ kind: 'Busy', message: `unneeded since ${plan.unneededSince} (utilisation ${pct(u.value)} ${u.of}); drained after scaleDown.unneededSeconds, from ${iso(due)}` });
        wake.push(due);
        // The other checks still run, so that status says early what will block it.
      } else if (now < due) {
        plan.blockers.push({ kind: 'BreakEven', message: `unneeded since ${plan.unneededSince}, held on until ${iso(due)}: ${energy?.holdWhy ?? 'break-even hold'}` });
        wake.push(due);
      }
      if (energy?.wear) {
        plan.blockers.push(energy.wear.blocker);
        wake.push(energy.wear.until);
      }
    }
    const nb = nodeBlocker(r.node);
    if (nb) plan.blockers.push(nb);
    for (const p of movable) plan.blockers.push(...podBlockers(p, { pdbs: byNs.get(p.metadata?.namespace ?? '') ?? [], ...(input.ignoreBudgets ? { ignoreBudgets: true } : {}) }));
    if (!input.force) {
      for (const p of rooms().trial(largestFirst, signature, name)) {
        plan.blockers.push({ kind: 'FitsNowhere', message: `pod ${podName(p)} fits on no other Ready Node${describeNeeds(p)}` });
      }
    }
    if (plan.blockers.length === 0) eligible.push({ r, plan, movable: largestFirst });
  }

  // Ranking: highest power cost, most capacity freed, fewest power cycles in 24 hours (wear
  // spreads), fewest pods to move, then name.
  const cycles = (e: Eligible): number => input.energy?.(e.r.machine.name)?.cycles ?? 0;
  const cap = (m: ParsedMachine, r: string): bigint => m.capacity[r] ?? 0n;
  eligible.sort((a, b) => {
    const pa = powerCost(a.r.machine);
    const pb = powerCost(b.r.machine);
    if (pa !== pb) return pb - pa;
    for (const res of ['cpu', 'memory']) {
      const d = cap(b.r.machine, res) - cap(a.r.machine, res);
      if (d !== 0n) return d > 0n ? 1 : -1;
    }
    if (cycles(a) !== cycles(b)) return cycles(a) - cycles(b);
    if (a.movable.length !== b.movable.length) return a.movable.length - b.movable.length;
    return a.r.machine.name < b.r.machine.name ? -1 : 1;
  });

  let slots = Math.max(0, scaleDown.maxConcurrentDrains - input.inFlight);
  let remainingOn = input.onCount - input.inFlight;
  const chosen = new Set<string>();
  const drain: string[] = [];
  for (const e of eligible) {
    e.plan.disruption = 'Candidate';
    if (input.paused) {
      e.plan.blockers.push({ kind: 'Paused', message: input.paused });
      continue;
    }
    if (remainingOn - 1 < input.minMachines) {
      e.plan.blockers.push({ kind: 'Paused', message: `minMachines ${input.minMachines} would not hold (${remainingOn} machine(s) on, drains included)` });
      continue;
    }
    if (slots <= 0) {
      e.plan.blockers.push({
        kind: 'Paused',
        message: `scaleDown.maxConcurrentDrains (${scaleDown.maxConcurrentDrains}) reached: ${input.inFlight + chosen.size} machine(s) draining, powering off or chosen`,
      });
      continue;
    }
    if (!input.force) {
      // The pods of the machines chosen before this one are placed first: room is spent once.
      const self = e.r.machine.name;
      const nowhere = rooms().place(e.movable, (n) => n === self || chosen.has(n), true);
      if (nowhere.length > 0) {
        for (const p of nowhere) {
          e.plan.blockers.push({ kind: 'FitsNowhere', message: `pod ${podName(p)} fits on no other Ready Node once ${[...chosen].join(', ')} is drained${describeNeeds(p)}` });
        }
        continue;
      }
    }
    chosen.add(e.r.machine.name);
    slots--;
    remainingOn--;
    e.plan.disruption = 'Next';
    if (e.r.status.disruption === 'Next') drain.push(e.r.machine.name);
  }
  return { machines, drain, ...(wake.length > 0 ? { wakeAt: Math.min(...wake) } : {}) };
}

function round(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : 1;
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v * 100)}%` : 'unbounded';
}
