import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PodTraffic } from '../api/v1alpha1/trafficreport.js';
import { ResourceInformer } from '../kube/informer.js';
import type { KubeEndpoint } from '../kube/kube-http.js';
import { podUidFromCgroupPath, walkCgroups } from './cgroups.js';
import type { TrafficCounters } from './counters.js';
import type { Overflow } from './probe.js';
import { CgroupRates, podRates, significantChange, type ChangeThresholds, type PodIdentity } from './rates.js';
import { capReportPods, REPORT_LIMITS, type ReportLimits } from './report-size.js';
import { errorMessage } from '../kube/errors.js';
import { TrafficReportWriter } from './report-writer.js';

/** What the agent reads counters from: the TrafficProbe, or a recording in tests and benches. */
export interface TrafficSource {
  read(): Map<bigint, TrafficCounters>;
  overflow(): Overflow;
  forget(ids: bigint[]): number;
  /**
   * False when the kernel does not drop a removed cgroup's counters (the probe's
   * cgroup_rmdir hook could not be attached): the agent then looks for removed cgroups
   * itself, every `sweepIntervalMs`. Absent means true.
   */
  readonly removesCgroupCounters?: boolean;
}

export interface TrafficAgentOptions {
  source: TrafficSource;
  cgroupRoot: string;
  nodeName: string;
  pollIntervalMs: number;
  /** At most one TrafficReport write per this interval. */
  reportIntervalMs: number;
  /** A report this old is rewritten even without a change, so readers can tell a live agent. */
  reportMaxAgeMs?: number;
  change?: ChangeThresholds;
  /** Without a cluster: no Pod watch, no reports (metrics only). kube/kubeconfig.ts's KubeAccess, or a client-node KubeConfig. */
  kc?: KubeEndpoint;
  metrics: AgentMetrics;
  logger: Logger;
  now?: () => number;
  /** When the source does not remove cgroups' counters: how often to walk for removed ones. Default 60 s. */
  sweepIntervalMs?: number;
  /** The report's size cap (tests make it small). Default: the API's, REPORT_LIMITS. */
  reportLimits?: ReportLimits;
}

/** The agent's Prometheus metrics: per-pod series for Prometheus and KEDA users, and its own health. */
export class AgentMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'namespace' | 'pod' | 'protocol'>;
  readonly bytes: Counter<'namespace' | 'pod' | 'direction'>;
  readonly packets: Counter<'namespace' | 'pod' | 'direction'>;
  readonly syns: Counter<'namespace' | 'pod'>;
  readonly retransmits: Counter<'namespace' | 'pod'>;
  readonly requestRate: Gauge<'namespace' | 'pod'>;
  readonly byteRate: Gauge<'namespace' | 'pod'>;
  readonly pollDuration: Histogram;
  readonly cgroups: Gauge;
  readonly reports: Counter<'result'>;
  readonly overflow: Gauge<'kind'>;
  readonly omittedPods: Gauge;

  constructor(registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'bamel_agent_process_' });
    const r = [registry];
    const pod = ['namespace', 'pod'] as const;
    this.requests = new Counter({ name: 'bamel_agent_pod_http_requests_total', help: 'HTTP requests received by the pod (protocol http1 or http2)', labelNames: [...pod, 'protocol'], registers: r });
    this.bytes = new Counter({ name: 'bamel_agent_pod_network_bytes_total', help: 'Bytes received (rx) and sent (tx) by the pod, IP headers included', labelNames: [...pod, 'direction'], registers: r });
    this.packets = new Counter({ name: 'bamel_agent_pod_network_packets_total', help: 'Packets received (rx) and sent (tx) by the pod', labelNames: [...pod, 'direction'], registers: r });
    this.syns = new Counter({ name: 'bamel_agent_pod_tcp_syns_total', help: 'TCP connection attempts (SYN) received by the pod', labelNames: [...pod], registers: r });
    this.retransmits = new Counter({ name: 'bamel_agent_pod_tcp_retransmits_total', help: 'TCP segments the pod retransmitted', labelNames: [...pod], registers: r });
    this.requestRate = new Gauge({ name: 'bamel_agent_pod_http_requests_per_second', help: 'HTTP requests per second received by the pod over the last poll interval', labelNames: [...pod], registers: r });
    this.byteRate = new Gauge({ name: 'bamel_agent_pod_network_bytes_per_second', help: 'Bytes per second received and sent by the pod over the last poll interval', labelNames: [...pod], registers: r });
    this.pollDuration = new Histogram({ name: 'bamel_agent_poll_duration_seconds', help: 'Time to read the counters and compute the rates', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: r });
    this.cgroups = new Gauge({ name: 'bamel_agent_cgroups', help: 'Cgroups with counters in the kernel map', registers: r });
    this.reports = new Counter({ name: 'bamel_agent_reports_total', help: 'TrafficReport writes (result: written, failed)', labelNames: ['result'], registers: r });
    this.overflow = new Gauge({ name: 'bamel_agent_uncounted', help: 'What the programs could not count: packets_counters_full, h2_flows_resync', labelNames: ['kind'], registers: r });
    this.omittedPods = new Gauge({ name: 'bamel_agent_report_omitted_pods', help: 'Pods with traffic left out of the last TrafficReport written, to keep it within its size cap', registers: r });
  }
}

/**
 * What the agent reads of a Pod: its identity and controller. The rest (spec, status,
 * managedFields: most of a Pod's few kilobytes) is dropped before it is cached.
 */
export function podIdentityOnly(obj: KubernetesObject): V1Pod {
  const m = (obj as V1Pod).metadata ?? {};
  const owners = m.ownerReferences?.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.name, uid: o.uid, ...(o.controller ? { controller: true } : {}) }));
  return {
    metadata: {
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(owners ? { ownerReferences: owners } : {}),
    },
  };
}

interface CgroupEntry {
  path: string | undefined;
  podUid: string | undefined;
}

/**
 * `bamel agent`: reads the per-cgroup counters every poll interval, turns them into per-pod
 * rates (cgroup id → cgroup path → pod UID → the Pod from a watch of this node's pods), serves
 * them as Prometheus metrics, and publishes them in the node's TrafficReport when they
 * changed noticeably, at most every report interval.
 */
export class TrafficAgent {
  private readonly rates = new CgroupRates();
  private readonly cgroups = new Map<bigint, CgroupEntry>();
  private readonly pods: ResourceInformer<V1Pod> | undefined;
  private readonly writer: TrafficReportWriter | undefined;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private lastWritten: PodTraffic[] | undefined;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private latest: PodTraffic[] = [];
  private readonly labelsOf = new Map<string, { namespace: string; pod: string }>();
  private byUid = new Map<string, V1Pod>();
  private lastSweepAt = Number.NEGATIVE_INFINITY;
  private lastOmitted = 0;

  constructor(private readonly opts: TrafficAgentOptions) {
    this.now = opts.now ?? Date.now;
    if (opts.kc) {
      this.pods = new ResourceInformer<V1Pod>({
        kc: opts.kc,
        path: '/api/v1/pods',
        fieldSelector: `spec.nodeName=${opts.nodeName}`,
        logger: opts.logger,
        resyncMs: 300_000,
        // Small pages: a page's JSON is parsed whole before the transform slims it, and the
        // heap V8 grows for that peak it keeps. 100 Pods are ~0.5 MB.
        pageSize: 100,
        transform: podIdentityOnly,
      });
      this.pods.on('delete', (p) => this.dropPodSeries(p.metadata?.uid ?? ''));
      this.writer = new TrafficReportWriter(opts.kc, opts.nodeName);
    }
  }

  /** Takes the baseline and starts polling. */
  async start(): Promise<void> {
    this.pods?.start();
    await this.poll();
    this.timer = setInterval(() => {
      if (this.polling) return;
      this.polling = this.poll()
        .catch((err: unknown) => this.opts.logger.error({ err: errorMessage(err) }, 'poll failed'))
        .finally(() => (this.polling = undefined));
    }, this.opts.pollIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
    await this.pods?.stop();
  }

  /** The per-pod rates of the last poll. */
  current(): PodTraffic[] {
    return this.latest;
  }

  /** One poll: read, resolve, rate, metrics, and maybe a report. */
  async poll(): Promise<void> {
    const { metrics, logger } = this.opts;
    const end = metrics.pollDuration.startTimer();
    const now = this.now();
    const totals = this.opts.source.read();
    this.resolve(totals);
    this.sweep(totals, now);
    if (this.pods) this.byUid = new Map(this.pods.list().map((p) => [p.metadata?.uid ?? '', p]));
    const { deltas, seconds } = this.rates.update(totals, now);
    const pods = podRates(deltas, seconds, (id) => this.cgroups.get(id)?.podUid, (uid) => this.identity(uid));
    this.updateMetrics(deltas, pods, totals.size);
    end();
    if (seconds > 0) this.latest = pods;
    if (seconds > 0 && this.writer) await this.maybeReport(pods, now).catch((err: unknown) => {
      metrics.reports.inc({ result: 'failed' });
      logger.warn({ err: errorMessage(err) }, 'writing the TrafficReport failed; retrying at the next poll');
    });
  }

  /** Cgroup ids → paths: a walk of the hierarchy when an id is new (ids are never reused). */
  private resolve(totals: ReadonlyMap<bigint, TrafficCounters>): void {
    for (const id of this.cgroups.keys()) if (!totals.has(id)) this.cgroups.delete(id);
    if (![...totals.keys()].some((id) => !this.cgroups.has(id))) return;
    const paths = walkCgroups(this.opts.cgroupRoot);
    const gone: bigint[] = [];
    for (const id of totals.keys()) {
      if (this.cgroups.has(id)) continue;
      const path = paths.get(id);
      if (path === undefined) gone.push(id);
      this.cgroups.set(id, { path, podUid: path === undefined ? undefined : podUidFromCgroupPath(path) });
    }
    // Counted, then removed before we looked: nothing will ever read them again.
    if (gone.length > 0) this.opts.source.forget(gone);
  }

  /**
   * Without the kernel's cgroup_rmdir hook nothing removes a cgroup's counters when the cgroup
   * goes: every sweep interval, the counters of cgroups no longer in the hierarchy are dropped
   * (they were read by this poll; the next one no longer sees them, which reads as "gone").
   */
  private sweep(totals: ReadonlyMap<bigint, TrafficCounters>, now: number): void {
    if (this.opts.source.removesCgroupCounters !== false) return;
    if (now - this.lastSweepAt < (this.opts.sweepIntervalMs ?? 60_000)) return;
    this.lastSweepAt = now;
    const paths = walkCgroups(this.opts.cgroupRoot);
    const gone = [...totals.keys()].filter((id) => !paths.has(id) && this.cgroups.get(id)?.path !== undefined);
    if (gone.length > 0) this.opts.source.forget(gone);
  }

  /** The cgroup path of an id, as last resolved (for --standalone output and tests). */
  pathOf(id: bigint): string | undefined {
    return this.cgroups.get(id)?.path;
  }

  private identity(uid: string): PodIdentity | undefined {
    const pod = this.byUid.get(uid);
    if (!pod?.metadata?.name || !pod.metadata.namespace) return undefined;
    const owner = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
    return { namespace: pod.metadata.namespace, name: pod.metadata.name, ...(owner ? { ownerKind: owner.kind, ownerName: owner.name } : {}) };
  }

  private updateMetrics(deltas: ReadonlyMap<bigint, TrafficCounters>, pods: PodTraffic[], cgroups: number): void {
    const { metrics } = this.opts;
    metrics.cgroups.set(cgroups);
    const overflow = this.opts.source.overflow();
    metrics.overflow.set({ kind: 'packets_counters_full' }, overflow.countersFull);
    metrics.overflow.set({ kind: 'h2_flows_resync' }, overflow.h2Resync);
    for (const [id, d] of deltas) {
      const uid = this.cgroups.get(id)?.podUid;
      if (!uid) continue;
      const labels = this.labels(uid);
      if (d.httpRequests > 0) metrics.requests.inc({ ...labels, protocol: 'http1' }, d.httpRequests);
      if (d.http2Requests > 0) metrics.requests.inc({ ...labels, protocol: 'http2' }, d.http2Requests);
      if (d.rxBytes > 0) metrics.bytes.inc({ ...labels, direction: 'rx' }, d.rxBytes);
      if (d.txBytes > 0) metrics.bytes.inc({ ...labels, direction: 'tx' }, d.txBytes);
      if (d.rxPackets > 0) metrics.packets.inc({ ...labels, direction: 'rx' }, d.rxPackets);
      if (d.txPackets > 0) metrics.packets.inc({ ...labels, direction: 'tx' }, d.txPackets);
      if (d.syns > 0) metrics.syns.inc(labels, d.syns);
      if (d.retransmits > 0) metrics.retransmits.inc(labels, d.retransmits);
    }
    for (const p of pods) {
      const labels = this.labels(p.uid);
      metrics.requestRate.set(labels, p.requestsPerSecond);
      metrics.byteRate.set(labels, p.bytesPerSecond);
    }
  }

  private labels(uid: string): { namespace: string; pod: string } {
    const who = this.identity(uid);
    const labels = who ? { namespace: who.namespace, pod: who.name } : { namespace: '', pod: uid };
    const known = this.labelsOf.get(uid);
    if (known && (known.namespace !== labels.namespace || known.pod !== labels.pod)) this.dropPodSeries(uid);
    this.labelsOf.set(uid, labels);
    return labels;
  }

  private dropPodSeries(uid: string): void {
    const labels = this.labelsOf.get(uid);
    if (!labels) return;
    const { metrics } = this.opts;
    for (const protocol of ['http1', 'http2']) metrics.requests.remove({ ...labels, protocol });
    for (const direction of ['rx', 'tx']) {
      metrics.bytes.remove({ ...labels, direction });
      metrics.packets.remove({ ...labels, direction });
    }
    metrics.syns.remove(labels);
    metrics.retransmits.remove(labels);
    metrics.requestRate.remove(labels);
    metrics.byteRate.remove(labels);
    this.labelsOf.delete(uid);
  }

  private async maybeReport(pods: PodTraffic[], now: number): Promise<void> {
    if (now - this.lastWriteAt < this.opts.reportIntervalMs) return;
    const maxAge = Math.max(this.opts.reportMaxAgeMs ?? 300_000, this.opts.reportIntervalMs);
    const reason = significantChange(this.lastWritten, pods, this.opts.change) ?? (now - this.lastWriteAt >= maxAge ? 'refresh' : undefined);
    if (!reason) return;
    const { pods: written, omitted } = capReportPods(pods, this.opts.reportLimits ?? REPORT_LIMITS);
    await this.write(written, omitted, now);
    this.lastWritten = pods;
    this.lastWriteAt = now;
    this.opts.metrics.reports.inc({ result: 'written' });
    this.opts.metrics.omittedPods.set(omitted);
    this.opts.logger.info({ reason, pods: written.length, ...(omitted > 0 ? { omittedPods: omitted } : {}) }, 'TrafficReport written');
    if (omitted > 0 && this.lastOmitted === 0) {
      const { maxPods, maxBytes } = this.opts.reportLimits ?? REPORT_LIMITS;
      this.opts.logger.warn(
        { pods: pods.length, written: written.length, omittedPods: omitted, maxPods, maxBytes },
        `TrafficReport capped: ${omitted} of ${pods.length} pods with traffic left out (the ones with the fewest requests, then bytes, per second), to keep the report within ${maxPods} pods and ${maxBytes} bytes; spec.omittedPods says how many`,
      );
    } else if (omitted === 0 && this.lastOmitted > 0) {
      this.opts.logger.info({ pods: written.length }, 'TrafficReport no longer capped: every pod with traffic is in it');
    }
    this.lastOmitted = omitted;
  }

  private async write(pods: PodTraffic[], omittedPods: number, now: number): Promise<void> {
    await this.writer?.write({ pods, omittedPods, observedAt: now, intervalSeconds: this.opts.pollIntervalMs / 1000 });
  }
}
