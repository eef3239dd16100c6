import type * as k8s from '@kubernetes/client-node';
import { SCALE_DOWN_DISABLED_ANNOTATION, inventoriesOf, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import type { TrafficReport } from '../api/v1alpha1/trafficreport.js';
import type { Informer } from '../kube/namespaced-informers.js';
import { isNodeReady, unschedulableSince } from './observe.js';

/**
 * Watches: which informer events make which autoscalers look again, and how soon. New
 * unschedulable pods are batched (decided 250 ms after the last new one, at most 2 s after
 * the first), so a burst of pods gets one decision; other changes that concern every
 * autoscaler are debounced to one enqueue a second.
 */

/** A Secret as the metadata-only watch delivers it (PartialObjectMetadata): never its data. */
export interface SecretMetadata extends k8s.KubernetesObject {
  metadata?: k8s.V1ObjectMeta;
}

export interface WatchedInformers {
  autoscalers: Informer<BareMetalAutoscaler>;
  inventories: Informer<k8s.V1ConfigMap>;
  nodes: Informer<k8s.V1Node>;
  pods: Informer<k8s.V1Pod>;
  pdbs: Informer<k8s.V1PodDisruptionBudget>;
  secrets: Informer<SecretMetadata>;
  trafficReports: Informer<TrafficReport>;
}

export interface WatchSinks {
  /** Reconcile this autoscaler (soon, through the work queue). */
  enqueue(autoscaler: string): void;
  /** The pod cache changed (the reconciler's pod index is stale). */
  podsChanged(): void;
  /** A pod changed: its feasibility mark may change (leader only). */
  podChanged?(pod: k8s.V1Pod): void;
  /** The powered-off machines may be others: feasibility marks are looked at again. */
  machinesChanged?(): void;
  /** An autoscaler is gone: its traffic state goes too. */
  autoscalerDeleted?(name: string): void;
}

export const BATCH_IDLE_MS = 250;
export const BATCH_MAX_MS = 2000;
export const DEBOUNCE_MS = 1000;

export class Watches {
  private batchFirst: number | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly informers: WatchedInformers,
    private readonly sinks: WatchSinks,
  ) {
    this.wire();
  }

  enqueueAll(): void {
    for (const a of this.informers.autoscalers.list()) this.sinks.enqueue(a.metadata.name);
  }

  stop(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }

  private wire(): void {
    const { autoscalers, inventories, nodes, pods, pdbs, secrets, trafficReports } = this.informers;
    const sinks = this.sinks;
    autoscalers.on('add', (a) => sinks.enqueue(a.metadata.name));
    autoscalers.on('update', (a) => sinks.enqueue(a.metadata.name));
    autoscalers.on('delete', (a) => {
      sinks.autoscalerDeleted?.(a.metadata.name);
      sinks.enqueue(a.metadata.name);
    });
    // A new TrafficReport: the autoscalers that watch network pressure look again.
    const byTraffic = (): void => {
      for (const a of autoscalers.list()) {
        const n = a.spec.pressure.network;
        if (n.requestsPerSecondRate > 0 || n.bytesPerSecondRate > 0) sinks.enqueue(a.metadata.name);
      }
    };
    for (const e of ['add', 'update', 'delete'] as const) trafficReports.on(e, byTraffic);
    const byInventory = (cm: k8s.V1ConfigMap): void => {
      for (const a of autoscalers.list()) {
        if (inventoriesOf(a.spec).some((r) => r.namespace === cm.metadata?.namespace && r.name === cm.metadata?.name)) sinks.enqueue(a.metadata.name);
      }
    };
    for (const e of ['add', 'update', 'delete'] as const) {
      autoscalers.on(e, () => sinks.machinesChanged?.());
      inventories.on(e, () => sinks.machinesChanged?.());
    }
    for (const e of ['add', 'update', 'delete'] as const) inventories.on(e, byInventory);
    const nodeChanged = (n: k8s.V1Node, old?: k8s.V1Node): void => {
      if (
        old &&
        isNodeReady(old) === isNodeReady(n) &&
        JSON.stringify(old.spec?.taints) === JSON.stringify(n.spec?.taints) &&
        old.metadata?.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION] === n.metadata?.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION]
      ) {
        return;
      }
      this.enqueueAll();
    };
    nodes.on('add', (n) => nodeChanged(n));
    nodes.on('update', nodeChanged);
    nodes.on('delete', (n) => nodeChanged(n));
    const podChanged = (p: k8s.V1Pod, old?: k8s.V1Pod): void => {
      sinks.podChanged?.(p);
      sinks.podsChanged();
      const pendingNow = unschedulableSince(p) !== undefined;
      const pendingBefore = old ? unschedulableSince(old) !== undefined : false;
      if (pendingNow && !pendingBefore) this.batchPending();
      else if (
        pendingNow !== pendingBefore ||
        p.spec?.nodeName !== old?.spec?.nodeName ||
        p.status?.phase !== old?.status?.phase ||
        // Scale-down blockers (do-not-disrupt and the like) and pods starting to terminate.
        (p.spec?.nodeName !== undefined && (JSON.stringify(p.metadata?.annotations) !== JSON.stringify(old?.metadata?.annotations) || p.metadata?.deletionTimestamp !== old?.metadata?.deletionTimestamp))
      ) {
        this.debounceAll();
      }
    };
    // A PodDisruptionBudget changes what may be drained: the autoscalers look again.
    for (const e of ['add', 'update', 'delete'] as const) pdbs.on(e, () => this.debounceAll());
    // A credentials Secret in an inventory's namespace: the machines of that inventory may
    // have new BMC credentials (the driver is rebuilt on its next call).
    const bySecret = (sec: SecretMetadata): void => {
      for (const a of autoscalers.list()) if (inventoriesOf(a.spec).some((r) => r.namespace === sec.metadata?.namespace)) sinks.enqueue(a.metadata.name);
    };
    for (const e of ['add', 'update', 'delete'] as const) secrets.on(e, bySecret);
    pods.on('add', (p) => podChanged(p));
    pods.on('update', podChanged);
    pods.on('delete', (p) => {
      sinks.podsChanged();
      if (p.spec?.nodeName || unschedulableSince(p) !== undefined) this.debounceAll();
    });
  }

  /** A new unschedulable pod: decide once the burst is over (250 ms quiet), at most 2 s after the first. */
  private batchPending(): void {
    const now = Date.now();
    this.batchFirst ??= now;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    const due = Math.min(now + BATCH_IDLE_MS, this.batchFirst + BATCH_MAX_MS);
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined;
      this.batchFirst = undefined;
      this.enqueueAll();
    }, Math.max(0, due - now));
  }

  private debounceAll(): void {
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.enqueueAll();
    }, DEBOUNCE_MS);
  }
}
