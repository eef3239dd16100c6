/**
 * A seeded generator (mulberry32), so that every run of a benchmark measures the same
 * cluster and a figure moves only when the code does.
 */
export interface Random {
  next(): number;
  int(below: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  /** An index drawn with probability proportional to its weight. */
  weighted(weights: readonly number[]): number;
}

export function seededRandom(seed: number): Random {
  let state = seed | 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number): number => Math.floor(next() * below);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    chance: (p) => next() < p,
    weighted(weights) {
      const total = weights.reduce((a, b) => a + b, 0);
      let x = next() * total;
      for (const [i, w] of weights.entries()) {
        x -= w;
        if (x < 0) return i;
      }
      return weights.length - 1;
    },
  };
}
