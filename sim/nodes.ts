import * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';

/**
 * A simulated machine's Node. kwok plays the kubelet of every Node annotated
 * `kwok.x-k8s.io/node=fake`: it makes the Node Ready, renews its Lease and runs its pods.
 * Booting registers the Node (or hands an existing one back to kwok).
 *
 * Powering off removes the Node. A real machine's Node would linger NotReady, but kwok
 * cannot play a kubelet that stops: once it holds a Node's Lease it renews it until it
 * sees the Node deleted (taking its annotation away does not stop it), so the only
 * faithful "the kubelet is gone" is deleting the Node, annotation still on, which makes
 * kwok release the Lease. The machine registers its Node again when it boots, as a kubelet
 * does when its Node object is gone; bamel treats a missing Node like a NotReady one.
 */

export const KWOK_ANNOTATION = 'kwok.x-k8s.io/node';
export const SIMULATED_LABEL = 'bamel.io/simulated';

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export function nodeForMachine(machine: ParsedMachine): k8s.V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: machine.name,
      annotations: { [KWOK_ANNOTATION]: 'fake' },
      labels: {
        'kubernetes.io/hostname': machine.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        [SIMULATED_LABEL]: 'true',
        ...machine.labels,
      },
    },
    spec: machine.taints.length > 0 ? { taints: machine.taints.map((t) => ({ key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}) })) } : {},
    status: { capacity: { ...machine.capacityText }, allocatable: { ...machine.capacityText } },
  };
}

/** The kubelet starts: register the Node, or resume the existing one. */
export async function startKubelet(core: k8s.CoreV1Api, machine: ParsedMachine): Promise<'registered' | 'resumed'> {
  try {
    await core.createNode({ body: nodeForMachine(machine) });
    return 'registered';
  } catch (err) {
    if (!(err instanceof k8s.ApiException) || err.code !== 409) throw err;
  }
  await core.patchNode({ name: machine.name, body: { metadata: { annotations: { [KWOK_ANNOTATION]: 'fake' } } } }, mergePatch);
  return 'resumed';
}

/** The power is gone: the Node goes (see above), and with it kwok's Lease renewals. */
export async function stopKubelet(core: k8s.CoreV1Api, name: string): Promise<void> {
  try {
    await core.deleteNode({ name });
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 404) return;
    throw err;
  }
}

/** The Nodes currently played by kwok (their machines were left running), read with one list for a whole inventory. */
export async function runningKubelets(core: k8s.CoreV1Api): Promise<Set<string>> {
  const nodes = await core.listNode();
  return new Set(nodes.items.filter((n) => n.metadata?.annotations?.[KWOK_ANNOTATION] === 'fake').map((n) => n.metadata?.name ?? ''));
}

