/**
 * Scale-up scoring: how close a candidate machine is to the ideal machine for a deficit.
 *
 *   D_c      deficit in category c: the summed requests of the pods still to place
 *            (or, for pressure without pending pods, the capacity the pressure asks for)
 *   M_c      normaliser: the largest of D_c and every candidate's capacity in c
 *   d_c(m)   = |capacity_c(m) − D_c| / M_c, in 0..1
 *   score(m) = Σ_{c useful} usefulWeight · d_c(m) + Σ_{c other} nonUsefulWeight · d_c(m)
 *
 * The lowest score wins (closest to ideal); ties (within 1e-9) go to the lower power cost
 * (maxWatts, else idleWatts, else unknown = last), then to fewer power-ons today, then to
 * the name. A category is useful when it is under pressure, or when its share of the
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

export function scoreCandidates(
  deficit: ResourceVector,
  candidates: ScoringCandidate[],
  weights: ScoringWeights,
  pressured: Set<string> = new Set(),
): { ranked: ScoredCandidate[]; useful: Set<string> } {
  const categories = scoringCategories(deficit);
  const normalisers: Record<string, number> = {};
  for (const c of categories) {
    let m = Number(deficit[c] ?? 0n);
    for (const cand of candidates) m = Math.max(m, Number(cand.capacity[c] ?? 0n));
    normalisers[c] = m;
  }
  const useful = usefulCategories(deficit, normalisers, categories, pressured);
  const scored = candidates.map((cand) => {
    const distances: Record<string, number> = {};
    let score = 0;
    for (const c of categories) {
      const m = normalisers[c] ?? 0;
      const d = m > 0 ? Math.abs(Number(cand.capacity[c] ?? 0n) - Number(deficit[c] ?? 0n)) / m : 0;
      distances[c] = d;
      score += (useful.has(c) ? weights.usefulWeight : weights.nonUsefulWeight) * d;
    }
    return { cand, score, distances };
  });
  scored.sort((a, b) => {
    if (Math.abs(a.score - b.score) > 1e-9) return a.score - b.score;
    const pa = a.cand.powerCost ?? Number.POSITIVE_INFINITY;
    const pb = b.cand.powerCost ?? Number.POSITIVE_INFINITY;
    if (pa !== pb) return pa < pb ? -1 : 1;
    if (a.cand.powerCyclesToday !== b.cand.powerCyclesToday) return a.cand.powerCyclesToday - b.cand.powerCyclesToday;
    return a.cand.name < b.cand.name ? -1 : a.cand.name > b.cand.name ? 1 : 0;
  });
  return { ranked: scored.map((s) => ({ name: s.cand.name, score: s.score, distances: s.distances })), useful };
}
