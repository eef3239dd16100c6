import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, podRequests, type ReadonlyResourceList } from '../scheduling/index.js';
import { NodeTable } from './node-table.js';
import { NodeUsage } from './node-usage.js';
import { requestNodes, type ExtenderArgs, type ExtenderFilterResult, type HostPriority, type RequestNodes } from './protocol.js';
import { baseAmounts, baseFullness, fullness, score, scoredResources } from './score.js';
import { isDaemonSetPod, refusal, Standings, type Refusal, type WatchedCache } from './standings.js';

/** The manager's caches the extender reads (Manager.stores): no API call per request. */
export interface ExtenderSources {
  autoscalers: WatchedCache<BareMetalAutoscaler>;
  nodes: WatchedCache<V1Node>;
  pods: WatchedCache<V1Pod>;
}

/** A request the extender cannot answer; statusCode 400 (the request is wrong) or 503 (not ready). */
export class ExtenderRequestError extends Error {
  constructor(
    readonly statusCode: 400 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ExtenderRequestError';
  }
}

export interface FilterObserver {
  /** `count` Nodes refused for this reason in one request (1 when absent). */
  refused(kind: Refusal['kind'], count?: number): void;
}

/** What one request asks: its Nodes, in its mode, and what the answer needs of the pod. */
interface Prepared {
  req: RequestNodes;
  requests: ReadonlyResourceList;
  exempt: boolean;
}

/**
 * The filter and prioritize verbs over the manager's caches. Filter keeps new pods off
 * machines being drained, powered off, quarantined or chosen to be drained next (and off Nodes
 * with the draining taint); prioritize packs pods onto machines that stay on (score.ts).
 * With nodeCacheCapable (names in, names out) both read answers kept per Node (node-table.ts,
 * node-usage.ts) and the server sends them as JSON written here, without an object per Node.
 */
export class Extender {
  private readonly standings: Standings;
  private readonly table: NodeTable;
  private readonly usage: NodeUsage;
  private readonly allocatable = new WeakMap<V1Node, ReadonlyResourceList>();

  constructor(
    private readonly sources: ExtenderSources,
    private readonly observer?: FilterObserver,
  ) {
    this.standings = new Standings(sources.autoscalers);
    this.table = new NodeTable(sources.nodes, this.standings);
    this.usage = new NodeUsage(sources.pods);
  }

  /** The caches not filled yet (empty when the extender can answer). */
  notSynced(): string[] {
    return Object.entries(this.sources)
      .filter(([, c]) => !(c as WatchedCache<unknown>).hasSynced())
      .map(([name]) => name);
  }

  filter(args: ExtenderArgs): ExtenderFilterResult {
    const { req, exempt } = this.prepare(args);
    if (req.mode === 'names') {
      const { passed, failed } = this.filterNames(req.names, exempt);
      return { NodeNames: passed, FailedNodes: {}, FailedAndUnresolvableNodes: failed, Error: '' };
    }
    const failed: Record<string, string> = {};
    const counts = new Map<Refusal['kind'], number>();
    const items = req.nodes.filter((node) => {
      if (exempt) return true;
      const name = node.metadata?.name ?? '';
      const r = refusal(this.standings.get(name), node);
      if (r === undefined) return true;
      failed[name] = r.message;
      counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
      return false;
    });
    this.observe(counts);
    return { Nodes: { metadata: {}, items }, FailedNodes: {}, FailedAndUnresolvableNodes: failed, Error: '' };
  }

  /** filter() as the JSON kube-scheduler reads, the same bytes as JSON.stringify of it. */
  filterJson(args: ExtenderArgs): string {
    if ((args.NodeNames ?? null) === null) return JSON.stringify(this.filter(args));
    const { req, exempt } = this.prepare(args);
    if (req.mode !== 'names') throw new Error('unreachable: NodeNames is set');
    const { passed, failed } = this.filterNames(req.names, exempt);
    return `{"NodeNames":${JSON.stringify(passed)},"FailedNodes":{},"FailedAndUnresolvableNodes":${JSON.stringify(failed)},"Error":""}`;
  }

  prioritize(args: ExtenderArgs): HostPriority[] {
    const { req, requests, exempt } = this.prepare(args);
    const resources = scoredResources(requests);
    if (req.mode === 'names') {
      const scorer = this.scorer(requests, exempt);
      return req.names.map((name) => ({ Host: name, Score: scorer(name) }));
    }
    return req.nodes.map((node) => {
      const name = node.metadata?.name ?? '';
      const standing = this.standings.get(name);
      const refused = !exempt && refusal(standing, node) !== undefined;
      const full = fullness(this.allocatableOf(node), this.usage.usedOn(name), requests, resources);
      return { Host: name, Score: score(full, standing, refused) };
    });
  }

  /** prioritize() as the JSON kube-scheduler reads, the same bytes as JSON.stringify of it. */
  prioritizeJson(args: ExtenderArgs): string {
    if ((args.NodeNames ?? null) === null) return JSON.stringify(this.prioritize(args));
    const { req, requests, exempt } = this.prepare(args);
    if (req.mode !== 'names') throw new Error('unreachable: NodeNames is set');
    const scorer = this.scorer(requests, exempt);
    let out = '';
    for (const name of req.names) {
      out += `${out === '' ? '[' : ','}{"Host":${this.table.record(name)?.quoted ?? JSON.stringify(name)},"Score":${scorer(name)}}`;
    }
    return out === '' ? '[]' : `${out}]`;
  }

  private filterNames(names: readonly string[], exempt: boolean): { passed: string[]; failed: Record<string, string> } {
    const failed: Record<string, string> = {};
    if (exempt) return { passed: [...names], failed };
    const passed: string[] = [];
    const counts = new Map<Refusal['kind'], number>();
    for (const name of names) {
      const r = this.table.refusal(name);
      if (r === undefined) {
        passed.push(name);
        continue;
      }
      failed[name] = r.message;
      counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
    }
    this.observe(counts);
    return { passed, failed };
  }

  /**
   * The score of a Node by name for this request. A pod requesting only cpu and memory (most)
   * is scored over numbers kept per Node (score.ts baseFullness); any other, or an amount
   * too large to be an exact number, over the resource lists.
   */
  private scorer(requests: ReadonlyResourceList, exempt: boolean): (name: string) => number {
    const resources = scoredResources(requests);
    const base = resources.length === 2 ? baseAmounts(requests) : undefined;
    return (name) => {
      const refused = !exempt && this.table.refusal(name) !== undefined;
      const record = this.table.record(name);
      let full = 0;
      if (record !== undefined) {
        const fast = base === undefined ? undefined : baseFullness(record.base, this.usage.baseUsedOn(name), base);
        full = fast ?? fullness(record.allocatable, this.usage.usedOn(name), requests, resources);
      }
      return score(full, this.table.standing(name), refused);
    };
  }

  private observe(counts: ReadonlyMap<Refusal['kind'], number>): void {
    if (this.observer === undefined) return;
    for (const [kind, n] of counts) this.observer.refused(kind, n);
  }

  private prepare(args: ExtenderArgs): Prepared {
    // Three calls, no array per request; the names only when one is not synced.
    const { autoscalers, nodes, pods } = this.sources;
    if (!autoscalers.hasSynced() || !nodes.hasSynced() || !pods.hasSynced()) {
      throw new ExtenderRequestError(503, `bamel extender: caches not synced yet (${this.notSynced().join(', ')}); kube-scheduler goes on without it (ignorable)`);
    }
    const req = requestNodes(args);
    if ('error' in req) throw new ExtenderRequestError(400, req.error);
    // Only the pod's requests are read (fullness); compilePod's selectors and affinity are
    // kube-scheduler's own filters, not the extender's.
    const invalid: string[] = [];
    const requests = podRequests(args.Pod, { onInvalid: (detail) => invalid.push(`invalid pod: ${detail}`) });
    if (invalid.length > 0) throw new ExtenderRequestError(400, `body/Pod: ${invalid.join('; ')}`);
    return { req, requests, exempt: isDaemonSetPod(args.Pod) };
  }

  private allocatableOf(node: V1Node): ReadonlyResourceList {
    let a = this.allocatable.get(node);
    if (a === undefined) this.allocatable.set(node, (a = candidateFromNode(node).allocatable));
    return a;
  }
}
