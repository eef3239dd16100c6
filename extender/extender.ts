import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, compilePod, type CompiledPod, type ReadonlyResourceList } from '../scheduling/index.js';
import { NodeUsage } from './node-usage.js';
import { requestNodes, type ExtenderArgs, type ExtenderFilterResult, type HostPriority, type RequestNodes } from './protocol.js';
import { fullness, score } from './score.js';
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
  refused(kind: Refusal['kind']): void;
}

/**
 * The filter and prioritize verbs over the manager's caches. Filter keeps new pods off
 * machines being drained, powered off, quarantined or chosen to be drained next (and off Nodes
 * with the draining taint); prioritize packs pods onto machines that stay on (score.ts).
 */
export class Extender {
  private readonly standings: Standings;
  private readonly usage: NodeUsage;
  private readonly allocatable = new WeakMap<V1Node, ReadonlyResourceList>();

  constructor(
    private readonly sources: ExtenderSources,
    private readonly observer?: FilterObserver,
  ) {
    this.standings = new Standings(sources.autoscalers);
    this.usage = new NodeUsage(sources.pods);
  }

  /** The caches not filled yet (empty when the extender can answer). */
  notSynced(): string[] {
    return Object.entries(this.sources)
      .filter(([, c]) => !(c as WatchedCache<unknown>).hasSynced())
      .map(([name]) => name);
  }

  filter(args: ExtenderArgs): ExtenderFilterResult {
    const { req } = this.prepare(args);
    const exempt = isDaemonSetPod(args.Pod);
    const failed: Record<string, string> = {};
    const passes = (name: string, node: V1Node | undefined): boolean => {
      if (exempt) return true;
      const r = refusal(this.standings.get(name), node);
      if (r === undefined) return true;
      failed[name] = r.message;
      this.observer?.refused(r.kind);
      return false;
    };
    if (req.mode === 'names') {
      const names = req.names.filter((name) => passes(name, this.sources.nodes.get(name)));
      return { NodeNames: names, FailedNodes: {}, FailedAndUnresolvableNodes: failed, Error: '' };
    }
    const items = req.nodes.filter((node) => passes(node.metadata?.name ?? '', node));
    return { Nodes: { metadata: {}, items }, FailedNodes: {}, FailedAndUnresolvableNodes: failed, Error: '' };
  }

  prioritize(args: ExtenderArgs): HostPriority[] {
    const { req, pod } = this.prepare(args);
    const requests = pod.requests;
    const exempt = isDaemonSetPod(args.Pod);
    const rate = (name: string, node: V1Node | undefined): HostPriority => {
      const standing = this.standings.get(name);
      const refused = !exempt && refusal(standing, node) !== undefined;
      const full = node === undefined ? 0 : fullness(this.allocatableOf(node), this.usage.usedOn(name), requests);
      return { Host: name, Score: score(full, standing, refused) };
    };
    if (req.mode === 'names') return req.names.map((name) => rate(name, this.sources.nodes.get(name)));
    return req.nodes.map((node) => rate(node.metadata?.name ?? '', node));
  }

  private prepare(args: ExtenderArgs): { req: RequestNodes; pod: CompiledPod } {
    const notSynced = this.notSynced();
    if (notSynced.length > 0) throw new ExtenderRequestError(503, `bamel extender: caches not synced yet (${notSynced.join(', ')}); kube-scheduler goes on without it (ignorable)`);
    const req = requestNodes(args);
    if ('error' in req) throw new ExtenderRequestError(400, req.error);
    const pod = compilePod(args.Pod);
    if (pod.invalid.length > 0) throw new ExtenderRequestError(400, `body/Pod: ${pod.invalid.map((r) => r.message).join('; ')}`);
    return { req, pod };
  }

  private allocatableOf(node: V1Node): ReadonlyResourceList {
    let a = this.allocatable.get(node);
    if (a === undefined) this.allocatable.set(node, (a = candidateFromNode(node).allocatable));
    return a;
  }
}
