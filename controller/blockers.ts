import type { V1Node, V1Pod, V1PodDisruptionBudget } from '@kubernetes/client-node';
import {
  CA_SAFE_TO_EVICT_ANNOTATION,
  DO_NOT_DISRUPT_ANNOTATION,
  KARPENTER_DO_NOT_DISRUPT_ANNOTATION,
  SCALE_DOWN_DISABLED_ANNOTATION,
} from '../api/v1alpha1/baremetalautoscaler.js';
import { isDaemonSetPod, isMirrorPod, isTerminated } from './observe.js';
import { labelSelectorMatches } from '../api/selector.js';

/**
 * Why a machine may not be scaled down, from its Node and the pods on it, in words. Pure:
 * the reconciler feeds it the informers' caches. The rules follow what operators know from
 * Cluster Autoscaler and Karpenter:
 *
 * - `autoscaling.bamel.io/do-not-disrupt: "true"`, `karpenter.sh/do-not-disrupt: "true"` and
 *   `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"` on a pod block, always.
 * - A pod without a controller (nothing recreates it), a pod with local storage (an emptyDir
 *   not in memory, a hostPath), a kube-system pod that is not a DaemonSet pod and has no
 *   PodDisruptionBudget, and a running Job pod (batch work is waited for, not killed) block
 *   unless the pod says `cluster-autoscaler.kubernetes.io/safe-to-evict: "true"`.
 * - A pod whose PodDisruptionBudget allows no disruption now blocks (the Eviction API would
 *   refuse it anyway; draining would only hold the machine tainted until the timeout).
 * - A Node annotated `autoscaling.bamel.io/scale-down-disabled: "true"` is never scaled down.
 *
 * DaemonSet pods, mirror (static) pods, finished pods and pods already being deleted never
 * block and are never evicted.
 */

export interface Blocker {
  /** CamelCase kind, for metrics and tests. */
  kind:
    | 'DoNotDisrupt'
    | 'NoController'
    | 'LocalStorage'
    | 'KubeSystem'
    | 'RunningJob'
    | 'DisruptionBudget'
    | 'ScaleDownDisabled'
    | 'FitsNowhere'
    | 'Paused'
    | 'Busy'
    | 'BreakEven'
    | 'WearLimit';
  /** What a user reads in status and events. */
  message: string;
}

/** namespace/name, as messages name a pod. */
export function podName(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/** Pods a drain moves: not DaemonSet, not mirror, not finished, not already being deleted. */
export function isMovable(pod: V1Pod): boolean {
  return !isDaemonSetPod(pod) && !isMirrorPod(pod) && !isTerminated(pod) && pod.metadata?.deletionTimestamp === undefined;
}

/** Pods that must be gone before the machine may be powered off (deleting ones included: their grace period runs). */
export function mustLeave(pod: V1Pod): boolean {
  return !isDaemonSetPod(pod) && !isMirrorPod(pod) && !isTerminated(pod);
}

export function nodeBlocker(node: V1Node | undefined): Blocker | undefined {
  if (node?.metadata?.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION] === 'true') {
    return { kind: 'ScaleDownDisabled', message: `the Node is annotated ${SCALE_DOWN_DISABLED_ANNOTATION}: "true"` };
  }
  return undefined;
}

/** The blockers a pod's annotations set, which hold even while a drain runs. */
export function annotationBlocker(pod: V1Pod): Blocker | undefined {
  const a = pod.metadata?.annotations ?? {};
  const ref = podName(pod);
  if (a[DO_NOT_DISRUPT_ANNOTATION] === 'true') return { kind: 'DoNotDisrupt', message: `pod ${ref} is annotated ${DO_NOT_DISRUPT_ANNOTATION}: "true"` };
  if (a[KARPENTER_DO_NOT_DISRUPT_ANNOTATION] === 'true') return { kind: 'DoNotDisrupt', message: `pod ${ref} is annotated ${KARPENTER_DO_NOT_DISRUPT_ANNOTATION}: "true"` };
  if (a[CA_SAFE_TO_EVICT_ANNOTATION] === 'false') return { kind: 'DoNotDisrupt', message: `pod ${ref} is annotated ${CA_SAFE_TO_EVICT_ANNOTATION}: "false"` };
  return undefined;
}

export interface PodBlockerOptions {
  /** The PodDisruptionBudgets of the pod's namespace. */
  pdbs: readonly V1PodDisruptionBudget[];
  /** Skip the PodDisruptionBudget check (a drain for deletion leaves it to the Eviction API). */
  ignoreBudgets?: boolean;
}

/** Every reason this pod keeps its machine on; empty when it may be evicted. */
export function podBlockers(pod: V1Pod, opts: PodBlockerOptions): Blocker[] {
  if (!isMovable(pod)) return [];
  const out: Blocker[] = [];
  const ref = podName(pod);
  const annotated = annotationBlocker(pod);
  if (annotated) out.push(annotated);
  const safe = pod.metadata?.annotations?.[CA_SAFE_TO_EVICT_ANNOTATION] === 'true';
  const budgets = opts.pdbs.filter((b) => budgetCovers(b, pod));
  if (!safe) {
    const controller = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
    if (!controller) out.push({ kind: 'NoController', message: `pod ${ref} has no controller: evicted, it would not be recreated anywhere` });
    else if (controller.kind === 'Job' && pod.status?.phase !== 'Pending') {
      out.push({ kind: 'RunningJob', message: `pod ${ref} runs a Job (${controller.name}): batch work is waited for, not evicted` });
    }
    const local = localStorage(pod);
    if (local) out.push({ kind: 'LocalStorage', message: `pod ${ref} uses local storage (${local}) that would be lost` });
    if (pod.metadata?.namespace === 'kube-system' && budgets.length === 0) {
      out.push({ kind: 'KubeSystem', message: `pod ${ref} is a kube-system pod that is not a DaemonSet pod and has no PodDisruptionBudget` });
    }
  }
  if (!opts.ignoreBudgets) {
    for (const b of budgets) {
      const allowed = b.status?.disruptionsAllowed;
      const computed = b.status !== undefined && (b.status.observedGeneration ?? 0) >= (b.metadata?.generation ?? 0);
      const name = `${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`;
      if (!computed) {
        out.push({ kind: 'DisruptionBudget', message: `pod ${ref}: PodDisruptionBudget ${name} has not been computed by kube-controller-manager yet` });
      } else if ((allowed ?? 0) < 1) {
        const healthy = b.status?.currentHealthy ?? 0;
        const desired = b.status?.desiredHealthy ?? 0;
        out.push({ kind: 'DisruptionBudget', message: `pod ${ref}: PodDisruptionBudget ${name} allows no disruption now (${healthy} healthy, ${desired} required)` });
      }
    }
  }
  return out;
}

/** An emptyDir not backed by memory, or a hostPath: data that dies with the pod's move. */
function localStorage(pod: V1Pod): string | undefined {
  for (const v of pod.spec?.volumes ?? []) {
    if (v.hostPath) return `hostPath volume "${v.name}" (${v.hostPath.path})`;
    if (v.emptyDir && v.emptyDir.medium !== 'Memory') return `emptyDir volume "${v.name}" on disk`;
  }
  return undefined;
}

/** policy/v1: an empty selector selects every pod of the namespace; a missing one selects none. */
export function budgetCovers(budget: V1PodDisruptionBudget, pod: V1Pod): boolean {
  if (budget.metadata?.namespace !== pod.metadata?.namespace) return false;
  const sel = budget.spec?.selector;
  if (!sel) return false;
  return labelSelectorMatches(sel, pod.metadata?.labels ?? {});
}
