import type * as k8s from '@kubernetes/client-node';

/**
 * The in-memory cluster of `bamel simulate`: what the API server and the informers would
 * hold (Nodes, Pods, the autoscaler, the inventory ConfigMap), as caches that the real
 * Reconciler reads through its Store interface and the real extender through its
 * WatchedCache interface (add/update/delete events included). Nothing here decides
 * anything: objects change only through the simulated scheduler, kubelets and BMCs, and
 * the controller's own writes.
 */

type Handler<T> = (obj: T, old?: T) => void;

export class Cache<T> {
  private readonly items = new Map<string, T>();
  private readonly handlers: Record<'add' | 'update' | 'delete', Handler<T>[]> = { add: [], update: [], delete: [] };
  private listed: T[] | undefined;

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  list(): T[] {
    return (this.listed ??= [...this.items.values()]);
  }

  get size(): number {
    return this.items.size;
  }

  hasSynced(): boolean {
    return true;
  }

  on(event: 'add' | 'delete', handler: (obj: T) => void): void;
  on(event: 'update', handler: (obj: T, old: T) => void): void;
  on(event: 'add' | 'update' | 'delete', handler: ((obj: T) => void) | ((obj: T, old: T) => void)): void {
    this.handlers[event].push(handler as Handler<T>);
  }

  /** Adds or replaces (an update with the old object). */
  put(key: string, obj: T): void {
    const old = this.items.get(key);
    this.items.set(key, obj);
    this.listed = undefined;
    if (old === undefined) for (const h of this.handlers.add) h(obj);
    else for (const h of this.handlers.update) h(obj, old);
  }

  delete(key: string): T | undefined {
    const old = this.items.get(key);
    if (old === undefined) return undefined;
    this.items.delete(key);
    this.listed = undefined;
    for (const h of this.handlers.delete) h(old);
    return old;
  }
}

export const NAMESPACE = 'workload';

export function podKey(pod: k8s.V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A pod as a ReplicaSet or Job would create it from a trace row. */
export function newPod(name: string, uid: string, requests: { cpu: string; memory: string }, extra: { tolerations?: k8s.V1Toleration[]; nodeSelector?: Record<string, string> }, now: number): k8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, uid, resourceVersion: '1', creationTimestamp: new Date(now), ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'trace', uid: 'trace', controller: true }] },
    spec: {
      containers: [{ name: 'main', image: 'trace', resources: { requests: { cpu: requests.cpu, memory: requests.memory } } }],
      ...(extra.tolerations ? { tolerations: extra.tolerations } : {}),
      ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
    },
    status: { phase: 'Pending' },
  };
}

/** The scheduler found no Node: PodScheduled=False, reason Unschedulable (kept from the first failure). */
export function markedUnschedulable(pod: k8s.V1Pod, message: string, now: number): k8s.V1Pod | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (c && c.status === 'False' && c.reason === 'Unschedulable') return undefined;
  return {
    ...pod,
    metadata: { ...pod.metadata, resourceVersion: String(Number(pod.metadata?.resourceVersion ?? '1') + 1) },
    status: { ...pod.status, conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date(now) }] },
  };
}

/** Bound to a Node and running there (the kubelet started it at once). */
export function boundPod(pod: k8s.V1Pod, node: string, now: number): k8s.V1Pod {
  return {
    ...pod,
    metadata: { ...pod.metadata, resourceVersion: String(Number(pod.metadata?.resourceVersion ?? '1') + 1) },
    spec: { ...pod.spec, containers: pod.spec?.containers ?? [], nodeName: node },
    status: { phase: 'Running', startTime: new Date(now), conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date(now) }] },
  };
}

/** A Node as the kubelet registers it once the machine has booted: Ready. */
export function readyNode(node: k8s.V1Node, now: number, uid: string): k8s.V1Node {
  return {
    ...node,
    metadata: { ...node.metadata, uid, resourceVersion: '1', creationTimestamp: new Date(now) },
    status: {
      ...node.status,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastTransitionTime: new Date(now), lastHeartbeatTime: new Date(now) }],
    },
  };
}

export { iso };
