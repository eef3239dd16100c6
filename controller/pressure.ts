/**
 * Pressure statistics per category: the level (requested / allocatable over the Ready
 * machines, 0..1) and its rate of change.
 *
 * The rate is the least-squares slope of the level over the samples in the window
 * (`spec.pressure.windowSeconds`), in level units per minute. A least-squares slope uses
 * every sample, so one noisy sample moves it little, and it needs no tuning beyond the
 * window; a plain first-to-last difference would swing with each outlier. With fewer than
 * three samples, or samples spanning less than a fifth of the window, the rate is 0: a
 * fresh autoscaler does not react to its first two readings.
 */

export type PressureCategory = 'cpu' | 'memory' | 'ephemeral-storage' | 'network';

export interface Sample {
  /** ms since the epoch */
  t: number;
  level: number;
}

export class LevelSeries {
  private samples: Sample[] = [];

  constructor(private windowMs: number) {}

  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
    this.trim(this.samples.at(-1)?.t ?? 0);
  }

  add(t: number, level: number): void {
    const last = this.samples.at(-1);
    // Several reconciles within a second add nothing new; keep the latest reading.
    if (last && t - last.t < 1000) {
      last.level = level;
      return;
    }
    this.samples.push({ t, level });
    this.trim(t);
  }

  get level(): number {
    return this.samples.at(-1)?.level ?? 0;
  }

  get size(): number {
    return this.samples.length;
  }

  /** Least-squares slope in level units per minute (0 when there is not enough data). */
  ratePerMinute(): number {
    const n = this.samples.length;
    if (n < 3) return 0;
    const first = this.samples[0] as Sample;
    const last = this.samples[n - 1] as Sample;
    if (last.t - first.t < this.windowMs / 5) return 0;
    let sx = 0;
    let sy = 0;
    for (const s of this.samples) {
      sx += s.t - first.t;
      sy += s.level;
    }
    const mx = sx / n;
    const my = sy / n;
    let num = 0;
    let den = 0;
    for (const s of this.samples) {
      const dx = s.t - first.t - mx;
      num += dx * (s.level - my);
      den += dx * dx;
    }
    if (den === 0) return 0;
    return (num / den) * 60_000;
  }

  private trim(now: number): void {
    const from = now - this.windowMs;
    let i = 0;
    while (i < this.samples.length - 1 && (this.samples[i] as Sample).t < from) i++;
    if (i > 0) this.samples = this.samples.slice(i);
  }
}

export interface CategoryThresholds {
  level: number;
  ratePerMinute: number;
}

export interface CategoryReading {
  category: PressureCategory;
  level: number;
  ratePerMinute: number;
  pressured: boolean;
  reason?: string;
}

/**
 * Whether a category is under pressure: its level at or above the level threshold, a node
 * condition saying so (MemoryPressure, DiskPressure), or its rate at or above the rate
 * threshold (a rising rate is pressure before any pod is pending).
 */
export function judge(
  category: PressureCategory,
  level: number,
  ratePerMinute: number,
  thresholds: CategoryThresholds,
  conditionReason?: string,
): CategoryReading {
  const reading: CategoryReading = { category, level: round(level), ratePerMinute: round(ratePerMinute), pressured: false };
  if (conditionReason) return { ...reading, pressured: true, reason: conditionReason };
  // A threshold of 1 turns the level signal off: a cluster packed full with no pod pending needs nothing.
  if (thresholds.level < 1 && level >= thresholds.level) {
    return { ...reading, pressured: true, reason: `${category} level ${pct(level)} at or above ${pct(thresholds.level)}` };
  }
  if (thresholds.ratePerMinute > 0 && ratePerMinute >= thresholds.ratePerMinute) {
    return {
      ...reading,
      pressured: true,
      reason: `${category} level rising ${pct(ratePerMinute)}/min, at or above ${pct(thresholds.ratePerMinute)}/min`,
    };
  }
  return reading;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}
