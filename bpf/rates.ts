import type { PodTraffic } from '../api/v1alpha1/trafficreport.js';
import { addCounters, COUNTER_FIELDS, zeroCounters, type TrafficCounters } from './counters.js';

/**
 * From counter totals per cgroup to rates per pod, pure (the agent feeds it what it reads).
 *
 * Deltas are taken per cgroup, not per pod: a container that exits takes its counters with it
 * (the cgroup_rmdir tracepoint drops them), and a per-pod sum would then fall and read as a
 * negative rate. A cgroup first seen after the first poll counts from zero (it was created
 * since); at the first poll every cgroup is a baseline only.
 */
export class CgroupRates {
  private previous = new Map<bigint, TrafficCounters>();
  private previousAt: number | undefined;

  /** Per cgroup: what happened since the last call, and the interval in seconds (0 at the first call). */
  update(totals: ReadonlyMap<bigint, TrafficCounters>, now: number): { deltas: Map<bigint, TrafficCounters>; seconds: number } {
    const first = this.previousAt === undefined;
    const seconds = first ? 0 : Math.max(0, (now - (this.previousAt as number)) / 1000);
    const deltas = new Map<bigint, TrafficCounters>();
    if (!first) {
      for (const [id, cur] of totals) {
        const prev = this.previous.get(id);
        const d = zeroCounters();
        let any = false;
        for (const f of COUNTER_FIELDS) {
          // A counter below its previous value: the entry was dropped and created anew.
          const v = prev && cur[f] >= prev[f] ? cur[f] - prev[f] : cur[f];
          d[f] = v;
          if (v > 0) any = true;
        }
        if (any) deltas.set(id, d);
      }
    }
    this.previous = new Map(totals);
    this.previousAt = now;
    return { deltas, seconds };
  }
}

export interface PodIdentity {
  namespace: string;
  name: string;
  ownerKind?: string;
  ownerName?: string;
}

/** Sums cgroup deltas by pod UID (cgroups outside pods are left out) and divides by the interval. */
export function podRates(
  deltas: ReadonlyMap<bigint, TrafficCounters>,
  seconds: number,
  podOf: (cgroup: bigint) => string | undefined,
  identity: (uid: string) => PodIdentity | undefined,
): PodTraffic[] {
  if (!(seconds > 0)) return [];
  const byPod = new Map<string, TrafficCounters>();
  for (const [id, d] of deltas) {
    const uid = podOf(id);
    if (!uid) continue;
    let sum = byPod.get(uid);
    if (!sum) byPod.set(uid, (sum = zeroCounters()));
    addCounters(sum, d);
  }
  const out: PodTraffic[] = [];
  for (const [uid, c] of byPod) {
    const who = identity(uid);
    out.push({
      uid,
      ...(who ? { namespace: who.namespace, name: who.name } : {}),
      ...(who?.ownerKind ? { ownerKind: who.ownerKind } : {}),
      ...(who?.ownerName ? { ownerName: who.ownerName } : {}),
      requestsPerSecond: round((c.httpRequests + c.http2Requests) / seconds),
      http2RequestsPerSecond: round(c.http2Requests / seconds),
      bytesPerSecond: round((c.rxBytes + c.txBytes) / seconds),
      rxBytesPerSecond: round(c.rxBytes / seconds),
      connectionsPerSecond: round(c.syns / seconds),
      packetsPerSecond: round((c.rxPackets + c.txPackets) / seconds),
      retransmitsPerSecond: round(c.retransmits / seconds),
    });
  }
  return out.sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface ChangeThresholds {
  /** Relative change of a pod's rate that is significant (0.2 = 20 %). */
  relative: number;
  /** Changes below these are noise whatever the relative change. */
  minRequestsPerSecond: number;
  minBytesPerSecond: number;
}

export const DEFAULT_CHANGE: ChangeThresholds = { relative: 0.2, minRequestsPerSecond: 1, minBytesPerSecond: 64 * 1024 };

/**
 * Whether a new report says something the last written one does not: a pod appeared or went
 * with traffic above the noise, or a pod's requests/s or bytes/s moved by more than the
 * relative threshold and more than the noise floor. The reason is for the log.
 */
export function significantChange(previous: readonly PodTraffic[] | undefined, next: readonly PodTraffic[], t: ChangeThresholds = DEFAULT_CHANGE): string | undefined {
  if (!previous) return 'first report';
  const loud = (p: PodTraffic): boolean => p.requestsPerSecond >= t.minRequestsPerSecond || p.bytesPerSecond >= t.minBytesPerSecond;
  const before = new Map(previous.map((p) => [p.uid, p]));
  const after = new Map(next.map((p) => [p.uid, p]));
  for (const p of next) {
    const q = before.get(p.uid);
    if (!q) {
      if (loud(p)) return `pod ${label(p)} has traffic`;
      continue;
    }
    if (moved(q.requestsPerSecond, p.requestsPerSecond, t.relative, t.minRequestsPerSecond)) return `pod ${label(p)} requests/s ${q.requestsPerSecond} → ${p.requestsPerSecond}`;
    if (moved(q.bytesPerSecond, p.bytesPerSecond, t.relative, t.minBytesPerSecond)) return `pod ${label(p)} bytes/s ${q.bytesPerSecond} → ${p.bytesPerSecond}`;
    if (p.name !== q.name) return `pod ${label(p)} identified`;
  }
  for (const q of previous) if (!after.has(q.uid) && loud(q)) return `pod ${label(q)} went quiet`;
  return undefined;
}

function moved(a: number, b: number, relative: number, floor: number): boolean {
  const d = Math.abs(b - a);
  return d >= floor && d > relative * Math.max(a, b);
}

function label(p: PodTraffic): string {
  return p.name ? `${p.namespace}/${p.name}` : p.uid;
}
