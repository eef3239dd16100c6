import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { compilePod, podRequests, type CompiledPod, type ResourceList } from '../scheduling/index.js';
import type { ResourceVector } from './scoring.js';

/** Facts about pods and Nodes, read from the informers' caches, shared by every reconcile. */

export function isNodeReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

const TERMINATED = new Set(['Succeeded', 'Failed']);

export function isTerminated(pod: V1Pod): boolean {
  return TERMINATED.has(pod.status?.phase ?? '');
}

/** A pod the scheduler could not place: PodScheduled=False with reason Unschedulable. */
export function unschedulableSince(pod: V1Pod): number | undefined {
  if (pod.spec?.nodeName || pod.metadata?.deletionTimestamp || isTerminated(pod)) return undefined;
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (!c || c.status !== 'False' || c.reason !== 'Unschedulable') return undefined;
  const t = c.lastTransitionTime ? new Date(c.lastTransitionTime).getTime() : Number.NaN;
  return Number.isNaN(t) ? Date.now() : t;
}

export function isDaemonSetPod(pod: V1Pod): boolean {
  return pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.controller === true) ?? false;
}

export function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined;
}

export function toVector(list: ReadonlyMap<string, bigint>): ResourceVector {
  return Object.fromEntries(list);
}

/** Pods by Node name (not terminated), rebuilt from the pod cache when it changes. */
export class PodIndex {
  private byNode = new Map<string, V1Pod[]>();
  private pending: V1Pod[] = [];
  private readonly compiled = new Map<string, { rv: string; pod: CompiledPod; requests: ResourceList }>();

  rebuild(pods: Iterable<V1Pod>): void {
    const byNode = new Map<string, V1Pod[]>();
    const pending: V1Pod[] = [];
    const seen = new Set<string>();
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (node) {
        if (isTerminated(pod)) continue;
        let list = byNode.get(node);
        if (!list) byNode.set(node, (list = []));
        list.push(pod);
      } else if (unschedulableSince(pod) !== undefined) {
        pending.push(pod);
        seen.add(pod.metadata?.uid ?? '');
      }
    }
    for (const uid of this.compiled.keys()) if (!seen.has(uid)) this.compiled.delete(uid);
    this.byNode = byNode;
    this.pending = pending;
  }

  podsOn(node: string): V1Pod[] {
    return this.byNode.get(node) ?? [];
  }

  unschedulable(): V1Pod[] {
    return this.pending;
  }

  /** The compiled form of a pending pod, kept while its resourceVersion stays. */
  compile(pod: V1Pod): { pod: CompiledPod; requests: ResourceList } {
    const uid = pod.metadata?.uid ?? `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const rv = pod.metadata?.resourceVersion ?? '';
    const hit = this.compiled.get(uid);
    if (hit && hit.rv === rv) return hit;
    const entry = { rv, pod: compilePod(pod), requests: podRequests(pod) };
    this.compiled.set(uid, entry);
    return entry;
  }

  /** What the pods on a Node request, DaemonSet and mirror pods included (they use the room). */
  requestedOn(node: string): ResourceList {
    const total: ResourceList = new Map();
    for (const pod of this.podsOn(node)) {
      for (const [r, v] of podRequests(pod)) total.set(r, (total.get(r) ?? 0n) + v);
    }
    return total;
  }
}
