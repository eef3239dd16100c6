import type { PodTraffic } from '../api/v1alpha1/trafficreport.js';
import { MAX_REPORT_PODS, MAX_REPORT_PODS_BYTES, TRAFFIC_MAX_LENGTH } from '../api/v1alpha1/traffic-names.js';

/**
 * Keeps a TrafficReport within its size cap (api/v1alpha1/trafficreport.ts): at most
 * MAX_REPORT_PODS pods and MAX_REPORT_PODS_BYTES of JSON in `pods`, every string within the
 * schema's maxLength. A report over the cap would be refused by the API server as a whole;
 * this way it is written, with the busiest pods (the ones that make pressure) in it.
 */

export interface ReportLimits {
  maxPods: number;
  maxBytes: number;
}

export const REPORT_LIMITS: ReportLimits = { maxPods: MAX_REPORT_PODS, maxBytes: MAX_REPORT_PODS_BYTES };

export interface CappedPods {
  /** What fits, in the order given. */
  pods: PodTraffic[];
  /** Pods left out: the quietest beyond the cap, and any whose UID is longer than a UID can be. */
  omitted: number;
}

const MAX = {
  uid: TRAFFIC_MAX_LENGTH.uid,
  namespace: TRAFFIC_MAX_LENGTH.namespace,
  name: TRAFFIC_MAX_LENGTH.name,
  ownerKind: TRAFFIC_MAX_LENGTH.ownerKind,
  ownerName: TRAFFIC_MAX_LENGTH.ownerName,
};

const tooLong = (s: string | undefined, max: number): boolean => s !== undefined && s.length > max;

/**
 * One pod within the schema's string lengths, or undefined when its UID is not one. A name
 * is never cut (a cut name names another object): a pair that does not fit is left out, and
 * the pod is reported by UID, as before the agent had seen its Pod.
 */
function withinLengths(p: PodTraffic): PodTraffic | undefined {
  if (tooLong(p.uid, MAX.uid)) return undefined;
  const { namespace, name, ownerKind, ownerName, ...rest } = p;
  const identity = tooLong(namespace, MAX.namespace) || tooLong(name, MAX.name) ? {} : { ...(namespace === undefined ? {} : { namespace }), ...(name === undefined ? {} : { name }) };
  const owner = tooLong(ownerKind, MAX.ownerKind) || tooLong(ownerName, MAX.ownerName) ? {} : { ...(ownerKind === undefined ? {} : { ownerKind }), ...(ownerName === undefined ? {} : { ownerName }) };
  return { ...rest, ...identity, ...owner };
}

const bytesOf = (p: PodTraffic): number => Buffer.byteLength(JSON.stringify(p));

/** Busiest first: requests, then bytes per second; the UID breaks ties, so the choice is stable. */
function busiestFirst(a: PodTraffic, b: PodTraffic): number {
  return b.requestsPerSecond - a.requestsPerSecond || b.bytesPerSecond - a.bytesPerSecond || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
}

export function capReportPods(pods: readonly PodTraffic[], limits: ReportLimits = REPORT_LIMITS): CappedPods {
  const valid = pods.map(withinLengths).filter((p): p is PodTraffic => p !== undefined);
  const total = (list: readonly PodTraffic[]): number => 2 + list.reduce((n, p) => n + bytesOf(p) + 1, 0);
  if (valid.length <= limits.maxPods && total(valid) <= limits.maxBytes) return { pods: valid, omitted: pods.length - valid.length };
  const kept = new Set<PodTraffic>();
  let bytes = 2;
  for (const p of [...valid].sort(busiestFirst)) {
    const b = bytesOf(p) + 1;
    if (kept.size >= limits.maxPods || bytes + b > limits.maxBytes) break;
    kept.add(p);
    bytes += b;
  }
  return { pods: valid.filter((p) => kept.has(p)), omitted: pods.length - kept.size };
}
