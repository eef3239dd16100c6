import type { V1Node, V1Pod, V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { MachinePlan, PlacementNode, ReadyMachine, ScaleDownInput, ScaleDownPlan } from '../../controller/scale-down.js';
import type { ParsedMachine } from '../../api/inventory.js';
import { DRAINING_TAINT } from '../../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, compileCandidate, compilePod, fits, formatResource, podRequests, type CompiledCandidate, type CompiledPod, type ResourceList } from '../../scheduling/index.js';
import { isMovable, nodeBlocker, podBlockers, podName } from '../../controller/blockers.js';
import { isDaemonSetPod, isMirrorPod, isNodeReady } from '../../controller/observe.js';

/**
 * The scale-down planner as it was before the index of free room (commit cceab73): every
 * candidate's pods placed first-fit by scanning every other Ready Node in order. Frozen here
 * as the reference the differential test (scale-down-differential.test.ts) and the bench
 * (bench/scale-down.bench.ts --reference) compare controller/scale-down.ts against: the
 * plans must be identical. Do not change it to follow the planner; its memo tables are its
 * own, so that neither side warms the other's.
 */

/** cpu and memory requested over allocatable, the larger; DaemonSet and mirror pods do not count. */
function utilization(node: V1Node, pods: readonly V1Pod[]): { value: number; of: string } {
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

/** A Node's free room as the planner spends it, pod by pod. */
interface Room {
  name: string;
  /** The Node as the feasibility engine sees it; its `free` is what is left. */
  candidate: CompiledCandidate;
}

function roomOf(n: PlacementNode): Room {
  const hit = roomsOf.get(n.pods);
  if (hit !== undefined && hit.node === n.node) return { name: hit.candidate.name, candidate: hit.candidate };
  const candidate = compileCandidate(candidateFromNode(n.node, n.pods));
  roomsOf.set(n.pods, { node: n.node, candidate });
  return { name: candidate.name, candidate };
}

/** A pod as the planner moves it: compiled once per plan. */
interface Movable {
  pod: V1Pod;
  compiled: CompiledPod;
  req: ResourceList;
}

/** Each cached pod compiled once as the planner moves it (cache objects are replaced, never changed). */
const movableOf = new WeakMap<V1Pod, Movable>();

/** Largest first: by cpu, then memory. */
function bySize(a: { req: ResourceList }, b: { req: ResourceList }): number {
  const d = (b.req.get('cpu') ?? 0n) - (a.req.get('cpu') ?? 0n);
  if (d !== 0n) return d > 0n ? 1 : -1;
  const m = (b.req.get('memory') ?? 0n) - (a.req.get('memory') ?? 0n);
  return m > 0n ? 1 : m < 0n ? -1 : 0;
}

/**
 * Places the pods (largest first) on the rooms, in the order given (fullest first), skipping
 * the excluded ones, first fit; spends the room when `commit`. Returns the pods that fit
 * nowhere.
 */
function placeElsewhere(items: readonly Movable[], rooms: readonly Room[], exclude: (name: string) => boolean, commit: boolean): V1Pod[] {
  const spent = new Map<Room, CompiledCandidate>();
  const nowhere: V1Pod[] = [];
  for (const it of [...items].sort(bySize)) {
    let placed: Room | undefined;
    for (const r of rooms) {
      if (exclude(r.name)) continue;
      if (fits(it.compiled, spent.get(r) ?? r.candidate)) {
        placed = r;
        break;
      }
    }
    if (!placed) {
      nowhere.push(it.pod);
      continue;
    }
    const before = spent.get(placed) ?? placed.candidate;
    const free = new Map(before.free);
    for (const [res, v] of it.req) free.set(res, (free.get(res) ?? 0n) - v);
    spent.set(placed, { ...before, free });
  }
  if (commit) for (const [room, c] of spent) room.candidate = c;
  return nowhere;
}

function unbound(pod: V1Pod): V1Pod {
  const { nodeName: _n, ...spec } = pod.spec ?? { containers: [] };
  return { ...pod, spec };
}

function describeNeeds(pod: V1Pod): string {
  const req = podRequests(pod);
  const parts = ['cpu', 'memory'].filter((r) => (req.get(r) ?? 0n) > 0n).map((r) => `${r} ${formatResource(r, req.get(r) ?? 0n)}`);
  return parts.length > 0 ? ` (needs ${parts.join(', ')})` : '';
}

function hasDrainingTaint(node: V1Node | undefined): boolean {
  return node?.spec?.taints?.some((t) => t.key === DRAINING_TAINT) ?? false;
}

function powerCost(m: ParsedMachine): number {
  return m.power?.maxWatts ?? m.power?.idleWatts ?? 0;
}

export function planScaleDownReference(input: ScaleDownInput): ScaleDownPlan {
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

  // Rooms on every other Ready Node, one per Node: the fit of one machine's pods is checked
  // against all of them but its own.
  const rooms: Room[] = [];
  for (const n of input.nodes) {
    if (!isNodeReady(n.node) || hasDrainingTaint(n.node)) continue;
    rooms.push(roomOf(n));
  }
  // Fullest first (least free cpu), so that moved pods pack onto machines that stay on.
  rooms.sort((a, b) => {
    const fa = a.candidate.free.get('cpu') ?? 0n;
    const fb = b.candidate.free.get('cpu') ?? 0n;
    return fa < fb ? -1 : fa > fb ? 1 : a.name < b.name ? -1 : 1;
  });
  // A bound pod's nodeName says where it runs now, not where its replacement may go.
  const movables = (pods: readonly V1Pod[]): Movable[] =>
    pods.map((pod) => {
      let m = movableOf.get(pod);
      if (m === undefined) movableOf.set(pod, (m = { pod, compiled: compilePod(unbound(pod)), req: podRequests(pod) }));
      return m;
    });

  for (const r of input.ready) {
    const name = r.machine.name;
    const energy = input.energy?.(name);
    const u = utilization(r.node, r.pods);
    const movable = r.pods.filter(isMovable);
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
    const items = movables(movable);
    if (!input.force) {
      for (const p of placeElsewhere(items, rooms, (n) => n === name, false)) {
        plan.blockers.push({ kind: 'FitsNowhere', message: `pod ${podName(p)} fits on no other Ready Node${describeNeeds(p)}` });
      }
    }
    if (plan.blockers.length === 0) eligible.push({ r, plan, movable: items });
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
      const nowhere = placeElsewhere(e.movable, rooms, (n) => n === self || chosen.has(n), true);
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
