import type { ReadonlyResourceList } from '../scheduling/index.js';
import { MAX_EXTENDER_PRIORITY } from './protocol.js';
import type { Standing } from './standings.js';

/**
 * The prioritize score, 0..10 (README "The scheduler extender"): prefer machines that stay
 * on, and among them the fullest once the pod is placed, so that pods pack onto few machines
 * and the others empty out and can be powered off.
 *
 *   fullness = mean over R of min(1, (used_r + request_r) / allocatable_r)
 *              R = cpu and memory, plus every other resource the pod requests that the
 *              Node has (nvidia.com/gpu, hugepages-2Mi, ...); resources the Node has none
 *              of are left out
 *   score    = 5 + round(5 × fullness)   machine that stays on (or a Node no autoscaler manages)
 *            = round(4 × fullness)       scale-down candidate (disruption: Candidate)
 *            = 0                         machine the filter refuses (never reaches here from kube-scheduler)
 *
 * Every machine that stays on scores above every candidate: a pod placed on a candidate
 * keeps it on, which is what scale-down is trying to undo.
 */

const BASE = ['cpu', 'memory'] as const;
const STAYS_ON_FLOOR = 5;
const CANDIDATE_CEILING = 4;

export function fullness(
  allocatable: ReadonlyResourceList,
  used: ReadonlyResourceList,
  requests: ReadonlyResourceList,
  resources: readonly string[] = scoredResources(requests),
): number {
  let sum = 0;
  let count = 0;
  for (const r of resources) {
    const alloc = allocatable.get(r) ?? 0n;
    if (alloc <= 0n) continue;
    const after = (used.get(r) ?? 0n) + (requests.get(r) ?? 0n);
    const ratio = Number(after) / Number(alloc);
    sum += Math.min(1, Math.max(0, ratio));
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * cpu and memory as numbers, when they are exactly numbers (|amount| ≤ 2^53, milli-cpu and
 * bytes: always, in practice); NaN otherwise. The sums and quotients of exact numbers are
 * the correctly rounded ones, the very values fullness() gets from its bigints.
 */
export interface BaseAmounts {
  cpu: number;
  memory: number;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function exactNumber(v: bigint): number {
  return v <= SAFE && v >= -SAFE ? Number(v) : Number.NaN;
}

export function baseAmounts(list: ReadonlyResourceList): BaseAmounts {
  return { cpu: exactNumber(list.get('cpu') ?? 0n), memory: exactNumber(list.get('memory') ?? 0n) };
}

/**
 * fullness() when R is cpu and memory only, over numbers: the same value (see BaseAmounts),
 * without a map lookup or a bigint per Node. Undefined when an amount is not exact: then
 * fullness() it is.
 */
export function baseFullness(allocatable: BaseAmounts, used: BaseAmounts, requests: BaseAmounts): number | undefined {
  const cpu = used.cpu + requests.cpu;
  const memory = used.memory + requests.memory;
  if (Number.isNaN(cpu + memory + allocatable.cpu + allocatable.memory)) return undefined;
  let sum = 0;
  let count = 0;
  if (allocatable.cpu > 0) {
    sum += Math.min(1, Math.max(0, cpu / allocatable.cpu));
    count++;
  }
  if (allocatable.memory > 0) {
    sum += Math.min(1, Math.max(0, memory / allocatable.memory));
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

/** R of fullness(): the same for every Node a request names, so worked out once per request. */
export function scoredResources(requests: ReadonlyResourceList): string[] {
  const out: string[] = [...BASE];
  for (const [r, v] of requests) {
    if (v > 0n && r !== 'pods' && r !== 'cpu' && r !== 'memory') out.push(r);
  }
  return out;
}

export function score(full: number, standing: Standing | undefined, refused: boolean): number {
  if (refused) return 0;
  const f = Math.min(1, Math.max(0, Number.isFinite(full) ? full : 0));
  if (standing?.disruption === 'Candidate') return Math.round(CANDIDATE_CEILING * f);
  return Math.min(MAX_EXTENDER_PRIORITY, STAYS_ON_FLOOR + Math.round((MAX_EXTENDER_PRIORITY - STAYS_ON_FLOOR) * f));
}
