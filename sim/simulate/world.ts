import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { nodeForMachine } from '../nodes.js';
import type { MachineState } from './accounting.js';
import { boundPod, Cache, markedUnschedulable, newPod, podKey, readyNode } from './cluster.js';
import type { ClusterAccess } from './controller.js';
import { TimeHeap } from './heap.js';
import { requestsOf } from './scheduler.js';
import type { TracePod } from './trace.js';
import type { ResourceList } from '../../scheduling/index.js';

/**
 * The simulated cluster's state and what happens to it: pods created from the trace, bound
 * by the scheduler, finished after their duration, evicted by drains (their controller makes
 * a replacement that runs what was left of the duration), Nodes that register when their
 * machine has booted and go when it powers off. It keeps the indexes the simulation reads
 * often (pods by Node, the pending queue, the cpu each Node's pods request).
 */

interface Tracked {
  trace: TracePod;
  /** The end of the pod's run, once bound (virtual ms). */
  endsAt?: number;
  /** Milliseconds of the run still to go (a replacement of an evicted pod). */
  remainingMs: number;
  original: boolean;
  node?: string;
  cpuMilli: number;
}

export interface WorldListener {
  /** A pod changed as the pod informer would report it (for the reconciler's pod index and its triggers). */
  podEvent(kind: 'added' | 'pending' | 'bound' | 'deleted'): void;
  nodeEvent(): void;
  autoscalerEvent(): void;
}

export class World implements ClusterAccess {
  readonly autoscalers = new Cache<BareMetalAutoscaler>();
  readonly inventories = new Cache<k8s.V1ConfigMap>();
  readonly nodes = new Cache<k8s.V1Node>();
  readonly pods = new Cache<k8s.V1Pod>();
  readonly states = new Map<string, MachineState>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly usedByNode = new Map<string, ResourceList>();
  /** Pods waiting for the scheduler, in creation order. */
  readonly pending = new Map<string, k8s.V1Pod>();
  private readonly completions = new TimeHeap<{ at: number; key: string; uid: string }>();
  private nextUid = 1;
  private replacements = 0;
  /** Seconds each trace pod waited from creation to its first binding. */
  readonly waits: number[] = [];
  demandMilli = 0;

  constructor(
    machines: readonly ParsedMachine[],
    private readonly now: () => number,
    private readonly start: number,
    private readonly listener: WorldListener,
  ) {
    for (const m of machines) this.states.set(m.name, { machine: m, on: false, booting: false, cpuUsed: 0 });
    this.autoscalers.on('update', () => listener.autoscalerEvent());
  }

  /** A trace row's pod is created (Pending, not yet looked at by the scheduler). */
  create(trace: TracePod): void {
    this.add(trace, trace.duration * 1000, true, trace.name);
  }

  private add(trace: TracePod, remainingMs: number, original: boolean, name: string): void {
    const pod = newPod(name, `uid-${this.nextUid++}`, { cpu: trace.cpu, memory: trace.memory }, { ...(trace.tolerations ? { tolerations: trace.tolerations } : {}), ...(trace.nodeSelector ? { nodeSelector: trace.nodeSelector } : {}) }, this.now());
    const key = podKey(pod);
    this.tracked.set(key, { trace, remainingMs, original, cpuMilli: Number(trace.cpuMilli) });
    this.demandMilli += Number(trace.cpuMilli);
    this.pending.set(key, pod);
    this.pods.put(key, pod);
    this.listener.podEvent('added');
  }

  bind(pod: k8s.V1Pod, node: string): void {
    const key = podKey(pod);
    const t = this.tracked.get(key);
    if (!t) throw new Error(`simulation: binding unknown pod ${key}`);
    const now = this.now();
    const bound = boundPod(pod, node, now);
    this.pending.delete(key);
    this.pods.put(key, bound);
    t.node = node;
    t.endsAt = now + t.remainingMs;
    if (t.original) this.waits.push((now - this.start) / 1000 - t.trace.at);
    let set = this.byNode.get(node);
    if (!set) this.byNode.set(node, (set = new Set()));
    set.add(key);
    this.addUsage(node, requestsOf(bound), 1);
    const s = this.states.get(node);
    if (s) s.cpuUsed += t.cpuMilli;
    this.completions.push({ at: t.endsAt, key, uid: bound.metadata?.uid ?? '' });
    this.listener.podEvent('bound');
  }

  unschedulable(pod: k8s.V1Pod, message: string): void {
    const marked = markedUnschedulable(pod, message, this.now());
    if (!marked) return;
    const key = podKey(pod);
    this.pending.set(key, marked);
    this.pods.put(key, marked);
    this.listener.podEvent('pending');
  }

  nextCompletion(): number | undefined {
    return this.completions.peek()?.at;
  }

  /** Pods whose run ended by `now` finish and are deleted. */
  complete(now: number): void {
    for (let c = this.completions.peek(); c !== undefined && c.at <= now; c = this.completions.peek()) {
      this.completions.pop();
      const pod = this.pods.get(c.key);
      if (pod?.metadata?.uid !== c.uid) continue;
      this.remove(c.key);
    }
  }

  /** An eviction: the pod goes; a replacement (same workload) is created for the rest of its run. */
  evict(pod: k8s.V1Pod): void {
    const key = podKey(pod);
    const t = this.tracked.get(key);
    if (!t) return;
    const left = t.endsAt !== undefined ? Math.max(0, t.endsAt - this.now()) : t.remainingMs;
    this.remove(key);
    this.add(t.trace, left, false, `${t.trace.name}-r${++this.replacements}`);
  }

  private remove(key: string): void {
    const t = this.tracked.get(key);
    const pod = this.pods.get(key);
    if (!t || !pod) return;
    this.tracked.delete(key);
    this.pending.delete(key);
    this.demandMilli -= t.cpuMilli;
    if (t.node) {
      this.byNode.get(t.node)?.delete(key);
      this.addUsage(t.node, requestsOf(pod), -1);
      const s = this.states.get(t.node);
      if (s) s.cpuUsed -= t.cpuMilli;
    }
    this.pods.delete(key);
    this.listener.podEvent('deleted');
  }

  private addUsage(node: string, requests: ResourceList, sign: 1 | -1): void {
    let used = this.usedByNode.get(node);
    if (!used) this.usedByNode.set(node, (used = new Map<string, bigint>()));
    for (const [r, v] of requests) used.set(r, (used.get(r) ?? 0n) + (sign === 1 ? v : -v));
  }

  usedOn(node: string): ResourceList {
    return this.usedByNode.get(node) ?? new Map<string, bigint>();
  }

  podsOn(node: string): k8s.V1Pod[] {
    return [...(this.byNode.get(node) ?? [])].flatMap((k) => {
      const p = this.pods.get(k);
      return p ? [p] : [];
    });
  }

  /** The machine has booted: its kubelet registers the Node, Ready. */
  nodeReady(machine: ParsedMachine): void {
    const s = this.states.get(machine.name);
    if (s) s.booting = false;
    this.nodes.put(machine.name, readyNode(nodeForMachine(machine), this.now(), `node-${this.nextUid++}`));
    this.listener.nodeEvent();
  }

  poweredOn(name: string, booting: boolean): void {
    const s = this.states.get(name);
    if (s) {
      s.on = true;
      s.booting = booting;
    }
  }

  /** The power is gone: so is the Node, and any pod still on it (its controller replaces it). */
  poweredOff(name: string): void {
    const s = this.states.get(name);
    if (s) {
      s.on = false;
      s.booting = false;
    }
    for (const pod of this.podsOn(name)) this.evict(pod);
    if (this.nodes.delete(name)) this.listener.nodeEvent();
  }

  /** Pods still in the cluster (pending or running). */
  get podCount(): number {
    return this.tracked.size;
  }

  /** Trace pods never bound (pending at the end), replacements not counted twice. */
  unplaced(): number {
    let n = 0;
    for (const t of this.tracked.values()) if (t.original && t.node === undefined) n++;
    return n;
  }
}
