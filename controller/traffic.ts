import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';
import type { BareMetalAutoscalerSpec } from '../api/v1alpha1/baremetalautoscaler.js';
import type { TrafficReport } from '../api/v1alpha1/trafficreport.js';
import { candidateFromMachine, candidateFromNode, compileCandidate, compilePod, fits, type CompiledPod } from '../scheduling/index.js';
import { isNodeReady, isTerminated } from './observe.js';
import { LevelSeries, type CategoryReading } from './pressure.js';

/**
 * Traffic pressure: TrafficReports (one per node, from the eBPF agents) and the pods they
 * name become per-workload requests/s and bytes/s; their rate of change over the pressure
 * window (the least-squares slope of LevelSeries, as for cpu and memory) is the network
 * category. A workload whose requests/s or bytes/s rises at or above
 * spec.pressure.network.requestsPerSecondRate / bytesPerSecondRate is surging.
 *
 * A surge is answered the way pending pods are: as the demand of one more replica of the
 * workload (a copy of one of its pods, with its requests, tolerations, nodeSelector and
 * affinity, not bound to any node). The scale-up decision then checks that copy against every
 * powered-off machine (taints and tolerations, selectors, resources) and scores them, so the
 * machine powered on is one the workload can run on. No demand is raised while a Ready node
 * already has room for that replica, so one surge powers on one machine, and a machine on its
 * way absorbs the demand as it absorbs pending pods.
 *
 * Everything but TrafficDemand is pure.
 */

export interface WorkloadRef {
  namespace: string;
  kind: string;
  name: string;
}

export interface WorkloadTraffic extends WorkloadRef {
  /** namespace/kind/name */
  key: string;
  requestsPerSecond: number;
  bytesPerSecond: number;
  /** UIDs of its pods that have traffic. */
  pods: string[];
}

export function workloadKey(w: WorkloadRef): string {
  return `${w.namespace}/${w.kind}/${w.name}`;
}

/**
 * The workload a pod belongs to: its controller, with a ReplicaSet made by a Deployment
 * (named `<deployment>-<pod-template-hash>`) counted as the Deployment, so a rollout does not
 * split the traffic in two; a pod without a controller is its own workload.
 */
export function workloadOf(pod: V1Pod): WorkloadRef | undefined {
  const namespace = pod.metadata?.namespace;
  const name = pod.metadata?.name;
  if (!namespace || !name) return undefined;
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller) ?? undefined;
  if (!owner) return { namespace, kind: 'Pod', name };
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) {
    return { namespace, kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
  }
  return { namespace, kind: owner.kind, name: owner.name };
}

/**
 * Sums the reports' pods by workload. Reports older than maxAgeMs (an agent that stopped)
 * are left out, and so are pods the cache does not know or that have terminated: their
 * traffic is over.
 */
export function aggregateWorkloads(reports: readonly TrafficReport[], podByUid: (uid: string) => V1Pod | undefined, now: number, maxAgeMs: number): WorkloadTraffic[] {
  const out = new Map<string, WorkloadTraffic>();
  for (const r of reports) {
    const at = Date.parse(r.spec.observedAt);
    if (!Number.isFinite(at) || now - at > maxAgeMs) continue;
    for (const p of r.spec.pods) {
      const pod = podByUid(p.uid);
      if (!pod || isTerminated(pod)) continue;
      const ref = workloadOf(pod);
      if (!ref) continue;
      const key = workloadKey(ref);
      let w = out.get(key);
      if (!w) out.set(key, (w = { ...ref, key, requestsPerSecond: 0, bytesPerSecond: 0, pods: [] }));
      w.requestsPerSecond += p.requestsPerSecond;
      w.bytesPerSecond += p.bytesPerSecond;
      w.pods.push(p.uid);
    }
  }
  return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export interface NetworkThresholds {
  requestsPerSecondRate: number;
  bytesPerSecondRate: number;
}

export interface WorkloadReading {
  workload: WorkloadTraffic;
  /** Change of requests/s per minute (least-squares slope over the window). */
  requestsRatePerMinute: number;
  bytesRatePerMinute: number;
  /** Why it surges; undefined when it does not. */
  surge?: string;
}

/** Requests/s and bytes/s series per autoscaler and workload, fed at each reconcile. */
export class TrafficTracker {
  private readonly series = new Map<string, { rps: LevelSeries; bps: LevelSeries; seen: number }>();

  observe(scope: string, windowMs: number, workloads: readonly WorkloadTraffic[], thresholds: NetworkThresholds, now: number): WorkloadReading[] {
    const readings: WorkloadReading[] = [];
    const present = new Set<string>();
    for (const w of workloads) {
      const key = `${scope}/${w.key}`;
      present.add(key);
      let s = this.series.get(key);
      if (!s) this.series.set(key, (s = { rps: new LevelSeries(windowMs), bps: new LevelSeries(windowMs), seen: now }));
      s.seen = now;
      s.rps.setWindow(windowMs);
      s.bps.setWindow(windowMs);
      s.rps.add(now, w.requestsPerSecond);
      s.bps.add(now, w.bytesPerSecond);
      const requestsRatePerMinute = round(s.rps.ratePerMinute());
      const bytesRatePerMinute = round(s.bps.ratePerMinute());
      const reasons: string[] = [];
      if (thresholds.requestsPerSecondRate > 0 && requestsRatePerMinute >= thresholds.requestsPerSecondRate) {
        reasons.push(`requests/s rising ${requestsRatePerMinute}/min (now ${round(w.requestsPerSecond)}), at or above ${thresholds.requestsPerSecondRate}/min`);
      }
      if (thresholds.bytesPerSecondRate > 0 && bytesRatePerMinute >= thresholds.bytesPerSecondRate) {
        reasons.push(`bytes/s rising ${bytesRatePerMinute}/min (now ${Math.round(w.bytesPerSecond)}), at or above ${thresholds.bytesPerSecondRate}/min`);
      }
      readings.push({ workload: w, requestsRatePerMinute, bytesRatePerMinute, ...(reasons.length > 0 ? { surge: `${w.namespace}/${w.kind}/${w.name} ${reasons.join(' and ')}` } : {}) });
    }
    // A workload without traffic reads as zero while its series lives, so a surge that
    // stops shows as a falling rate; after a window of silence its series is dropped.
    for (const [key, s] of this.series) {
      if (!key.startsWith(`${scope}/`) || present.has(key)) continue;
      if (now - s.seen > windowMs) {
        this.series.delete(key);
        continue;
      }
      s.rps.add(now, 0);
      s.bps.add(now, 0);
    }
    return readings;
  }

  forget(scope: string): void {
    for (const k of this.series.keys()) if (k.startsWith(`${scope}/`)) this.series.delete(k);
  }
}

/** The network category for status.pressure: the busiest workload's level and the steepest rise. */
export function networkReading(readings: readonly WorkloadReading[]): CategoryReading {
  const surges = readings.filter((r) => r.surge !== undefined);
  const level = readings.reduce((m, r) => Math.max(m, r.workload.requestsPerSecond), 0);
  const rate = readings.reduce((m, r) => Math.max(m, r.requestsRatePerMinute), 0);
  const reading: CategoryReading = { category: 'network', level: round(level), ratePerMinute: round(rate), pressured: surges.length > 0 };
  if (surges.length > 0) reading.reason = surges.map((s) => s.surge).join('; ').slice(0, 500);
  return reading;
}

/**
 * One more replica of a workload, as a pending pod for the scale-up decision: a copy of one
 * of its pods, unbound, with a uid of its own that names the workload (stable, so the
 * decision's caches and claims treat it as one pod from reconcile to reconcile).
 */
export function replicaDemand(w: WorkloadRef, template: V1Pod): V1Pod {
  const spec = { ...template.spec, containers: template.spec?.containers ?? [] };
  delete spec.nodeName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${w.name}-traffic-surge`,
      namespace: w.namespace,
      uid: `traffic-surge/${workloadKey(w)}`,
      resourceVersion: template.metadata?.resourceVersion ?? '0',
      ...(template.metadata?.labels ? { labels: template.metadata.labels } : {}),
    },
    spec,
    status: { phase: 'Pending' },
  };
}

/** A Ready, schedulable Node with room for the pod, if any (then no machine is needed for it). */
export function nodeWithRoom(pod: CompiledPod, nodes: readonly V1Node[], podsOn: (node: string) => readonly V1Pod[]): string | undefined {
  for (const n of nodes) {
    if (!isNodeReady(n)) continue;
    const name = n.metadata?.name ?? '';
    if (fits(pod, compileCandidate(candidateFromNode(n, podsOn(name))))) return name;
  }
  return undefined;
}

export interface TrafficStores {
  reports: { list(): TrafficReport[] };
  pods: { list(): V1Pod[] };
  nodes: { list(): V1Node[] };
}

export interface TrafficObservation {
  /** Pods to add to the pending pods: one replica per surging workload that has nowhere to go. */
  demand: V1Pod[];
  /** The network category for status.pressure. */
  reading: CategoryReading;
}

/** What the reconciler asks at each reconcile (controller/reconcile/reconciler.ts, the demand step). */
export interface TrafficDemandSource {
  observe(autoscaler: string, spec: BareMetalAutoscalerSpec, selected: readonly ParsedMachine[], now: number): TrafficObservation;
}

export interface TrafficDemandOptions {
  /** Reports older than this are from an agent that stopped: ignored. Default 10 min. */
  maxReportAgeMs?: number;
  /** Called once when a surge becomes demand for an autoscaler (events, logs). */
  onSurge?: (autoscaler: string, surge: string, replica: V1Pod) => void;
}

/**
 * The reconciler's source of traffic demand, over the informers' caches. A surging workload
 * is handed to one autoscaler at a time (the first whose machines can host it claims it, for
 * its join timeout), so two autoscalers do not both power on for one surge.
 */
export class TrafficDemand implements TrafficDemandSource {
  private readonly tracker = new TrafficTracker();
  private readonly claims = new Map<string, { autoscaler: string; until: number }>();

  constructor(
    private readonly stores: TrafficStores,
    private readonly opts: TrafficDemandOptions = {},
  ) {}

  observe(autoscaler: string, spec: BareMetalAutoscalerSpec, selected: readonly ParsedMachine[], now: number): TrafficObservation {
    const thresholds = spec.pressure.network;
    const reports = this.stores.reports.list();
    if (reports.length === 0) {
      this.tracker.forget(autoscaler);
      return { demand: [], reading: { category: 'network', level: 0, ratePerMinute: 0, pressured: false } };
    }
    const pods = this.stores.pods.list();
    const byUid = new Map(pods.map((p) => [p.metadata?.uid ?? '', p]));
    const workloads = aggregateWorkloads(reports, (uid) => byUid.get(uid), now, this.opts.maxReportAgeMs ?? 600_000);
    // Only the workloads this autoscaler could serve: one of its machines can host a replica.
    const machines = selected.map((m) => compileCandidate(candidateFromMachine(m)));
    const templates = new Map<string, { pod: V1Pod; compiled: CompiledPod }>();
    const mine = workloads.filter((w) => {
      const pod = w.pods.map((uid) => byUid.get(uid)).find((p): p is V1Pod => p !== undefined);
      if (!pod) return false;
      const replica = replicaDemand(w, pod);
      const compiled = compilePod(replica);
      if (!machines.some((c) => fits(compiled, c))) return false;
      templates.set(w.key, { pod: replica, compiled });
      return true;
    });
    const readings = this.tracker.observe(autoscaler, spec.pressure.windowSeconds * 1000, mine, thresholds, now);
    const reading = networkReading(readings);
    const demand: V1Pod[] = [];
    let podsByNode: Map<string, V1Pod[]> | undefined;
    for (const r of readings) {
      const claim = this.claims.get(r.workload.key);
      if (!r.surge) {
        if (claim?.autoscaler === autoscaler) this.claims.delete(r.workload.key);
        continue;
      }
      if (claim && claim.autoscaler !== autoscaler && claim.until > now) continue;
      const t = templates.get(r.workload.key);
      if (!t) continue;
      if (!podsByNode) {
        podsByNode = new Map();
        for (const p of pods) {
          const n = p.spec?.nodeName;
          if (!n) continue;
          let list = podsByNode.get(n);
          if (!list) podsByNode.set(n, (list = []));
          list.push(p);
        }
      }
      const byNode = podsByNode;
      const room = nodeWithRoom(t.compiled, this.stores.nodes.list(), (n) => byNode.get(n) ?? []);
      if (room) {
        if (claim?.autoscaler === autoscaler) this.claims.delete(r.workload.key);
        continue;
      }
      if (!claim || claim.autoscaler !== autoscaler || claim.until <= now) {
        this.opts.onSurge?.(autoscaler, r.surge, t.pod);
      }
      this.claims.set(r.workload.key, { autoscaler, until: now + spec.scaleUp.joinTimeoutSeconds * 1000 });
      demand.push(t.pod);
    }
    if (this.claims.size > 10_000) for (const [k, c] of this.claims) if (c.until <= now) this.claims.delete(k);
    return { demand, reading };
  }

  forget(autoscaler: string): void {
    this.tracker.forget(autoscaler);
    for (const [k, c] of this.claims) if (c.autoscaler === autoscaler) this.claims.delete(k);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
