import type { KubernetesObject, V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';

/**
 * Pods as the manager caches them: only what the controller, the extender and the
 * feasibility engine read. managedFields, environment, commands, probes, volume mounts
 * and most of the status are most of a Pod's bytes, and a large cluster has tens of
 * thousands of Pods in every replica's memory. What stays: metadata but managedFields;
 * spec but the containers' runtime details (name, resources, restartPolicy and ports stay);
 * status phase, conditions, resize, and each container status's resources.
 */
export function slimPod(obj: KubernetesObject): KubernetesObject {
  const pod = obj as V1Pod;
  const { managedFields: _managed, ...metadata } = pod.metadata ?? {};
  let spec: V1Pod['spec'];
  if (pod.spec) {
    // Ephemeral containers request nothing and are never scheduled: not kept at all.
    const { ephemeralContainers: _ephemeral, ...rest } = pod.spec;
    spec = { ...rest, containers: rest.containers.map(slimContainer), ...(rest.initContainers ? { initContainers: rest.initContainers.map(slimContainer) } : {}) };
  }
  const s = pod.status;
  const status = s
    ? {
        ...(s.phase !== undefined ? { phase: s.phase } : {}),
        ...(s.conditions ? { conditions: s.conditions.map(({ type, status, reason, lastTransitionTime }) => ({ type, status, ...(reason !== undefined ? { reason } : {}), ...(lastTransitionTime !== undefined ? { lastTransitionTime } : {}) })) } : {}),
        ...(s.resize !== undefined ? { resize: s.resize } : {}),
        ...(s.containerStatuses ? { containerStatuses: s.containerStatuses.map(slimStatus) } : {}),
        ...(s.initContainerStatuses ? { initContainerStatuses: s.initContainerStatuses.map(slimStatus) } : {}),
      }
    : undefined;
  const out: V1Pod = { ...pod, metadata };
  if (spec) out.spec = spec;
  if (status) out.status = status;
  return out;
}

function slimContainer(c: V1Container): V1Container {
  return {
    name: c.name,
    ...(c.resources ? { resources: c.resources } : {}),
    ...(c.restartPolicy !== undefined ? { restartPolicy: c.restartPolicy } : {}),
    ...(c.ports ? { ports: c.ports } : {}),
  };
}

function slimStatus(cs: V1ContainerStatus): V1ContainerStatus {
  return {
    name: cs.name,
    ready: cs.ready,
    restartCount: cs.restartCount,
    image: '',
    imageID: '',
    ...(cs.resources ? { resources: cs.resources } : {}),
    ...(cs.allocatedResources ? { allocatedResources: cs.allocatedResources } : {}),
  };
}
