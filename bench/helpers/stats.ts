/** Percentiles and the tables the decision benchmark prints. */

/** Nearest-rank percentile: with few samples, p99 is the largest, never an interpolation. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return { n: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.max(...samples), mean };
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** Columns padded to their widest cell; numbers (anything starting with a digit) right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return i > 0 && /^[\d<~-]/.test(c) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
}

/** After a full collection when the process runs with --expose-gc, so figures are not noise from garbage. */
export function memory(): MemorySnapshot {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

/** "40× below" or "1.3× above": a figure against a limit it should stay under. */
export function versus(limit: number, value: number): string {
  return value <= limit ? `${(limit / value).toFixed(limit / value >= 10 ? 0 : 1)}× below` : `${(value / limit).toFixed(1)}× above`;
}
