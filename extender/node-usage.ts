import type { V1Pod } from '@kubernetes/client-node';
import { isTerminated, podRequests, type ReadonlyResourceList, type ResourceList } from '../scheduling/index.js';
import { baseAmounts, type BaseAmounts } from './score.js';
import type { WatchedCache } from './standings.js';

interface Contribution {
  node: string;
  requests: ReadonlyResourceList;
}

/**
 * What the pods bound to each Node request, kept up to date from the pod informer's events
 * (one pod's requests are added or taken away as it changes), so that scoring a request
 * against thousands of Nodes reads a sum per Node instead of walking every pod. Counted as
 * kube-scheduler counts a Node's usage (scheduling/ podRequests with the resources a resize
 * holds); terminated pods hold nothing.
 */
export class NodeUsage {
  private readonly byPod = new Map<string, Contribution>();
  private readonly byNode = new Map<string, ResourceList>();
  /** cpu and memory of byNode as numbers (score.ts BaseAmounts), redone when a sum changes. */
  private readonly baseByNode = new Map<string, BaseAmounts>();

  constructor(pods?: WatchedCache<V1Pod>) {
    if (pods === undefined) return;
    pods.on('add', (p) => this.set(p));
    pods.on('update', (p) => this.set(p));
    pods.on('delete', (p) => this.remove(keyOf(p)));
    for (const p of pods.list()) this.set(p);
  }

  /** Records the pod's current state (bound or not, terminated or not). */
  set(pod: V1Pod): void {
    const key = keyOf(pod);
    const node = pod.spec?.nodeName;
    if (!node || isTerminated(pod)) {
      this.remove(key);
      return;
    }
    const prior = this.byPod.get(key);
    const requests = podRequests(pod, { useStatusResources: true });
    if (prior !== undefined) this.subtract(prior);
    const c = { node, requests };
    this.byPod.set(key, c);
    let sum = this.byNode.get(node);
    if (sum === undefined) this.byNode.set(node, (sum = new Map<string, bigint>()));
    for (const [r, v] of requests) sum.set(r, (sum.get(r) ?? 0n) + v);
    this.baseByNode.set(node, baseAmounts(sum));
  }

  remove(key: string): void {
    const prior = this.byPod.get(key);
    if (prior === undefined) return;
    this.byPod.delete(key);
    this.subtract(prior);
  }

  /** The requests of the pods bound to the Node (empty when none). */
  usedOn(node: string): ReadonlyResourceList {
    return this.byNode.get(node) ?? EMPTY;
  }

  /** usedOn()'s cpu and memory as numbers (NaN where not exact). */
  baseUsedOn(node: string): BaseAmounts {
    return this.baseByNode.get(node) ?? NOTHING;
  }

  private subtract(c: Contribution): void {
    const sum = this.byNode.get(c.node);
    if (sum === undefined) return;
    for (const [r, v] of c.requests) sum.set(r, (sum.get(r) ?? 0n) - v);
    if ([...sum.values()].every((v) => v === 0n)) {
      this.byNode.delete(c.node);
      this.baseByNode.delete(c.node);
    } else this.baseByNode.set(c.node, baseAmounts(sum));
  }
}

const EMPTY: ReadonlyResourceList = new Map();
const NOTHING: BaseAmounts = { cpu: 0, memory: 0 };

function keyOf(pod: V1Pod): string {
  return pod.metadata?.uid ?? `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}
