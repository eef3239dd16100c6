/**
 * Scale-up scoring: how close a candidate machine is to the ideal machine for a deficit.
 *
 *   D_c      deficit in category c: the summed requests of the pods still to place
 *            (or, for pressure without pending pods, the capacity the pressure asks for)
 *   M_c      normaliser: the largest of D_c and every candidate's capacity in c
 *   d_c(m)   = |capacity_c(m) − D_c| / M_c, in 0..1
 *   score(m) = Σ_{c useful} usefulWeight · d_c(m) + Σ_{c other} nonUsefulWeight · d_c(m)
 *
 * The lowest score wins (closest to ideal); ties (within 1e-9) go, while pods wait, to the
 * faster booter (expected boot time in steps of 25 % above 30 s, unknown = last), then to the lower power
 * cost (maxWatts, else idleWatts, else unknown = last), then to fewer power-ons today, then
 * to the name. A category is useful when it is under pressure, or when its share of the
 * deficit (D_c / M_c) is at least half of the largest share: the resources that the
 * deficit is really made of. The others still count, at the lower weight, so a machine
 * far larger than needed in every other category loses to a snugger one.
 */

export type ResourceVector = Record<string, bigint>;

export interface ScoringWeights {
  usefulWeight: number;
  nonUsefulWeight: number;
}

export interface ScoringCandidate {
  name: string;
  capacity: ResourceVector;
  /** Watts: maxWatts, else idleWatts; undefined when the inventory does not say. */
  powerCost?: number;
  powerCyclesToday: number;
  /** Expected seconds from power-on to Ready (learned, else the inventory's bootSeconds). */
  bootSeconds?: number;
}

export interface ScoredCandidate {
  name: string;
  score: number;
  distances: Record<string, number>;
}

export const SCORED_CATEGORIES = ['cpu', 'memory', 'ephemeral-storage'] as const;

/** Categories scored for a deficit: the standard three plus any extended resource in the deficit. */
export function scoringCategories(deficit: ResourceVector): string[] {
  const extra = Object.keys(deficit).filter((k) => k.includes('/') && (deficit[k] ?? 0n) > 0n);
  return [...SCORED_CATEGORIES, ...extra.sort()];
}

export function usefulCategories(deficit: ResourceVector, normalisers: Record<string, number>, categories: string[], pressured: Set<string>): Set<string> {
  const shares = new Map<string, number>();
  let top = 0;
  for (const c of categories) {
    const d = Number(deficit[c] ?? 0n);
    const m = normalisers[c] ?? 0;
    const share = m > 0 ? d / m : 0;
    shares.set(c, share);
    top = Math.max(top, share);
  }
  const useful = new Set<string>();
  for (const c of categories) {
    if (pressured.has(c)) useful.add(c);
    const share = shares.get(c) ?? 0;
    if (share > 0 && share >= top / 2) useful.add(c);
  }
  return useful;
}

interface Scale {
  categories: string[];
  normalisers: Record<string, number>;
  useful: Set<string>;
}

function scaleFor(deficit: ResourceVector, candidates: ScoringCandidate[], pressured: Set<string>): Scale {
  const categories = scoringCategories(deficit);
  const normalisers: Record<string, number> = {};
  for (const c of categories) {
    let m = Number(deficit[c] ?? 0n);
    for (const cand of candidates) m = Math.max(m, Number(cand.capacity[c] ?? 0n));
    normalisers[c] = m;
  }
  return { categories, normalisers, useful: usefulCategories(deficit, normalisers, categories, pressured) };
}

function distanceTo(cand: ScoringCandidate, deficit: ResourceVector, scale: Scale, weights: ScoringWeights, distances?: Record<string, number>): number {
  let score = 0;
  for (const c of scale.categories) {
    const m = scale.normalisers[c] ?? 0;
    const d = m > 0 ? Math.abs(Number(cand.capacity[c] ?? 0n) - Number(deficit[c] ?? 0n)) / m : 0;
    if (distances) distances[c] = d;
    score += (scale.useful.has(c) ? weights.usefulWeight : weights.nonUsefulWeight) * d;
  }
  return score;
}

const TIE = 1e-9;

/** Boots up to this long count as equally fast. */
const BOOT_FLOOR_SECONDS = 30;

/**
 * Boot times compared in steps of 25 % (powers of 1.25) above half a minute: the jitter
 * between two boots of like machines is no difference, a machine that boots in half the
 * time is.
 */
function bootStep(c: ScoringCandidate): number {
  if (c.bootSeconds === undefined || !Number.isFinite(c.bootSeconds)) return Number.POSITIVE_INFINITY;
  return Math.floor(Math.log(Math.max(BOOT_FLOOR_SECONDS, c.bootSeconds)) / Math.log(1.25));
}

function compareScored(a: ScoringCandidate, scoreA: number, b: ScoringCandidate, scoreB: number, fastBoot = false): number {
  if (Math.abs(scoreA - scoreB) > TIE) return scoreA - scoreB;
  if (fastBoot && bootStep(a) !== bootStep(b)) return bootStep(a) < bootStep(b) ? -1 : 1;
  const pa = a.powerCost ?? Number.POSITIVE_INFINITY;
  const pb = b.powerCost ?? Number.POSITIVE_INFINITY;
  if (pa !== pb) return pa < pb ? -1 : 1;
  if (a.powerCyclesToday !== b.powerCyclesToday) return a.powerCyclesToday - b.powerCyclesToday;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function scoreCandidates(
  deficit: ResourceVector,
  candidates: ScoringCandidate[],
  weights: ScoringWeights,
  pressured: Set<string> = new Set(),
  fastBoot = false,
): { ranked: ScoredCandidate[]; useful: Set<string> } {
  const scale = scaleFor(deficit, candidates, pressured);
  const scored = candidates.map((cand) => {
    const distances: Record<string, number> = {};
    const score = distanceTo(cand, deficit, scale, weights, distances);
    return { cand, score, distances };
  });
  scored.sort((a, b) => compareScored(a.cand, a.score, b.cand, b.score, fastBoot));
  return { ranked: scored.map((s) => ({ name: s.cand.name, score: s.score, distances: s.distances })), useful: scale.useful };
}

/**
 * The winner of scoreCandidates' ranking over a subset of a fixed list of candidates,
 * without sorting them: the decision asks once per machine it powers on, over thousands of
 * candidates, so capacities are converted to numbers once per category for the whole list.
 *
 * Scores within the tie tolerance count as equal, and a chain of such near-ties is not
 * transitive, so a sort's first element can depend on where the sort starts. When the
 * lowest score stands apart (every other score is more than the tolerance above it), the
 * candidates with exactly that score beat every other candidate in every comparison, and
 * the sort's first element is the least of them by the tie-breakers, the first of equals in
 * input order: one pass finds it. Otherwise the sort itself is used.
 */
export class CandidateTable {
  private readonly columns = new Map<string, Float64Array>();

  constructor(private readonly candidates: readonly ScoringCandidate[]) {}

  /** Number(capacity) of every candidate in a category, as scaleFor and distanceTo compute it. */
  private column(category: string): Float64Array {
    let col = this.columns.get(category);
    if (!col) {
      col = new Float64Array(this.candidates.length);
      for (let i = 0; i < this.candidates.length; i++) col[i] = Number(this.candidates[i]?.capacity[category] ?? 0n);
      this.columns.set(category, col);
    }
    return col;
  }

  /** The first of scoreCandidates(deficit, subset's candidates, ...).ranked, and the useful categories. */
  best(deficit: ResourceVector, subset: readonly number[], weights: ScoringWeights, pressured: Set<string> = new Set(), fastBoot = false): { best?: ScoredCandidate; useful: Set<string> } {
    const categories = scoringCategories(deficit);
    const normalisers: Record<string, number> = {};
    for (const c of categories) {
      const col = this.column(c);
      let m = Number(deficit[c] ?? 0n);
      for (const i of subset) m = Math.max(m, col[i] as number);
      normalisers[c] = m;
    }
    const useful = usefulCategories(deficit, normalisers, categories, pressured);
    // distanceTo's operations in its order (category by category from 0), so the same numbers.
    const scores = new Float64Array(subset.length);
    for (const c of categories) {
      const col = this.column(c);
      const m = normalisers[c] ?? 0;
      const want = Number(deficit[c] ?? 0n);
      const weight = useful.has(c) ? weights.usefulWeight : weights.nonUsefulWeight;
      for (let j = 0; j < subset.length; j++) {
        const d = m > 0 ? Math.abs((col[subset[j] as number] as number) - want) / m : 0;
        scores[j] = (scores[j] as number) + weight * d;
      }
    }

    let low = Number.POSITIVE_INFINITY;
    let apart = true;
    for (let j = 0; j < scores.length && apart; j++) {
      const s = scores[j] as number;
      const cand = this.candidates[subset[j] as number] as ScoringCandidate;
      apart = Number.isFinite(s) && !Number.isNaN(cand.powerCost) && Number.isFinite(cand.powerCyclesToday);
      if (s < low) low = s;
    }
    for (let j = 0; j < scores.length && apart; j++) {
      const s = scores[j] as number;
      if (s !== low && s - low <= TIE) apart = false;
    }
    if (!apart) {
      const first = scoreCandidates(deficit, subset.map((i) => this.candidates[i] as ScoringCandidate), weights, pressured, fastBoot).ranked[0];
      return { ...(first ? { best: first } : {}), useful };
    }
    let winner: ScoringCandidate | undefined;
    for (let j = 0; j < scores.length; j++) {
      if (scores[j] !== low) continue;
      const cand = this.candidates[subset[j] as number] as ScoringCandidate;
      if (!winner || compareScored(cand, low, winner, low, fastBoot) < 0) winner = cand;
    }
    if (!winner) return { useful };
    const distances: Record<string, number> = {};
    const score = distanceTo(winner, deficit, { categories, normalisers, useful }, weights, distances);
    return { best: { name: winner.name, score, distances }, useful };
  }
}
