import type { ParsedMachine } from '../../api/inventory.js';
import type { TracePod } from './trace.js';

/**
 * The oracle: a lower bound no autoscaler can beat. Every pod runs exactly from its `at`
 * for its `duration` (no boot, no pending), and at each instant the cluster has the fewest
 * inventory machines whose summed capacity covers the summed requests of the running pods
 * in every resource (cpu, memory, and one `pods` slot per pod). Taints, selectors and how
 * pods would have to be split across machines (bin-packing fragmentation) are ignored, so
 * the real minimum is never below it.
 *
 * The count is exact, also for a heterogeneous inventory: machines with the same capacity
 * form a type, and a depth-first search over how many machines of each type to take finds
 * the smallest total that covers the demand (it tries totals upward from the bound
 * max over resources of demand / the largest machine's capacity, and prunes a branch when
 * the machines left to take cannot cover what is still missing even at their largest).
 * When the demand is more than the whole inventory offers, the oracle is every machine.
 */

export const ORACLE_RESOURCES = ['cpu', 'memory', 'pods'] as const;

export type Vector = number[];

interface MachineType {
  capacity: Vector;
  count: number;
}

export class Oracle {
  private readonly types: MachineType[];
  private readonly total: number;
  private readonly memo = new Map<string, number>();

  constructor(machines: readonly ParsedMachine[]) {
    const byKey = new Map<string, MachineType>();
    for (const m of machines) {
      const capacity = capacityVector(m);
      const key = capacity.join(',');
      const t = byKey.get(key);
      if (t) t.count++;
      else byKey.set(key, { capacity, count: 1 });
    }
    // Largest first (by cpu, then memory): the search finds covers sooner.
    this.types = [...byKey.values()].sort((a, b) => (b.capacity[0] as number) - (a.capacity[0] as number) || (b.capacity[1] as number) - (a.capacity[1] as number));
    this.total = machines.length;
  }

  /** The fewest machines covering the demand (every machine if none does). */
  machinesFor(demand: Vector): number {
    if (demand.every((d) => d <= 0)) return 0;
    const key = demand.join(',');
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    let lower = 1;
    for (let r = 0; r < demand.length; r++) {
      const largest = Math.max(...this.types.map((t) => t.capacity[r] as number));
      if (largest <= 0) continue;
      lower = Math.max(lower, Math.ceil((demand[r] as number) / largest));
    }
    let answer = this.total;
    for (let k = lower; k <= this.total; k++) {
      if (this.covers(demand, k, 0)) {
        answer = k;
        break;
      }
    }
    if (this.memo.size > 200_000) this.memo.clear();
    this.memo.set(key, answer);
    return answer;
  }

  /** Whether `k` machines of the types from `from` on can cover `missing`. */
  private covers(missing: Vector, k: number, from: number): boolean {
    if (missing.every((d) => d <= 0)) return true;
    if (k === 0 || from >= this.types.length) return false;
    // Bound: k machines each as large, per resource, as the largest type left.
    for (let r = 0; r < missing.length; r++) {
      let largest = 0;
      for (let i = from; i < this.types.length; i++) largest = Math.max(largest, (this.types[i] as MachineType).capacity[r] as number);
      if (largest * k < (missing[r] as number)) return false;
    }
    const t = this.types[from] as MachineType;
    for (let n = Math.min(k, t.count); n >= 0; n--) {
      const rest = missing.map((d, r) => d - n * (t.capacity[r] as number));
      if (this.covers(rest, k - n, from + 1)) return true;
    }
    return false;
  }
}

export function capacityVector(m: ParsedMachine): Vector {
  return ORACLE_RESOURCES.map((r) => Number(m.capacity[r] ?? 0n));
}

export function podVector(p: Pick<TracePod, 'cpuMilli' | 'memoryMilli'>): Vector {
  return [Number(p.cpuMilli), Number(p.memoryMilli), 1000];
}

export interface OracleSegment {
  /** Seconds from the start; the segment covers [from, to). */
  from: number;
  to: number;
  machines: number;
}

/** The oracle over the trace: piecewise constant, one segment per change of the running set. */
export function oracleTimeline(pods: readonly TracePod[], oracle: Oracle): OracleSegment[] {
  const changes = new Map<number, Vector>();
  const add = (t: number, v: Vector, sign: number): void => {
    const c = changes.get(t) ?? ORACLE_RESOURCES.map(() => 0);
    for (let r = 0; r < v.length; r++) c[r] = (c[r] as number) + sign * (v[r] as number);
    changes.set(t, c);
  };
  for (const p of pods) {
    if (p.duration <= 0) continue;
    const v = podVector(p);
    add(p.at, v, 1);
    add(p.at + p.duration, v, -1);
  }
  const times = [...changes.keys()].sort((a, b) => a - b);
  const demand = ORACLE_RESOURCES.map(() => 0);
  const out: OracleSegment[] = [];
  for (let i = 0; i < times.length - 1; i++) {
    const t = times[i] as number;
    const c = changes.get(t) as Vector;
    for (let r = 0; r < demand.length; r++) demand[r] = (demand[r] as number) + (c[r] as number);
    const machines = oracle.machinesFor(demand);
    const last = out[out.length - 1];
    if (last && last.machines === machines && last.to === t) last.to = times[i + 1] as number;
    else out.push({ from: t, to: times[i + 1] as number, machines });
  }
  return out;
}

export function oracleMachineHours(segments: readonly OracleSegment[]): number {
  return segments.reduce((sum, s) => sum + (s.machines * (s.to - s.from)) / 3600, 0);
}

/** The oracle's machine count at second `t`. */
export function oracleAt(segments: readonly OracleSegment[], t: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid] as OracleSegment;
    if (t < s.from) hi = mid - 1;
    else if (t >= s.to) lo = mid + 1;
    else return s.machines;
  }
  return 0;
}
