import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { compilePod, isTerminated, podRequests, type CompiledPod, type ResourceList } from '../scheduling/index.js';
import type { PendingPod } from './decide.js';
import type { ResourceVector } from './scoring.js';

/** Facts about pods and Nodes, read from the informers' caches, shared by every reconcile. */

export function isNodeReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export { isTerminated };

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

/** What the compiled form of a pending pod is made of, the same for every replica of a workload. */
export interface CompiledPending {
  pod: CompiledPod;
  requests: ResourceList;
  /**
   * Equal for two pods exactly when the feasibility engine treats them alike on every
   * machine: the same requests, tolerations, node selector, required node affinity, nodeName
   * and problems. The decision asks about one pod per signature (PendingPod.equivalenceClass).
   */
  signature: string;
  /** What the scale-up decision is asked about the pod (one object while the pod stays). */
  pending: PendingPod;
}

/** Built from the compiled pod, so that only what fits() reads tells two pods apart. */
export function compiledSignature(pod: V1Pod, compiled: CompiledPod): string {
  return JSON.stringify([
    compiled.nodeName ?? null,
    compiled.invalid.map((r) => r.message),
    compiled.tolerations.map((t) => [t.key ?? null, t.operator ?? null, t.value ?? null, t.effect ?? null]),
    compiled.nodeSelector.keys,
    compiled.nodeSelector.values,
    // The compiled affinity holds Sets; the selector it was compiled from says the same.
    compiled.affinity === undefined ? null : (pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? null),
    [...compiled.requests].map(([r, v]) => [r, String(v)]),
  ]);
}

/** Pods by Node name (not terminated), rebuilt from the pod cache when it changes. */
export class PodIndex {
  private byNode = new Map<string, V1Pod[]>();
  private pending: V1Pod[] = [];
  private readonly compiled = new Map<string, CompiledPending & { rv: string }>();
  /** One compiled form per signature, shared by the pods that have it (pruned with them). */
  private bySignature = new Map<string, { signature: string; pod: CompiledPod; requests: ResourceList; vector: ResourceVector }>();
  /**
   * Running pods' requests, kept while their resourceVersion stays, as compiled pending pods
   * are: the pressure statistics ask for every running pod's requests at every reconcile.
   */
  private readonly running = new Map<string, { rv: string; requests: ResourceList }>();

  rebuild(pods: Iterable<V1Pod>): void {
    const byNode = new Map<string, V1Pod[]>();
    const pending: V1Pod[] = [];
    const seen = new Set<string>();
    const seenRunning = new Set<string>();
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (node) {
        if (isTerminated(pod)) continue;
        seenRunning.add(pod.metadata?.uid ?? '');
        let list = byNode.get(node);
        if (!list) byNode.set(node, (list = []));
        list.push(pod);
      } else if (unschedulableSince(pod) !== undefined) {
        pending.push(pod);
        seen.add(pod.metadata?.uid ?? '');
      }
    }
    for (const uid of this.compiled.keys()) if (!seen.has(uid)) this.compiled.delete(uid);
    if (this.bySignature.size > 2 * this.compiled.size + 1000) {
      const live = new Set([...this.compiled.values()].map((c) => c.signature));
      this.bySignature = new Map([...this.bySignature].filter(([sig]) => live.has(sig)));
    }
    for (const uid of this.running.keys()) if (!seenRunning.has(uid)) this.running.delete(uid);
    // A Node whose pods are the same objects as before keeps its list: what is computed
    // from a list (requests, utilisation, room) is kept with it (sameList).
    for (const [node, list] of byNode) {
      const before = this.byNode.get(node);
      if (before !== undefined && before.length === list.length && before.every((p, i) => p === list[i])) byNode.set(node, before);
    }
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
  compile(pod: V1Pod): CompiledPending {
    const uid = pod.metadata?.uid ?? `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const rv = pod.metadata?.resourceVersion ?? '';
    const hit = this.compiled.get(uid);
    if (hit && hit.rv === rv) return hit;
    const compiled = compilePod(pod);
    const signature = compiledSignature(pod, compiled);
    // Replicas share one compiled form: the signature says everything fits() reads.
    let shared = this.bySignature.get(signature);
    if (!shared) {
      const requests = podRequests(pod);
      this.bySignature.set(signature, (shared = { signature, pod: compiled, requests, vector: toVector(requests) }));
    }
    const since = unschedulableSince(pod);
    const pending: PendingPod = {
      key: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
      uid: pod.metadata?.uid ?? '',
      requests: shared.vector,
      // Replicas of a workload share a signature: the decision asks about feasibility once for all.
      equivalenceClass: shared.signature,
      ...(since !== undefined ? { unschedulableSince: since } : {}),
    };
    const entry = { rv, pod: shared.pod, requests: shared.requests, signature: shared.signature, pending };
    this.compiled.set(uid, entry);
    return entry;
  }

  private runningRequests(pod: V1Pod): ResourceList {
    const uid = pod.metadata?.uid;
    const rv = pod.metadata?.resourceVersion;
    if (uid === undefined || rv === undefined) return podRequests(pod);
    const hit = this.running.get(uid);
    if (hit && hit.rv === rv) return hit.requests;
    const requests = podRequests(pod);
    this.running.set(uid, { rv, requests });
    return requests;
  }

  /** What the pods on a Node request, DaemonSet and mirror pods included (they use the room). */
  requestedOn(node: string): ResourceList {
    const pods = this.podsOn(node);
    const hit = this.requested.get(pods);
    if (hit !== undefined) return new Map(hit);
    const total: ResourceList = new Map();
    for (const pod of pods) {
      for (const [r, v] of this.runningRequests(pod)) total.set(r, (total.get(r) ?? 0n) + v);
    }
    this.requested.set(pods, total);
    return new Map(total);
  }

  /** requestedOn by pod list: a list is kept while its Node's pods stay the same objects. */
  private readonly requested = new WeakMap<V1Pod[], ResourceList>();
}
