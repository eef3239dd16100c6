import type * as k8s from '@kubernetes/client-node';
import type { Extender } from '../../extender/extender.js';
import { candidateFromNode, compileCandidate, compilePod, fits, podRequests, type CompiledCandidate, type CompiledPod, type ResourceList } from '../../scheduling/index.js';
import { isNodeReady } from '../../controller/observe.js';

/**
 * kube-scheduler as it places a pod with bamel's extender configured
 * (config/scheduler/kube-scheduler-config.yaml), one pod at a time in creation order:
 *
 *   filter     the feasibility engine (scheduling/: taints, selectors, affinity, resource
 *              fit: kube-scheduler's own filters), then the extender's filter verb
 *   score      the default profile's resource plugins, NodeResourcesFit (LeastAllocated)
 *              and NodeResourcesBalancedAllocation, 0..100 each, plus the extender's
 *              prioritize score (0..10) × weight 10 × 10 (kube-scheduler scales extender
 *              scores by MaxNodeScore / MaxExtenderPriority)
 *   select     the highest total; a tie is broken at random (the seed's), as kube-scheduler does
 *
 * A pod that fits nowhere gets PodScheduled=False, reason Unschedulable, which is what the
 * controller acts on. Pods that look alike to the filters (same requests, tolerations,
 * selector) and failed in this pass are not tried again until something changes.
 */

export interface SchedulerNodes {
  /** Ready Nodes only: a NotReady Node is tainted not-ready and takes no pods. */
  ready(): k8s.V1Node[];
  usedOn(node: string): ResourceList;
}

interface Prepared {
  node: k8s.V1Node;
  candidate: CompiledCandidate;
}

const EXTENDER_WEIGHT = 10;
const EXTENDER_SCALE = 10;

export class Scheduler {
  private readonly compiled = new WeakMap<k8s.V1Pod, CompiledPod>();
  /** Each Node object compiled once, empty (Nodes are replaced, never changed). */
  private readonly empty = new WeakMap<k8s.V1Node, CompiledCandidate>();

  constructor(
    private readonly nodes: SchedulerNodes,
    private readonly extender: Extender | undefined,
    private readonly random: () => number,
  ) {}

  /**
   * Places what it can of the pods (in the order given). `bind` is called for each placed
   * pod before the next one is tried (it changes the room left); `unschedulable` for the others.
   */
  schedule(pods: readonly k8s.V1Pod[], bind: (pod: k8s.V1Pod, node: string) => void, unschedulable: (pod: k8s.V1Pod, message: string) => void): number {
    if (pods.length === 0) return 0;
    const prepared = new Map<string, Prepared>();
    for (const node of this.nodes.ready()) {
      const name = node.metadata?.name ?? '';
      let empty = this.empty.get(node);
      if (empty === undefined) this.empty.set(node, (empty = compileCandidate(candidateFromNode(node))));
      const free = new Map(empty.allocatable);
      for (const [r, v] of this.nodes.usedOn(name)) free.set(r, (free.get(r) ?? 0n) - v);
      prepared.set(name, { node, candidate: { ...empty, free } });
    }
    const failed = new Map<string, string>();
    let placed = 0;
    for (const pod of pods) {
      const compiled = this.compile(pod);
      const signature = signatureOf(pod, compiled);
      const known = failed.get(signature);
      if (known !== undefined) {
        unschedulable(pod, known);
        continue;
      }
      const node = this.place(pod, compiled, prepared);
      if (node === undefined) {
        const message = `0/${prepared.size} nodes are available`;
        failed.set(signature, message);
        unschedulable(pod, message);
        continue;
      }
      bind(pod, node);
      placed++;
      const p = prepared.get(node) as Prepared;
      const free = new Map(p.candidate.free);
      for (const [r, v] of compiled.requests) free.set(r, (free.get(r) ?? 0n) - v);
      p.candidate = { ...p.candidate, free };
    }
    return placed;
  }

  private compile(pod: k8s.V1Pod): CompiledPod {
    let c = this.compiled.get(pod);
    if (c === undefined) this.compiled.set(pod, (c = compilePod(pod)));
    return c;
  }

  private place(pod: k8s.V1Pod, compiled: CompiledPod, prepared: ReadonlyMap<string, Prepared>): string | undefined {
    let names: string[] = [];
    for (const [name, p] of prepared) if (fits(compiled, p.candidate)) names.push(name);
    if (names.length === 0) return undefined;
    const args = { Pod: pod as k8s.V1Pod & { metadata: { name: string } }, NodeNames: names };
    const extenderScores = new Map<string, number>();
    if (this.extender) {
      names = this.extender.filter(args).NodeNames ?? [];
      if (names.length === 0) return undefined;
      for (const h of this.extender.prioritize({ ...args, NodeNames: names })) extenderScores.set(h.Host, h.Score);
    }
    let best: string[] = [];
    let bestScore = -Infinity;
    for (const name of names) {
      const c = (prepared.get(name) as Prepared).candidate;
      const total = resourceScores(c, compiled.requests) + (extenderScores.get(name) ?? 0) * EXTENDER_WEIGHT * EXTENDER_SCALE;
      if (total > bestScore) {
        bestScore = total;
        best = [name];
      } else if (total === bestScore) best.push(name);
    }
    return best.length === 1 ? best[0] : best[Math.floor(this.random() * best.length)];
  }
}

/** LeastAllocated (cpu, memory, equal weights) + BalancedAllocation, each 0..100, integer as kube-scheduler's. */
export function resourceScores(c: CompiledCandidate, requests: ReadonlyMap<string, bigint>): number {
  const fractions: number[] = [];
  let least = 0;
  for (const r of ['cpu', 'memory']) {
    const alloc = Number(c.allocatable.get(r) ?? 0n);
    if (alloc <= 0) continue;
    const usedAfter = alloc - Number(c.free.get(r) ?? 0n) + Number(requests.get(r) ?? 0n);
    least += Math.max(0, ((alloc - usedAfter) * 100) / alloc);
    fractions.push(Math.min(1, usedAfter / alloc));
  }
  const leastAllocated = fractions.length === 0 ? 0 : Math.floor(least / fractions.length);
  const balanced = fractions.length < 2 ? 100 : Math.floor((1 - Math.abs((fractions[0] as number) - (fractions[1] as number)) / 2) * 100);
  return leastAllocated + balanced;
}

function signatureOf(pod: k8s.V1Pod, compiled: CompiledPod): string {
  return JSON.stringify([[...compiled.requests].map(([r, v]) => [r, String(v)]), pod.spec?.tolerations ?? null, pod.spec?.nodeSelector ?? null, pod.spec?.affinity ?? null]);
}

/** What a pod holds on its Node, as the scheduler counts it. */
export function requestsOf(pod: k8s.V1Pod): ResourceList {
  return podRequests(pod, { useStatusResources: true });
}

export { isNodeReady };
