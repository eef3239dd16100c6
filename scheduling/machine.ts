import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';
import { parseQuantity } from '../api/quantity.js';
import { podRequests } from './requests.js';
import { addResources, type ReadonlyResourceList, type ResourceList } from './resources.js';
import type { Taint } from './taints.js';

/**
 * A place a pod could run: a powered-off machine from the inventory (as the Node it will
 * register as) or a Node that exists. The controller and the extender both build these, so
 * one feasibility check serves both.
 */
export interface Candidate {
  name: string;
  labels: Readonly<Record<string, string>>;
  taints: readonly Taint[];
  allocatable: ReadonlyResourceList;
  /** What the pods already there request; absent for a machine that is off. */
  used?: ReadonlyResourceList;
}

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';
export const OS_LABEL = 'kubernetes.io/os';
export const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

/**
 * The labels the kubelet will register the machine's Node with: the inventory's, plus
 * kubernetes.io/hostname (the Node name) and kubernetes.io/os=linux unless the inventory
 * says otherwise. Many charts select `kubernetes.io/os: linux`; without it, their pods would
 * never fit a machine that is off. The architecture is not guessed: an inventory serving
 * pods that select on kubernetes.io/arch must list it.
 */
export function predictedNodeLabels(name: string, labels: Readonly<Record<string, string>>): Record<string, string> {
  return { [HOSTNAME_LABEL]: name, [OS_LABEL]: 'linux', ...labels };
}

/** A powered-off machine as the Node it will become; its capacity is what pods may use. */
export function candidateFromMachine(machine: ParsedMachine): Candidate {
  return {
    name: machine.name,
    labels: predictedNodeLabels(machine.name, machine.labels),
    taints: machine.taints,
    allocatable: new Map(Object.entries(machine.capacity)),
  };
}

const TERMINATED_PHASES = new Set(['Succeeded', 'Failed']);

/** A pod that has finished (Succeeded or Failed): it holds no resources and needs no room. */
export function isTerminated(pod: V1Pod): boolean {
  return TERMINATED_PHASES.has(pod.status?.phase ?? '');
}

/**
 * A Node and the pods bound to it. Terminated pods no longer hold resources; the others,
 * including those being deleted, still do (the scheduler counts them until they are gone).
 * A cordoned Node carries the unschedulable taint, as kube-scheduler's NodeUnschedulable
 * filter treats it, even before the node lifecycle controller adds it.
 */
export function candidateFromNode(node: V1Node, podsOnNode: readonly V1Pod[] = []): Candidate {
  const name = node.metadata?.name ?? '';
  const taints: Taint[] = [...(node.spec?.taints ?? [])];
  if (node.spec?.unschedulable === true && !taints.some((t) => t.key === UNSCHEDULABLE_TAINT.key && t.effect === UNSCHEDULABLE_TAINT.effect)) {
    taints.push(UNSCHEDULABLE_TAINT);
  }
  const used: ResourceList = new Map();
  for (const pod of podsOnNode) {
    if (isTerminated(pod)) continue;
    addResources(used, podRequests(pod, { useStatusResources: true }));
  }
  return {
    name,
    labels: { ...node.metadata?.labels },
    taints,
    // The API server defaults allocatable to capacity when a kubelet reports only capacity.
    allocatable: parseNodeResources(node.status?.allocatable ?? node.status?.capacity),
    used,
  };
}

/**
 * The kubelet's figures passed API validation; one that still does not parse counts as
 * nothing allocatable, so no pod is placed on the strength of it.
 */
function parseNodeResources(raw: Readonly<Record<string, string>> | undefined): ReadonlyResourceList {
  // Parsed once per object: a Node in the informer cache is replaced, never changed, on update.
  if (raw === undefined) return new Map();
  const hit = parsedResources.get(raw);
  if (hit !== undefined) return hit;
  const parsed: ResourceList = new Map();
  for (const [name, value] of Object.entries(raw ?? {})) {
    try {
      parsed.set(name, parseQuantity(value));
    } catch {
      parsed.set(name, 0n);
    }
  }
  parsedResources.set(raw, parsed);
  return parsed;
}

const parsedResources = new WeakMap<Readonly<Record<string, string>>, ReadonlyResourceList>();
