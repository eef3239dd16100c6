import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import { DRAINING_TAINT, type BareMetalAutoscalerSpec, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, compileCandidate, fits, type CompiledPod } from '../../scheduling/index.js';
import { annotationBlocker, isMovable, mustLeave, nodeBlocker, podName } from '../blockers.js';
import type { Intent, MachineStates, Store } from './types.js';

/**
 * Drains in flight, one reconcile's worth: each Draining machine is done (→ a power-off
 * intent), still going (→ evict what is left), or aborted (timed out, a new blocker, pods
 * pending that need its room, the autoscaler's settings changed), and then stays on.
 */

export interface DrainStepInput {
  spec: BareMetalAutoscalerSpec;
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  nodes: Store<k8s.V1Node>;
  podsOn: (machine: string) => k8s.V1Pod[];
  /** What the drainer of this process has done on a machine so far. */
  progress: (machine: string) => { evicted: number; lastRefusal?: string } | undefined;
  /** Pending pods one of this autoscaler's machines could host. */
  pendingCompiled: readonly CompiledPod[];
  deleting: boolean;
  now: number;
}

export interface DrainStep {
  machines: Map<string, MachineStatus>;
  intents: Intent[];
  aborts: { machine: string; reason: string; message: string }[];
  evict: { machine: string; pods: k8s.V1Pod[]; evictedBefore: number }[];
  completed: { machine: string; ms: number; evicted: number }[];
  untaint: string[];
  failure?: { time: string; machine: string; reason: string };
  wakeAts: number[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function drainStep(input: DrainStepInput): DrainStep {
  const { spec, now, deleting } = input;
  const sd = spec.scaleDown;
  const forcing = deleting && spec.deletionPolicy === 'PowerOff';
  const out: DrainStep = { machines: new Map(input.machines), intents: [], aborts: [], evict: [], completed: [], untaint: [], wakeAts: [] };
  for (const m of input.selected) {
    const s = out.machines.get(m.name);
    if (s?.phase !== 'Draining') continue;
    const node = input.nodes.get(m.name);
    const pods = input.podsOn(m.name);
    const leaving = pods.filter(mustLeave);
    const toEvict = pods.filter(isMovable);
    const startedAt = Date.parse(s.drain?.startedAt ?? s.since);
    const deadline = s.drain?.deadline ? Date.parse(s.drain.deadline) : startedAt + sd.drainTimeoutSeconds * 1000;
    const progress = input.progress(m.name);
    const evicted = Math.max(progress?.evicted ?? 0, s.drain?.evicted ?? 0);
    const lastRefusal = progress?.lastRefusal ?? s.drain?.lastRefusal;
    let abort = abortReason(input, node, toEvict, forcing);
    if (!abort && !forcing && node && input.pendingCompiled.length > 0) {
      // Pending pods that would fit here once the taint is gone: the drain pushes out pods
      // the cluster has no room for. Give the room back.
      const untainted: k8s.V1Node = { ...node, spec: { ...node.spec, taints: (node.spec?.taints ?? []).filter((t) => t.key !== DRAINING_TAINT) } };
      const room = compileCandidate(candidateFromNode(untainted, pods));
      const need = input.pendingCompiled.filter((p) => fits(p, room)).length;
      if (need > 0) abort = { reason: 'PodsPending', message: `${need} unschedulable pod(s) need the room of this machine` };
    }
    if (!abort && now >= deadline && leaving.length > 0) {
      abort = {
        reason: 'DrainTimedOut',
        message: `the drain did not finish within scaleDown.drainTimeoutSeconds (${sd.drainTimeoutSeconds}s): ${leaving.length} pod(s) left (${leaving.slice(0, 3).map(podName).join(', ')})${lastRefusal ? `; last refusal: ${lastRefusal}` : ''}`,
      };
    }
    if (abort) {
      const { drain: _d, disruption: _x, unneededSince: _u, operation: _o, ...rest } = s;
      out.machines.set(m.name, { ...rest, phase: 'Ready', since: iso(now), reason: abort.reason, message: `drain aborted, the machine stays on: ${abort.message}`.slice(0, 2048) });
      out.aborts.push({ machine: m.name, reason: abort.reason, message: abort.message });
      out.failure = { time: iso(now), machine: m.name, reason: `drain aborted: ${abort.message}`.slice(0, 2048) };
      out.untaint.push(m.name);
      continue;
    }
    if (leaving.length === 0) {
      out.completed.push({ machine: m.name, ms: now - startedAt, evicted });
      out.intents.push({
        machine: m,
        action: 'PowerOff',
        reason: forcing ? 'AutoscalerDeleted' : 'ScaleDown',
        message: `drained (${evicted} pod(s) evicted in ${Math.round((now - startedAt) / 1000)}s); powering off`,
      });
      continue;
    }
    out.machines.set(m.name, {
      ...s,
      drain: {
        startedAt: iso(startedAt),
        deadline: iso(deadline),
        podsToEvict: leaving.length,
        evicted,
        ...(lastRefusal ? { lastRefusal: lastRefusal.slice(0, 1024) } : {}),
      },
    });
    out.evict.push({ machine: m.name, pods: toEvict, evictedBefore: s.drain?.evicted ?? 0 });
    out.wakeAts.push(Math.min(deadline, now + 5000));
  }
  return out;
}

/** A reason to stop a drain that does not depend on its progress. */
function abortReason(input: DrainStepInput, node: k8s.V1Node | undefined, toEvict: readonly k8s.V1Pod[], forcing: boolean): { reason: string; message: string } | undefined {
  const { spec, deleting } = input;
  if (!node) return { reason: 'NodeGone', message: 'its Node disappeared during the drain' };
  if (deleting && !forcing) return { reason: 'AutoscalerDeleted', message: 'the autoscaler is being deleted with deletionPolicy Retain: the machine is left on' };
  if (!forcing && !spec.scaleDown.enabled) return { reason: 'ScaleDownDisabled', message: 'scale-down was disabled during the drain' };
  if (!forcing && spec.dryRun) return { reason: 'DryRun', message: 'dryRun was set during the drain' };
  const blocker = nodeBlocker(node) ?? toEvict.map(annotationBlocker).find((b) => b !== undefined);
  if (blocker) return { reason: 'NewBlocker', message: `a new blocker appeared: ${blocker.message}` };
  return undefined;
}
