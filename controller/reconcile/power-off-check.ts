import type * as k8s from '@kubernetes/client-node';
import type { MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { mustLeave, podName } from '../blockers.js';
import { isNodeReady } from '../observe.js';
import type { Intent, MachineStates, Store } from './types.js';

/**
 * The last look before a power-off intent is written (and before a power-off is retried):
 * the machine's pods read from the API server itself (a quorum read, not the cache). A pod
 * bound to it after it was chosen (while the extender was down, or by a scheduler that
 * does not ask it) must never lose its machine: any pod but DaemonSet, mirror and finished
 * ones aborts the power-off, and the machine stays on.
 */

/** The pods bound to a Node, as the API server has them now. */
export type LivePods = (node: string) => Promise<k8s.V1Pod[]>;

/** The pods on a Node as the API server has them now (not the cache). */
export function livePodsFrom(core: k8s.CoreV1Api): LivePods {
  return async (node) => (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
}

export interface PowerOffCheck {
  intents: Intent[];
  machines: Map<string, MachineStatus>;
  aborted: { machine: string; pods: string[] }[];
  /** Draining taints to remove from the machines that stay on. */
  untaint: string[];
}

export async function checkPowerOffs(intents: readonly Intent[], machines: MachineStates, nodes: Store<k8s.V1Node>, livePods: LivePods, now: number): Promise<PowerOffCheck> {
  const out: PowerOffCheck = { intents: [], machines: new Map(machines), aborted: [], untaint: [] };
  const offs = intents.filter((i) => i.action === 'PowerOff');
  const found = await Promise.all(offs.map(async (i) => ({ intent: i, pods: (await livePods(i.machine.name)).filter(mustLeave) })));
  const staying = new Map(found.filter((f) => f.pods.length > 0).map((f) => [f.intent.machine.name, f.pods]));
  for (const intent of intents) {
    const pods = staying.get(intent.machine.name);
    if (intent.action !== 'PowerOff' || !pods) {
      out.intents.push(intent);
      continue;
    }
    const names = pods.map(podName);
    const shown = `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
    const s = out.machines.get(intent.machine.name);
    const ready = isNodeReady(nodes.get(intent.machine.name));
    const { drain: _d, disruption: _x, unneededSince: _u, operation: _o, blockers: _b, ...rest } = s ?? { name: intent.machine.name, phase: 'Unknown' as const, since: new Date(now).toISOString() };
    out.machines.set(intent.machine.name, {
      ...rest,
      phase: ready ? 'Ready' : 'Unknown',
      since: new Date(now).toISOString(),
      reason: 'PowerOffAborted',
      message: `power-off aborted, the machine stays on: ${pods.length} pod(s) run on it now (${shown})`.slice(0, 2048),
    });
    out.aborted.push({ machine: intent.machine.name, pods: names });
    out.untaint.push(intent.machine.name);
  }
  return out;
}
