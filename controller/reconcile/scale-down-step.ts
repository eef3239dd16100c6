import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec, BareMetalAutoscalerStatus, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { isMovable } from '../blockers.js';
import { isNodeReady } from '../observe.js';
import { hasDrainingTaint, planScaleDown, type MachineEnergy, type PlacementNode, type ReadyMachine, type ScaleDownPlan } from '../scale-down.js';
import type { MachineStates, Store } from './types.js';

/**
 * Scale-down planning, one reconcile's worth: why not now (pending pods, pressure, a
 * cooldown...), the Ready machines planned (controller/scale-down.ts: standing and blockers
 * into status, the machines chosen twice in a row start draining), and what is left over
 * (a stray draining taint, the Node of a machine that is off). No I/O: the pipeline acts on
 * the result once the status that records it is written.
 */

export interface ScaleDownStepInput {
  spec: BareMetalAutoscalerSpec;
  previous: BareMetalAutoscalerStatus;
  selected: readonly ParsedMachine[];
  /** After the drains in flight were looked at. */
  machines: MachineStates;
  nodes: Store<k8s.V1Node>;
  pdbs: readonly k8s.V1PodDisruptionBudget[];
  podsOn: (machine: string) => k8s.V1Pod[];
  /** A drain aborted in this reconcile, if one was. */
  failure?: { time: string; machine: string; reason: string };
  /** Nodes already to be untainted (aborted drains). */
  untaint: readonly string[];
  pendingCount: number;
  pressured: string[];
  rising: string[];
  scaleUpInFlight: number;
  unread: number;
  onCount: number;
  deleting: boolean;
  /** Break-even holds, wear limits and power cycles per machine (reconcile/energy.ts). */
  energy?: (machine: string) => MachineEnergy;
  now: number;
}

export interface ScaleDownStep {
  machines: Map<string, MachineStatus>;
  plan: ScaleDownPlan;
  starts: { machine: string; pods: k8s.V1Pod[] }[];
  /** Machines kept on by a blocker (not by being busy or by a pause), for events. */
  blocked: { machine: string; messages: string[] }[];
  /** Why the deletion (deletionPolicy PowerOff) is not done yet. */
  deletionBlocked: string[];
  /** Stray draining taints to remove (beyond the input's). */
  untaint: string[];
  deleteNodes: { name: string; uid?: string }[];
  wakeAts: number[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function scaleDownStep(input: ScaleDownStepInput): ScaleDownStep {
  const { spec, now, deleting } = input;
  const sd = spec.scaleDown;
  const forcing = deleting && spec.deletionPolicy === 'PowerOff';
  const machines = new Map(input.machines);
  const wakeAts: number[] = [];
  const out: Omit<ScaleDownStep, 'plan'> = { machines, starts: [], blocked: [], deletionBlocked: [], untaint: [], deleteNodes: [], wakeAts };

  const ready: ReadyMachine[] = [];
  for (const m of input.selected) {
    const s = machines.get(m.name);
    const node = input.nodes.get(m.name);
    if (!s || s.phase !== 'Ready' || s.operation || !node || !isNodeReady(node)) continue;
    ready.push({ machine: m, status: s, node, pods: input.podsOn(m.name) });
  }
  const placement: PlacementNode[] = [];
  for (const n of input.nodes.list()) {
    const name = n.metadata?.name ?? '';
    const phase = machines.get(name)?.phase;
    if (phase !== undefined && phase !== 'Ready') continue;
    placement.push({ node: n, pods: input.podsOn(name) });
  }
  const inFlight = [...machines.values()].filter((s) => s.phase === 'Draining' || s.phase === 'PoweringOff').length;
  const paused = pause(input, forcing, wakeAts);
  const plan = planScaleDown({
    now,
    scaleDown: sd,
    minMachines: forcing ? 0 : spec.minMachines,
    ready,
    nodes: placement,
    pdbs: input.pdbs,
    onCount: input.onCount,
    inFlight,
    ...(paused ? { paused } : {}),
    ...(forcing ? { force: true, ignoreBudgets: true } : {}),
    ...(input.energy && !forcing ? { energy: input.energy } : {}),
  });
  if (plan.wakeAt !== undefined) wakeAts.push(plan.wakeAt);
  for (const r of ready) {
    const p = plan.machines.get(r.machine.name);
    if (!p) continue;
    const s = machines.get(r.machine.name) as MachineStatus;
    const { unneededSince: _u, disruption: _d, blockers: _b, ...rest } = s;
    const hard = p.blockers.filter((b) => b.kind !== 'Busy' && b.kind !== 'Paused');
    // What the operator can act on first: status keeps one line of them (status-compact.ts).
    const blockers = capBlockers([...hard, ...p.blockers.filter((b) => !hard.includes(b))].map((b) => b.message));
    if (hard.length > 0) out.blocked.push({ machine: r.machine.name, messages: hard.map((b) => b.message) });
    if (forcing && p.blockers.length > 0) out.deletionBlocked.push(`${r.machine.name}: ${p.blockers.map((b) => b.message).join('; ')}`);
    // Next is chosen again a round later and then drained; a dry run never drains, so waits for nothing.
    if (p.disruption === 'Next' && !plan.drain.includes(r.machine.name) && !spec.dryRun) wakeAts.push(now + 1000);
    if (plan.drain.includes(r.machine.name) && !spec.dryRun) {
      const toMove = r.pods.filter(isMovable);
      const { reason: _r, message: _m, ...base } = rest;
      machines.set(r.machine.name, {
        ...base,
        phase: 'Draining',
        since: iso(now),
        reason: forcing ? 'AutoscalerDeleted' : 'ScaleDown',
        message: forcing
          ? `draining before power-off: the autoscaler is being deleted with deletionPolicy PowerOff`
          : `draining: unneeded since ${p.unneededSince ?? '?'} (utilisation ${Math.round(p.utilization * 100)}% ${p.utilizationOf}); ${toMove.length} pod(s) to move`,
        drain: { startedAt: iso(now), deadline: iso(now + sd.drainTimeoutSeconds * 1000), podsToEvict: toMove.length, evicted: 0 },
      });
      out.starts.push({ machine: r.machine.name, pods: toMove });
      if (forcing) out.deletionBlocked.push(`${r.machine.name}: draining`);
      wakeAts.push(now + 1000);
    } else {
      machines.set(r.machine.name, {
        ...rest,
        ...(p.unneededSince ? { unneededSince: p.unneededSince } : {}),
        // A dry run never drains, and does not keep pods off a machine either: the extender
        // filters `Next` machines, so a dry run shows its choice as a `WouldDrain` event only.
        ...(p.disruption ? { disruption: spec.dryRun ? 'Candidate' : p.disruption } : {}),
        ...(blockers.length > 0 ? { blockers } : {}),
      });
      if (forcing && p.disruption) out.deletionBlocked.push(`${r.machine.name}: to be drained`);
    }
  }

  // Leftovers: a draining taint on a Node whose machine is not draining (an aborted drain
  // whose untaint was lost, a failed power-off) comes off; the Node of a machine that is off
  // goes (it registers again on boot).
  for (const m of input.selected) {
    const s = machines.get(m.name);
    const node = input.nodes.get(m.name);
    if (!s || !node) continue;
    if (['Ready', 'Joining', 'Unknown'].includes(s.phase) && hasDrainingTaint(node) && !input.untaint.includes(m.name)) out.untaint.push(m.name);
    if (s.phase === 'Off' && !spec.dryRun) {
      const created = node.metadata?.creationTimestamp ? new Date(node.metadata.creationTimestamp).getTime() : 0;
      if (created <= Date.parse(s.since)) out.deleteNodes.push({ name: m.name, ...(node.metadata?.uid ? { uid: node.metadata.uid } : {}) });
    }
  }
  return { ...out, plan };
}

/** Why no drain may start now, in words; pushes when that ends, if it ends by time. */
function pause(input: ScaleDownStepInput, forcing: boolean, wakeAts: number[]): string | undefined {
  const { now, previous: prev } = input;
  const failure = input.failure ?? prev.lastScaleDownFailure;
  const failedAt = failure ? Date.parse(failure.time) : undefined;
  const cooldownMs = input.spec.scaleDown.cooldownSeconds * 1000;
  if (forcing) {
    if (failedAt === undefined || now >= failedAt + cooldownMs) return undefined;
    // Deletion retries a failed drain too, but not at once: the same cooldown as scale-down.
    wakeAts.push(failedAt + cooldownMs);
    return `cooldown after the failed drain of ${failure?.machine ?? '?'}, until ${iso(failedAt + cooldownMs)}`;
  }
  const lastEvent = prev.lastScaleEvent ? Date.parse(prev.lastScaleEvent.time) : undefined;
  if (input.deleting) return 'the autoscaler is being deleted with deletionPolicy Retain';
  if (input.unread > 0) return `waiting for the power state of ${input.unread} machine(s)`;
  if (input.pendingCount > 0) return `${input.pendingCount} unschedulable pod(s) wait for room`;
  if (input.pressured.length > 0) return input.pressured.join('; ');
  if (input.rising.length > 0) return input.rising.join('; ');
  if (input.scaleUpInFlight > 0) return `a scale-up is in flight (${input.scaleUpInFlight} machine(s) powering on or joining)`;
  if (failedAt !== undefined && now < failedAt + cooldownMs) {
    wakeAts.push(failedAt + cooldownMs);
    return `scale-down cooldown after the failed scale-down of ${failure?.machine ?? '?'}, until ${iso(failedAt + cooldownMs)}`;
  }
  if (lastEvent !== undefined && now < lastEvent + cooldownMs) {
    wakeAts.push(lastEvent + cooldownMs);
    return `scale-down cooldown after the scale-${prev.lastScaleEvent?.direction === 'Up' ? 'up' : 'down'} of ${prev.lastScaleEvent?.machine ?? '?'}, until ${iso(lastEvent + cooldownMs)}`;
  }
  return undefined;
}

/** status.machines[].blockers holds at most 32 entries of 512 characters. */
function capBlockers(messages: string[]): string[] {
  const cut = messages.map((m) => (m.length > 512 ? `${m.slice(0, 509)}...` : m));
  if (cut.length <= 32) return cut;
  return [...cut.slice(0, 31), `and ${cut.length - 31} more`];
}
