import type { DemandProfile } from '../api/v1alpha1/baremetalautoscaler.js';

/**
 * Demand by time of week, pure, for pre-warming (spec.scaleUp.predictive). The week (from
 * Monday 00:00 UTC) is cut into 15-minute buckets; each bucket keeps the peak of the requests
 * of the pods bound to and pending for the autoscaler's machines, blended into what the same
 * bucket held a week before (exponential decay, ALPHA for the newest week). A bucket not seen
 * yet is predicted from the same time on the days before, so a daily ramp is learned after
 * one day and a weekly pattern (weekends) after one week.
 *
 * A ramp is a rise of the predicted demand within the horizon (the learned boot time plus
 * lookaheadSeconds) over the demand predicted for now: pre-warming adds the rise to the demand
 * seen now, so a wrong prediction is never repeated through a plateau, and only one pre-warm
 * is made per ramp (status `preWarmedFor`).
 */

export const BUCKET_SECONDS = 900;
export const BUCKETS_PER_DAY = 86_400 / BUCKET_SECONDS;
export const BUCKETS_PER_WEEK = 7 * BUCKETS_PER_DAY;
/** Weight of the newest week in a bucket. */
export const ALPHA = 0.5;
const BUCKET_MS = BUCKET_SECONDS * 1000;
/** 1970-01-05, a Monday. */
const WEEK_ORIGIN_MS = Date.UTC(1970, 0, 5);

export interface DemandSample {
  cpuMillis: number;
  memoryMiB: number;
}

export function absoluteBucket(ms: number): number {
  return Math.floor((ms - WEEK_ORIGIN_MS) / BUCKET_MS);
}

export function bucketStart(bucket: number): number {
  return WEEK_ORIGIN_MS + bucket * BUCKET_MS;
}

function slot(bucket: number): number {
  return ((bucket % BUCKETS_PER_WEEK) + BUCKETS_PER_WEEK) % BUCKETS_PER_WEEK;
}

function parse(text: string): (number | undefined)[] {
  const out: (number | undefined)[] = new Array<number | undefined>(BUCKETS_PER_WEEK).fill(undefined);
  const parts = text === '' ? [] : text.split(',');
  for (let i = 0; i < Math.min(parts.length, BUCKETS_PER_WEEK); i++) {
    const v = parts[i] === '' ? NaN : Number(parts[i]);
    if (Number.isFinite(v) && v >= 0) out[i] = v;
  }
  return out;
}

/** Trailing empty buckets are left out: a young profile stays short. */
function format(values: readonly (number | undefined)[]): string {
  let end = values.length;
  while (end > 0 && values[end - 1] === undefined) end--;
  return values
    .slice(0, end)
    .map((v) => (v === undefined ? '' : String(Math.round(v))))
    .join(',');
}

/** The profile with the demand seen now; a bucket that ended is blended into its slot. */
export function observeDemand(profile: DemandProfile | undefined, now: number, d: DemandSample): DemandProfile {
  const b = absoluteBucket(now);
  const cpu = Math.max(0, Math.round(d.cpuMillis));
  const mem = Math.max(0, Math.round(d.memoryMiB));
  if (!profile || profile.bucketSeconds !== BUCKET_SECONDS) {
    return { bucketSeconds: BUCKET_SECONDS, cpuMillis: '', memoryMiB: '', bucket: b, peakCpuMillis: cpu, peakMemoryMiB: mem };
  }
  if (b === profile.bucket) {
    if (cpu <= profile.peakCpuMillis && mem <= profile.peakMemoryMiB) return profile;
    return { ...profile, peakCpuMillis: Math.max(cpu, profile.peakCpuMillis), peakMemoryMiB: Math.max(mem, profile.peakMemoryMiB) };
  }
  // Time went on (or back, after a clock jump: the bucket is dropped, not blended).
  let { cpuMillis, memoryMiB } = profile;
  if (b > profile.bucket) {
    const cpus = parse(profile.cpuMillis);
    const mems = parse(profile.memoryMiB);
    const s = slot(profile.bucket);
    cpus[s] = blend(cpus[s], profile.peakCpuMillis);
    mems[s] = blend(mems[s], profile.peakMemoryMiB);
    cpuMillis = format(cpus);
    memoryMiB = format(mems);
  }
  return { ...profile, cpuMillis, memoryMiB, bucket: b, peakCpuMillis: cpu, peakMemoryMiB: mem };
}

function blend(old: number | undefined, peak: number): number {
  return old === undefined ? peak : ALPHA * peak + (1 - ALPHA) * old;
}

/** The learned demand of a bucket: its slot, else the same time on one of the six days before. */
export function predicted(profile: DemandProfile, bucket: number, parsed = parseProfile(profile)): DemandSample | undefined {
  for (let day = 0; day < 7; day++) {
    const s = slot(bucket - day * BUCKETS_PER_DAY);
    const cpu = parsed.cpu[s];
    const mem = parsed.mem[s];
    if (cpu !== undefined || mem !== undefined) return { cpuMillis: cpu ?? 0, memoryMiB: mem ?? 0 };
  }
  return undefined;
}

export function parseProfile(profile: DemandProfile): { cpu: (number | undefined)[]; mem: (number | undefined)[] } {
  return { cpu: parse(profile.cpuMillis), mem: parse(profile.memoryMiB) };
}

export interface Ramp {
  /** The bucket the ramp is learned in, and when it starts (ms). */
  bucket: number;
  at: number;
  /** How much the demand is predicted to rise over what is predicted for now. */
  rise: DemandSample;
}

/** The largest learned rise within the horizon, over the demand predicted for now; none if no rise. */
export function forecastRamp(profile: DemandProfile, now: number, horizonMs: number): Ramp | undefined {
  const parsed = parseProfile(profile);
  const cur = absoluteBucket(now);
  const base = predicted(profile, cur, parsed) ?? { cpuMillis: profile.peakCpuMillis, memoryMiB: profile.peakMemoryMiB };
  let best: Ramp | undefined;
  let bestSize = 0;
  for (let b = cur + 1; b <= absoluteBucket(now + horizonMs); b++) {
    const p = predicted(profile, b, parsed);
    if (!p) continue;
    const rise = { cpuMillis: Math.max(0, p.cpuMillis - base.cpuMillis), memoryMiB: Math.max(0, p.memoryMiB - base.memoryMiB) };
    // Sized by the larger relative rise, so cpu and memory weigh alike.
    const size = Math.max(rise.cpuMillis / Math.max(1, base.cpuMillis, p.cpuMillis), rise.memoryMiB / Math.max(1, base.memoryMiB, p.memoryMiB));
    if (size > bestSize) {
      bestSize = size;
      best = { bucket: b, at: bucketStart(b), rise };
    }
  }
  return best;
}
