import type { KubernetesObject, V1Container, V1ContainerStatus, V1Node, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { Interner } from '../kube/intern.js';

/**
 * Pods and Nodes as the manager caches them (the transform of its informers): only what
 * the controller, the extender and the feasibility engine read, in one place. A large
 * cluster has tens of thousands of Pods in every replica's memory; managedFields,
 * environment, commands, probes, volume mounts, images and most of the status are most of
 * their bytes. What is kept is copied (the parsed object is let go) through one Interner,
 * so that replicas of a workload share their strings, requests, tolerations and selectors
 * (shared parts are frozen).
 *
 * Pods keep: metadata but managedFields; spec but the containers' runtime details (name,
 * resources, restartPolicy and ports stay); status phase, conditions (type, status, reason,
 * lastTransitionTime), resize, and each container status's resources.
 * Nodes keep: metadata but managedFields; spec; status capacity, allocatable and conditions
 * (type, status, reason, lastTransitionTime): not images, nodeInfo, addresses, volumes,
 * daemonEndpoints, nor the conditions' messages and heartbeats.
 */

const interner = new Interner();

export function slimPod(obj: KubernetesObject): KubernetesObject {
  const pod = obj as V1Pod;
  const out: V1Pod = { ...copyTop(pod), metadata: slimMetadata(pod.metadata) };
  if (pod.spec) {
    // Ephemeral containers request nothing and are never scheduled: not kept at all.
    const { ephemeralContainers: _ephemeral, containers, initContainers, tolerations, nodeSelector, affinity, ...rest } = pod.spec;
    out.spec = {
      ...interner.copy(rest),
      containers: containers.map(slimContainer),
      ...(initContainers ? { initContainers: initContainers.map(slimContainer) } : {}),
      ...(tolerations ? { tolerations: interner.share(tolerations) } : {}),
      ...(nodeSelector ? { nodeSelector: interner.share(nodeSelector) } : {}),
      ...(affinity ? { affinity: interner.share(affinity) } : {}),
    };
  }
  const s = pod.status;
  if (s) {
    out.status = {
      ...(s.phase !== undefined ? { phase: interner.string(s.phase) } : {}),
      ...(s.conditions ? { conditions: s.conditions.map(slimCondition) } : {}),
      ...(s.resize !== undefined ? { resize: interner.string(s.resize) } : {}),
      ...(s.containerStatuses ? { containerStatuses: s.containerStatuses.map(slimStatus) } : {}),
      ...(s.initContainerStatuses ? { initContainerStatuses: s.initContainerStatuses.map(slimStatus) } : {}),
    };
  }
  return out;
}

export function slimNode(obj: KubernetesObject): KubernetesObject {
  const node = obj as V1Node;
  const out: V1Node = { ...copyTop(node), metadata: slimMetadata(node.metadata) };
  if (node.spec) out.spec = interner.copy(node.spec);
  const s = node.status;
  if (s) {
    out.status = {
      ...(s.capacity ? { capacity: interner.share(s.capacity) } : {}),
      ...(s.allocatable ? { allocatable: interner.share(s.allocatable) } : {}),
      ...(s.conditions ? { conditions: s.conditions.map(slimCondition) } : {}),
    };
  }
  return out;
}

/** apiVersion and kind, and whatever else sits beside metadata, spec and status. */
function copyTop<T extends KubernetesObject & { spec?: unknown; status?: unknown }>(obj: T): T {
  const { metadata: _m, spec: _s, status: _st, ...top } = obj;
  return interner.copy(top) as T;
}

function slimMetadata(metadata: V1ObjectMeta | undefined): V1ObjectMeta {
  const { managedFields: _managed, labels, ownerReferences, ...rest } = metadata ?? {};
  return {
    ...interner.copy(rest),
    ...(labels ? { labels: interner.share(labels) } : {}),
    ...(ownerReferences ? { ownerReferences: interner.share(ownerReferences) } : {}),
  };
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  lastTransitionTime?: Date;
}

function slimCondition<C extends Condition>({ type, status, reason, lastTransitionTime }: C): C {
  return {
    type: interner.string(type),
    status: interner.string(status),
    ...(reason !== undefined ? { reason: interner.string(reason) } : {}),
    ...(lastTransitionTime !== undefined ? { lastTransitionTime: interner.copy(lastTransitionTime) } : {}),
  } as C;
}

function slimContainer(c: V1Container): V1Container {
  return {
    name: interner.string(c.name),
    ...(c.resources ? { resources: interner.share(c.resources) } : {}),
    ...(c.restartPolicy !== undefined ? { restartPolicy: interner.string(c.restartPolicy) } : {}),
    ...(c.ports ? { ports: interner.share(c.ports) } : {}),
  };
}

function slimStatus(cs: V1ContainerStatus): V1ContainerStatus {
  return {
    name: interner.string(cs.name),
    ready: cs.ready,
    restartCount: cs.restartCount,
    image: '',
    imageID: '',
    ...(cs.resources ? { resources: interner.share(cs.resources) } : {}),
    ...(cs.allocatedResources ? { allocatedResources: interner.share(cs.allocatedResources) } : {}),
  };
}
