import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { candidateFromNode, compileCandidate, fits, type CompiledCandidate, type CompiledPod } from '../../scheduling/index.js';
import type { AbsorbingMachine, PendingPod, ScaleUpDecision } from '../decide.js';
import { toVector, type PodIndex } from '../observe.js';
import type { MachineStates, Store } from './types.js';

export { CandidateCache } from './candidates.js';

/**
 * Demand: the pending pods this autoscaler answers for (and the traffic's extra replica),
 * compiled for the feasibility engine, and the machines already coming that will take some
 * of them. Claims keep two autoscalers from powering on for the same pod.
 */

/** Which autoscaler a pending pod was counted by, and until when. */
interface Claim {
  autoscaler: string;
  until: number;
}

export class ClaimBook {
  private readonly claims = new Map<string, Claim>();

  /** Pending pods this autoscaler considers: not claimed by another autoscaler's decision. */
  pendingFor(autoscaler: string, pending: readonly k8s.V1Pod[], now: number): k8s.V1Pod[] {
    return pending.filter((p) => {
      const c = this.claims.get(p.metadata?.uid ?? '');
      return !c || c.autoscaler === autoscaler || c.until < now;
    });
  }

  /** The decision's pods are this autoscaler's until ttlMs from now. Returns the uids newly placed on a machine. */
  claim(autoscaler: string, decision: ScaleUpDecision, ttlMs: number, now: number): string[] {
    const placed: string[] = [];
    for (const choice of decision.powerOn) {
      for (const p of choice.pods) {
        this.claims.set(p.uid, { autoscaler, until: now + ttlMs });
        placed.push(p.uid);
      }
    }
    for (const p of decision.absorbed) {
      const c = this.claims.get(p.uid);
      if (!c || c.until < now) this.claims.set(p.uid, { autoscaler, until: now + ttlMs });
    }
    if (this.claims.size > 50_000) for (const [k, c] of this.claims) if (c.until < now) this.claims.delete(k);
    return placed;
  }

  forget(autoscaler: string): void {
    for (const [uid, c] of this.claims) if (c.autoscaler === autoscaler) this.claims.delete(uid);
  }
}

export interface DemandInput {
  /** Pending pods and traffic replicas, in that order. */
  demand: readonly k8s.V1Pod[];
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  nodes: Store<k8s.V1Node>;
  pods: PodIndex;
  emptyCandidate: (m: ParsedMachine) => CompiledCandidate;
  /**
   * Whether one of the selected machines can host pods of a signature, kept across
   * reconciles (SelectionMemo): compute() runs when it is not known yet.
   */
  hostable?: (signature: string, compute: () => boolean) => boolean;
  readyAbsorbMs: number;
  now: number;
}

export interface DemandPod {
  pod: k8s.V1Pod;
  compiled: CompiledPod;
}

export interface Demand {
  pods: DemandPod[];
  pending: PendingPod[];
  /** Taints, selectors, affinity and fit on the empty machine. */
  feasible: (p: PendingPod, machine: string) => boolean;
  /** Machines powering on, joining or just Ready, with their free room. */
  absorbing: AbsorbingMachine[];
  /** The demand one of this autoscaler's machines could host (it holds scale-down back). */
  relevant: CompiledPod[];
}

export function demandStep(input: DemandInput): Demand {
  const { pods, emptyCandidate, now } = input;
  const candidateOf = new Map<string, ParsedMachine>();
  for (const m of input.selected) candidateOf.set(m.name, m);
  const all = input.demand.map((p) => pods.compile(p));
  // Kept with the compiled pod: the same object while the pod's resourceVersion stays.
  const pending: PendingPod[] = all.map((c) => c.pending);
  const compiledByUid = new Map<string, CompiledPod>();
  for (const c of all) compiledByUid.set(c.pending.uid, c.pod);
  const feasible = (p: PendingPod, machine: string): boolean => {
    const m = candidateOf.get(machine);
    const cp = compiledByUid.get(p.uid);
    return m !== undefined && cp !== undefined && fits(cp, emptyCandidate(m));
  };

  const absorbing: AbsorbingMachine[] = [];
  for (const m of input.selected) {
    const s = input.machines.get(m.name);
    if (!s || !isAbsorbing(s, input.readyAbsorbMs, now)) continue;
    const node = input.nodes.get(m.name);
    const free = node ? compileCandidate(candidateFromNode(node, pods.podsOn(m.name))).free : emptyCandidate(m).free;
    absorbing.push({ name: m.name, free: toVector(free) });
  }
  // Asked once per signature (pods of one signature get one answer from every machine), and
  // across reconciles when the caller keeps the answers: a pod no machine can host costs a
  // scan of every selected machine.
  const scan = (c: CompiledPod): boolean => input.selected.some((m) => fits(c, emptyCandidate(m)));
  const local = new Map<string, boolean>();
  const hostable = (c: { pod: CompiledPod; signature: string }): boolean => {
    let ok = local.get(c.signature);
    if (ok === undefined) {
      ok = input.hostable ? input.hostable(c.signature, () => scan(c.pod)) : scan(c.pod);
      local.set(c.signature, ok);
    }
    return ok;
  };
  const relevant = all.filter(hostable).map((c) => c.pod);
  return { pods: all.map((c, i) => ({ pod: input.demand[i] as k8s.V1Pod, compiled: c.pod })), pending, feasible, absorbing, relevant };
}

function isAbsorbing(s: MachineStatus, readyAbsorbMs: number, now: number): boolean {
  const justReady = s.phase === 'Ready' && now - Date.parse(s.since) < readyAbsorbMs;
  return s.phase === 'PoweringOn' || s.phase === 'Joining' || justReady;
}
