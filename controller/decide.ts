import { CandidateTable, scoreCandidates, type ResourceVector, type ScoringCandidate, type ScoringWeights } from './scoring.js';

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
  /**
   * Pods with the same class get the same answer from `feasible` on every machine (the same
   * tolerations, node selector, affinity and nodeName: PodIndex's signature), so it is asked
   * once per class and machine rather than once per pod. Pods are grouped by class and
   * requests together; without a class, a pod is a class of its own. The decision is the
   * same either way, only faster with classes: 10,000 replicas of a few Deployments are a
   * few dozen classes.
   */
  equivalenceClass?: string;
}

export interface AbsorbingMachine {
  name: string;
  /** Capacity not yet requested by pods bound to it. */
  free: ResourceVector;
}

export type ScaleUpCandidate = ScoringCandidate;

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
  /** Taints, selectors, affinity, and fit on the empty machine (the feasibility engine). Must not depend on anything but its arguments. */
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
  reason: 'PendingPods' | 'Pressure' | 'MinMachines' | 'PreWarm';
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

/**
 * The positive requests of a pod as parallel arrays, also as numbers by resource slot: a fit
 * check runs for every pod and machine considered, and these allocate nothing (Object.entries
 * would) and let a pod that plainly does not fit be passed over without bigint arithmetic.
 */
interface Demand {
  readonly names: readonly string[];
  readonly amounts: readonly bigint[];
  readonly slots: readonly number[];
  readonly numbers: readonly number[];
}

/** Resource name → slot, shared by every demand of one decision. */
type Slots = Map<string, number>;

function demandOf(req: ResourceVector, slots: Slots): Demand {
  const names: string[] = [];
  const amounts: bigint[] = [];
  for (const [r, v] of Object.entries(req)) {
    if (v > 0n) {
      names.push(r);
      amounts.push(v);
    }
  }
  const slotOf = (r: string): number => {
    let slot = slots.get(r);
    if (slot === undefined) slots.set(r, (slot = slots.size));
    return slot;
  };
  return { names, amounts, slots: names.map(slotOf), numbers: amounts.map(Number) };
}

/** Every positive request within what is free (a zero request never blocks). */
function fits(d: Demand, free: ResourceVector): boolean {
  for (let i = 0; i < d.names.length; i++) {
    if ((free[d.names[i] as string] ?? 0n) < (d.amounts[i] as bigint)) return false;
  }
  return true;
}

/**
 * Whether a demand surely exceeds what is free, from the numbers alone. Number() rounds a
 * bigint by at most 2^-53 of it, so a margin of 2^-50 of the free amount leaves no doubt;
 * anything closer is decided by `fits`.
 */
function plainlyTooBig(d: Demand, free: Float64Array): boolean {
  for (let i = 0; i < d.slots.length; i++) {
    const f = free[d.slots[i] as number] as number;
    if ((d.numbers[i] as number) > f + Math.abs(f) * 2 ** -50) return true;
  }
  return false;
}

function subtract(free: ResourceVector, req: ResourceVector): void {
  for (const [r, v] of Object.entries(req)) free[r] = (free[r] ?? 0n) - v;
}

function add(into: ResourceVector, v: ResourceVector): void {
  for (const [r, x] of Object.entries(v)) into[r] = (into[r] ?? 0n) + x;
}

/** A pending pod with what the decision computes about it once. */
interface Entry {
  readonly pod: PendingPod;
  readonly demand: Demand;
  /** Index into the classes. */
  readonly cls: number;
  readonly size: number;
  /** On a machine chosen: no longer remaining (the list is compacted now and then, not at every machine). */
  placed: boolean;
}

/** Pods that get the same answer everywhere: one is asked for all. */
interface PodClass {
  readonly representative: PendingPod;
  readonly demand: Demand;
  /** Pods of the class still to place. */
  left: number;
}

/**
 * Largest pods first (by their cpu and memory share of the biggest machine), then by key for
 * stability. The same comparisons as sorting the pods themselves, on sizes computed once.
 */
function sortLargestFirst(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) => b.size - a.size || (a.pod.key < b.pod.key ? -1 : 1));
}

function sizeOf(p: PendingPod, scale: ResourceVector): number {
  return SIZE_CATEGORIES.reduce((s, c) => s + (scale[c] ? Number(p.requests[c] ?? 0n) / Number(scale[c]) : 0), 0);
}

function largest(machines: { capacity?: ResourceVector; free?: ResourceVector }[]): ResourceVector {
  const out: ResourceVector = {};
  for (const m of machines) {
    for (const [r, v] of Object.entries(m.capacity ?? m.free ?? {})) if (v > (out[r] ?? 0n)) out[r] = v;
  }
  return out;
}

/**
 * Exact. In insertion order, which is the same for the replicas of a workload (their
 * requests are computed alike); equal vectors built in another order only share less.
 */
function requestsKey(req: ResourceVector): string {
  let key = '';
  for (const r in req) key += `${r}=${String(req[r])},`;
  return key;
}

/** requestsKey by vector: replicas share theirs (PodIndex), so it is built once per workload. */
const requestKeys = new WeakMap<ResourceVector, string>();

function classify(pending: PendingPod[], scale: ResourceVector, slots: Slots): { entries: Entry[]; classes: PodClass[] } {
  const classes: PodClass[] = [];
  const sizes: number[] = [];
  // By class, then by requests: no key of the two strings joined is built per pod.
  const byKey = new Map<string, Map<string, number>>();
  const entries = pending.map((pod): Entry => {
    let inner: Map<string, number> | undefined;
    let rk: string | undefined;
    let cls: number | undefined;
    if (pod.equivalenceClass !== undefined) {
      inner = byKey.get(pod.equivalenceClass);
      if (!inner) byKey.set(pod.equivalenceClass, (inner = new Map<string, number>()));
      rk = requestKeys.get(pod.requests);
      if (rk === undefined) requestKeys.set(pod.requests, (rk = requestsKey(pod.requests)));
      cls = inner.get(rk);
    }
    if (cls === undefined) {
      cls = classes.length;
      classes.push({ representative: pod, demand: demandOf(pod.requests, slots), left: 0 });
      // Equal requests, equal size.
      sizes.push(sizeOf(pod, scale));
      if (inner && rk !== undefined) inner.set(rk, cls);
    }
    return { pod, demand: (classes[cls] as PodClass).demand, cls, size: sizes[cls] as number, placed: false };
  });
  return { entries, classes };
}

/** How many recently useful classes (or machines) are tried before a full scan. */
const HINTS = 8;

function remember(hints: number[], i: number): void {
  const at = hints.indexOf(i);
  if (at === 0) return;
  if (at > 0) hints.splice(at, 1);
  else if (hints.length >= HINTS) hints.pop();
  hints.unshift(i);
}

/**
 * Greedy scale-up: pods go first to machines already on their way; then, while pods remain
 * and the limits allow, the candidate closest to the ideal machine for what remains is
 * powered on and filled, largest pods first.
 *
 * At 10,000 machines and 10,000 pending pods, rescanning every pod for every candidate at
 * each machine chosen takes minutes; the work here stays near O((pods + candidates) ×
 * machines chosen), with feasibility asked about once per class and machine:
 * - whether a candidate can host any remaining pod is kept as a witness class per candidate,
 *   found again only when the witness runs out of pods (recently useful classes first, then
 *   a cursor that never looks at a class twice);
 * - a class no machine can host is found once for all its pods;
 * - the winner among the candidates comes from one pass over a table of their capacities,
 *   not a sort (CandidateTable);
 * - pods stay in their largest-first order, which filtering keeps, instead of being sorted
 *   again for every machine.
 */
export function decideScaleUp(input: ScaleUpInput): ScaleUpDecision {
  const scale = largest([...input.candidates, ...input.absorbing]);
  const slots: Slots = new Map();
  const { entries, classes } = classify(input.pending, scale, slots);
  const absorbed: PendingPod[] = [];
  let remaining: Entry[] = [];

  // Pods first go to machines already coming: no overshoot.
  const absorbing = input.absorbing.map((m) => ({ name: m.name, free: { ...m.free }, feasible: new Map<number, boolean>() }));
  for (const entry of sortLargestFirst(entries)) {
    const target = absorbing.find((m) => {
      if (!fits(entry.demand, m.free)) return false;
      let ok = m.feasible.get(entry.cls);
      if (ok === undefined) m.feasible.set(entry.cls, (ok = input.feasible((classes[entry.cls] as PodClass).representative, m.name)));
      return ok;
    });
    if (target) {
      subtract(target.free, entry.pod.requests);
      absorbed.push(entry.pod);
    } else remaining.push(entry);
  }

  const all = input.candidates;
  const canHost = (cls: number, c: number): boolean => {
    const k = classes[cls] as PodClass;
    const m = all[c] as ScaleUpCandidate;
    return fits(k.demand, m.capacity) && input.feasible(k.representative, m.name);
  };

  // A class no candidate can host: every pod of it is unplaceable. Machines that hosted the
  // classes before are tried first; only a class that fits nowhere costs a full scan.
  const hosted = new Set<number>();
  const hostless = new Set<number>();
  const machineHints: number[] = [];
  for (const { cls } of remaining) {
    if (hosted.has(cls) || hostless.has(cls)) continue;
    let found = machineHints.find((c) => canHost(cls, c));
    for (let c = 0; found === undefined && c < all.length; c++) {
      if (canHost(cls, c)) {
        found = c;
        remember(machineHints, c);
      }
    }
    (found === undefined ? hostless : hosted).add(cls);
  }
  const unplaceable = remaining.filter((e) => hostless.has(e.cls)).map((e) => e.pod);
  remaining = remaining.filter((e) => !hostless.has(e.cls));
  for (const e of remaining) (classes[e.cls] as PodClass).left++;

  const powerOn: PowerOnChoice[] = [];
  let budgetMachines = input.budget.machines;
  let budgetCpu = input.budget.cpu;
  let budgetMemory = input.budget.memory;
  let limitedBy: string | undefined;
  // Taken by name, as every candidate of that name is (names are unique in an inventory).
  const takenNames = new Set<string>();
  const taken = new Uint8Array(all.length);
  const indicesByName = new Map<string, number[]>();
  all.forEach((c, i) => {
    const list = indicesByName.get(c.name);
    if (list) list.push(i);
    else indicesByName.set(c.name, [i]);
  });

  const withinCaps = (c: ScaleUpCandidate): boolean =>
    (budgetCpu === undefined || (c.capacity.cpu ?? 0n) <= budgetCpu) && (budgetMemory === undefined || (c.capacity.memory ?? 0n) <= budgetMemory);
  const take = (c: ScaleUpCandidate): void => {
    budgetMachines--;
    if (budgetCpu !== undefined) budgetCpu -= c.capacity.cpu ?? 0n;
    if (budgetMemory !== undefined) budgetMemory -= c.capacity.memory ?? 0n;
    takenNames.add(c.name);
    for (const i of indicesByName.get(c.name) ?? []) taken[i] = 1;
  };
  const untaken = (): ScaleUpCandidate[] => all.filter((c) => !takenNames.has(c.name));

  // Per candidate: a class it can host that still has pods (its witness), or none left.
  // Classes are scanned smallest first (small pods fit most machines); the cursor only moves
  // forward, since a class passed over had no pods left or did not fit, for good.
  const scanOrder = [...new Set(remaining.map((e) => e.cls).reverse())];
  const witness = new Int32Array(all.length).fill(-1);
  const cursor = new Int32Array(all.length);
  const classHints: number[] = [];
  const hostsSome = (c: number): boolean => {
    const w = witness[c] as number;
    if (w >= 0 && (classes[w] as PodClass).left > 0) return true;
    for (const h of classHints) {
      if ((classes[h] as PodClass).left > 0 && canHost(h, c)) {
        witness[c] = h;
        return true;
      }
    }
    for (let i = cursor[c] as number; i < scanOrder.length; i++) {
      const cls = scanOrder[i] as number;
      if ((classes[cls] as PodClass).left > 0 && canHost(cls, c)) {
        cursor[c] = i + 1;
        witness[c] = cls;
        remember(classHints, cls);
        return true;
      }
    }
    cursor[c] = scanOrder.length;
    witness[c] = -1;
    return false;
  };

  const table = new CandidateTable(all);
  const deficit: ResourceVector = {};
  for (const e of remaining) add(deficit, e.pod.requests);
  // Per chosen machine: which classes it can host (asked once per class), and what is free.
  const hostable = new Int8Array(classes.length);
  const passed = new Int32Array(classes.length);
  let round = 0;
  const freeNumbers = new Float64Array(slots.size);

  let left = remaining.length;
  if (input.demandBlocked && left > 0) limitedBy = input.demandBlocked;
  while (left > 0 && !input.demandBlocked) {
    if (budgetMachines <= 0) {
      limitedBy = input.budget.reason ?? 'no more machines may be powered on now';
      break;
    }
    const usable: number[] = [];
    for (let c = 0; c < all.length; c++) {
      if (taken[c] === 0 && withinCaps(all[c] as ScaleUpCandidate) && hostsSome(c)) usable.push(c);
    }
    if (usable.length === 0) {
      limitedBy = untaken().length > 0 ? 'cluster-wide cpu or memory cap reached' : 'no powered-off machine left that can host the remaining pods';
      break;
    }
    // Pods wait: among equally good machines the faster booter wins.
    const { best, useful } = table.best(deficit, usable, input.weights, input.pressured, true);
    const chosenIndex = usable.find((c) => all[c]?.name === best?.name);
    const chosen = chosenIndex === undefined ? undefined : all[chosenIndex];
    if (!best || !chosen || chosenIndex === undefined) break;
    // Fill the chosen machine, largest pods first, with the pods it can host.
    const free: ResourceVector = { ...chosen.capacity };
    for (const [r, slot] of slots) freeNumbers[slot] = Number(free[r] ?? 0n);
    const placed: PendingPod[] = [];
    hostable.fill(0);
    // What is free only shrinks while the machine fills, and the pods of a class ask for
    // the same: once one does not fit, the rest of its class is passed over at once.
    round++;
    for (const e of remaining) {
      if (e.placed || passed[e.cls] === round) continue;
      if (plainlyTooBig(e.demand, freeNumbers) || !fits(e.demand, free)) {
        passed[e.cls] = round;
        continue;
      }
      if (hostable[e.cls] === 0) hostable[e.cls] = canHost(e.cls, chosenIndex) ? 1 : -1;
      if (hostable[e.cls] !== 1) {
        passed[e.cls] = round;
        continue;
      }
      subtract(free, e.pod.requests);
      for (const r of Object.keys(e.pod.requests)) {
        const slot = slots.get(r);
        if (slot !== undefined) freeNumbers[slot] = Number(free[r] ?? 0n);
      }
      for (const [r, v] of Object.entries(e.pod.requests)) deficit[r] = (deficit[r] ?? 0n) - v;
      (classes[e.cls] as PodClass).left--;
      e.placed = true;
      left--;
      placed.push(e.pod);
    }
    take(chosen);
    if (placed.length === 0) continue;
    if (remaining.length > 2 * left + 64) remaining = remaining.filter((e) => !e.placed);
    powerOn.push({
      machine: chosen.name,
      reason: 'PendingPods',
      pods: placed,
      score: best.score,
      detail: `closest to the ideal machine for ${placed.length} pending pod(s) (score ${best.score.toFixed(3)}, useful: ${[...useful].join(', ') || 'none'})`,
    });
  }
  const waiting = remaining.filter((e) => !e.placed).map((e) => e.pod);
  let candidates = untaken();

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
      candidates = untaken();
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

  // minMachines is a floor kept on at all times: the lowest power draw first, then the smallest.
  let below = input.belowMinimum - powerOn.length;
  while (below > 0 && budgetMachines > 0) {
    const usable = candidates.filter(withinCaps);
    const cost = (name: string): number => usable.find((c) => c.name === name)?.powerCost ?? Number.POSITIVE_INFINITY;
    const { ranked } = scoreCandidates({}, usable, input.weights, new Set());
    // A stable sort: equal costs keep the scoring order (the smaller machine first).
    ranked.sort((a, b) => (cost(a.name) === cost(b.name) ? 0 : cost(a.name) < cost(b.name) ? -1 : 1));
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    take(chosen);
    candidates = untaken();
    powerOn.push({ machine: chosen.name, reason: 'MinMachines', pods: [], score: best.score, detail: 'to reach minMachines' });
    below--;
  }
  if (below > 0 && budgetMachines <= 0) limitedBy ??= input.budget.reason ?? 'no more machines may be powered on now';

  return { powerOn, absorbed, unplaceable, waiting, ...(limitedBy ? { limitedBy } : {}) };
}
