import type { V1Pod } from '@kubernetes/client-node';
import {
  compileNodeAffinity,
  compileNodeSelector,
  matchesNodeAffinity,
  matchesNodeSelector,
  nodeAffinityFailures,
  nodeSelectorMismatches,
  type CompiledNodeAffinity,
  type CompiledNodeSelector,
  type NodeLabels,
} from './affinity.js';
import type { Candidate } from './machine.js';
import { podRequests } from './requests.js';
import { compareResourceNames, formatResource, isScheduledResource, type ReadonlyResourceList, type ResourceList } from './resources.js';
import { BLOCKING_EFFECTS, formatTaint, toleratesAnyOf, type Taint, type Toleration } from './taints.js';

/**
 * Whether a pod can run on a candidate, by the rules of kube-scheduler's filters that depend
 * only on the pod and the node: NodeName, TaintToleration (with NodeUnschedulable as a
 * taint), NodeAffinity (nodeSelector and required affinity) and NodeResourcesFit.
 */

/** Why a pod cannot run on a candidate; `message` is what a user reads in an event. */
export type Reason =
  | { kind: 'invalid'; detail: string; message: string }
  | { kind: 'nodeName'; want: string; message: string }
  | { kind: 'taint'; taint: Taint; message: string }
  | { kind: 'nodeSelector'; key: string; want: string; have: string | undefined; message: string }
  | { kind: 'affinity'; requirement: string; detail: string; message: string }
  | { kind: 'resource'; resource: string; needs: bigint; free: bigint; capacity: bigint; message: string };

export interface Verdict {
  readonly feasible: boolean;
  /** Every reason, not just the first: empty exactly when feasible. */
  readonly reasons: readonly Reason[];
}

/** A pod prepared once for checks against many candidates. */
export interface CompiledPod {
  /** Problems with the pod itself; a pod with any fits nowhere. */
  readonly invalid: readonly Reason[];
  /** spec.nodeName: a pod bound to a node runs there or nowhere. */
  readonly nodeName: string | undefined;
  readonly tolerations: readonly Toleration[];
  readonly nodeSelector: CompiledNodeSelector;
  readonly affinity: CompiledNodeAffinity | undefined;
  /** podRequests(pod), for scoring and messages. */
  readonly requests: ReadonlyResourceList;
  /** The requests the fit check compares, in message order; zero requests never block. */
  readonly checkedResources: readonly string[];
  readonly checkedAmounts: readonly bigint[];
}

/** A candidate prepared once for checks against many pods. */
export interface CompiledCandidate {
  readonly name: string;
  readonly labels: NodeLabels;
  /** Only the taints that can keep a pod off: NoSchedule and NoExecute. */
  readonly blockingTaints: readonly Taint[];
  readonly allocatable: ReadonlyResourceList;
  /** allocatable − used, by resource; negative when the node is overcommitted. */
  readonly free: ReadonlyResourceList;
}

// Shared and frozen, so that the feasible case allocates nothing.
const NO_REASONS: readonly Reason[] = Object.freeze([]);
export const FEASIBLE: Verdict = Object.freeze({ feasible: true, reasons: NO_REASONS });

export function compilePod(pod: V1Pod): CompiledPod {
  const invalid: Reason[] = [];
  const onInvalid = (detail: string): void => {
    invalid.push({ kind: 'invalid', detail, message: `invalid pod: ${detail}` });
  };
  const requests = podRequests(pod, { onInvalid });
  const spec = pod.spec;
  const affinity = compileNodeAffinity(spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution);
  const checkedResources = [...requests]
    .filter(([name, amount]) => amount > 0n && isScheduledResource(name))
    .map(([name]) => name)
    .sort(compareResourceNames);
  const nodeName = spec?.nodeName;
  return {
    invalid,
    nodeName: nodeName === undefined || nodeName === '' ? undefined : nodeName,
    tolerations: (spec?.tolerations ?? []).map((t) => ({ key: t.key, operator: t.operator, value: t.value, effect: t.effect })),
    nodeSelector: compileNodeSelector(spec?.nodeSelector),
    affinity,
    requests,
    checkedResources,
    checkedAmounts: checkedResources.map((name) => requests.get(name) ?? 0n),
  };
}

export function compileCandidate(candidate: Candidate): CompiledCandidate {
  const free: ResourceList = new Map(candidate.allocatable);
  for (const [name, amount] of candidate.used ?? []) free.set(name, (free.get(name) ?? 0n) - amount);
  const blockingTaints = candidate.taints.filter((taint) => BLOCKING_EFFECTS.has(taint.effect));
  return {
    name: candidate.name,
    labels: new Map(Object.entries(candidate.labels)),
    blockingTaints,
    allocatable: candidate.allocatable,
    free,
  };
}

/**
 * The yes/no answer without reasons, stopping at the first failure: for choosing among many
 * candidates. The cheap and most selective checks go first.
 */
export function fits(pod: CompiledPod, candidate: CompiledCandidate): boolean {
  if (pod.invalid.length > 0) return false;
  if (pod.nodeName !== undefined && pod.nodeName !== candidate.name) return false;
  for (const taint of candidate.blockingTaints) {
    if (!toleratesAnyOf(pod.tolerations, taint)) return false;
  }
  if (!matchesNodeSelector(pod.nodeSelector, candidate.labels)) return false;
  if (pod.affinity !== undefined && !matchesNodeAffinity(pod.affinity, candidate.labels, candidate.name)) return false;
  const { checkedResources, checkedAmounts } = pod;
  for (let i = 0; i < checkedResources.length; i++) {
    if ((checkedAmounts[i] as bigint) > (candidate.free.get(checkedResources[i] as string) ?? 0n)) return false;
  }
  return true;
}

/** The verdict with every reason; allocates nothing when the pod fits. */
export function check(pod: CompiledPod, candidate: CompiledCandidate): Verdict {
  if (fits(pod, candidate)) return FEASIBLE;
  return { feasible: false, reasons: explain(pod, candidate) };
}

/** For one pod and one candidate; compile both once when checking many. */
export function checkFeasibility(pod: V1Pod, candidate: Candidate): Verdict {
  return check(compilePod(pod), compileCandidate(candidate));
}

function explain(pod: CompiledPod, candidate: CompiledCandidate): Reason[] {
  const reasons: Reason[] = [...pod.invalid];
  if (pod.nodeName !== undefined && pod.nodeName !== candidate.name) {
    reasons.push({ kind: 'nodeName', want: pod.nodeName, message: `pod is bound to node ${pod.nodeName} (spec.nodeName)` });
  }
  candidate.blockingTaints.forEach((taint, i) => {
    if (toleratesAnyOf(pod.tolerations, taint)) return;
    const message = cached(candidate, `taint ${i}`, () => `taint ${formatTaint(taint)} not tolerated`);
    reasons.push({ kind: 'taint', taint, message });
  });
  for (const { key, want, have } of nodeSelectorMismatches(pod.nodeSelector, candidate.labels)) {
    const found = have === undefined ? `no ${key} label` : `${key}=${have}`;
    reasons.push({ kind: 'nodeSelector', key, want, have, message: `node selector ${key}=${want} does not match (${found})` });
  }
  if (pod.affinity !== undefined && !matchesNodeAffinity(pod.affinity, candidate.labels, candidate.name)) {
    for (const { requirement, detail } of nodeAffinityFailures(pod.affinity, candidate.labels, candidate.name)) {
      reasons.push({ kind: 'affinity', requirement, detail, message: `required node affinity: ${detail}` });
    }
    // kube-scheduler reports a term it cannot evaluate only when no term matches.
    for (const detail of pod.affinity.problems) reasons.push({ kind: 'invalid', detail, message: `invalid pod: ${detail}` });
  }
  pod.checkedResources.forEach((resource, i) => {
    const needs = pod.checkedAmounts[i] as bigint;
    const free = candidate.free.get(resource) ?? 0n;
    if (needs <= free) return;
    const capacity = candidate.allocatable.get(resource) ?? 0n;
    // Free is shown as at least zero; the reason keeps the true figure.
    const has = cached(candidate, resource, () => `${formatResource(resource, free > 0n ? free : 0n)} free of ${formatResource(resource, capacity)}`);
    const message = `insufficient ${resource} (needs ${cached(pod, resource, () => formatResource(resource, needs))}, has ${has})`;
    reasons.push({ kind: 'resource', resource, needs, free, capacity, message });
  });
  return reasons;
}

/**
 * Message parts by compiled pod or candidate, formatted on first use: most pairs the
 * controller checks are infeasible and explained, so formatting a machine's free memory
 * once rather than once per pod matters.
 */
const messageParts = new WeakMap<CompiledPod | CompiledCandidate, Map<string, string>>();

function cached(owner: CompiledPod | CompiledCandidate, key: string, make: () => string): string {
  let cache = messageParts.get(owner);
  if (cache === undefined) messageParts.set(owner, (cache = new Map<string, string>()));
  let text = cache.get(key);
  if (text === undefined) cache.set(key, (text = make()));
  return text;
}
