import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { DRAINING_TAINT } from '../api/v1alpha1/baremetalautoscaler.js';
import { podName } from './blockers.js';
import type { ControllerMetrics } from './metrics.js';
import { apiExceptionMessage, describeError, errorMessage, isApiStatus } from '../kube/errors.js';
import { makeApiClient } from '../kube/client.js';

/**
 * The I/O of a drain: the draining taint on the Node, evictions through the Eviction API
 * (policy/v1), and the Node's deletion once its machine is off. What to drain and when to
 * give up is the reconciler's call; this class only carries it out and remembers, per
 * machine, what the evictions answered. A refusal (429: a PodDisruptionBudget allows no
 * disruption now) is retried with backoff for as long as the reconciler keeps asking; nothing
 * here deletes a pod directly, so no eviction ever goes against a PodDisruptionBudget.
 */

export interface DrainerOptions {
  kc: k8s.KubeConfig;
  logger: Logger;
  metrics: ControllerMetrics;
  /** An eviction finished (accepted or refused): the autoscaler should look again. */
  onChange: (autoscaler: string) => void;
  /** Emits an event on the pod (evicted) and returns nothing. */
  onEvicted?: (pod: k8s.V1Pod, machine: string, autoscaler: string) => void;
  now?: () => number;
  /** First retry after a refusal; doubles up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

interface PodAttempt {
  inFlight: boolean;
  attempts: number;
  nextAt: number;
  accepted: boolean;
}

interface MachineDrain {
  evicted: number;
  lastRefusal?: string;
  pods: Map<string, PodAttempt>;
}

export const DRAINING_TAINT_SPEC: k8s.V1Taint = { key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' };

export class Drainer {
  private readonly core: k8s.CoreV1Api;
  private readonly drains = new Map<string, MachineDrain>();
  private readonly now: () => number;
  private readonly base: number;
  private readonly max: number;

  constructor(private readonly opts: DrainerOptions) {
    this.core = makeApiClient(opts.kc, k8s.CoreV1Api);
    this.now = opts.now ?? Date.now;
    this.base = opts.baseBackoffMs ?? 1000;
    this.max = opts.maxBackoffMs ?? 15_000;
  }

  progress(machine: string): { evicted: number; lastRefusal?: string } | undefined {
    const d = this.drains.get(machine);
    return d ? { evicted: d.evicted, ...(d.lastRefusal !== undefined ? { lastRefusal: d.lastRefusal } : {}) } : undefined;
  }

  forget(machine: string): void {
    this.drains.delete(machine);
  }

  /**
   * Asks for the eviction of each pod not already asked for and whose backoff has passed.
   * Returns when the next retry is due (ms), if any pod waits for one.
   */
  evict(autoscaler: string, machine: string, pods: readonly k8s.V1Pod[], evictedBefore = 0): number | undefined {
    let d = this.drains.get(machine);
    if (!d) this.drains.set(machine, (d = { evicted: evictedBefore, pods: new Map() }));
    const drain = d;
    const now = this.now();
    const live = new Set<string>();
    let nextAt: number | undefined;
    for (const pod of pods) {
      const uid = pod.metadata?.uid ?? podName(pod);
      live.add(uid);
      let a = drain.pods.get(uid);
      if (!a) drain.pods.set(uid, (a = { inFlight: false, attempts: 0, nextAt: 0, accepted: false }));
      if (a.inFlight || a.accepted) continue;
      if (a.nextAt > now) {
        nextAt = Math.min(nextAt ?? Infinity, a.nextAt);
        continue;
      }
      const attempt = a;
      attempt.inFlight = true;
      attempt.attempts++;
      void this.evictOne(pod).then((r) => {
        attempt.inFlight = false;
        if (r.ok) {
          attempt.accepted = true;
          drain.evicted++;
          this.opts.metrics.evictions.inc({ result: r.gone ? 'gone' : 'evicted' });
          if (!r.gone) this.opts.onEvicted?.(pod, machine, autoscaler);
        } else {
          drain.lastRefusal = `${podName(pod)}: ${r.message}`;
          this.opts.metrics.evictions.inc({ result: r.refused ? 'refused' : 'error' });
          const backoff = Math.min(this.max, this.base * 2 ** Math.min(10, attempt.attempts - 1));
          attempt.nextAt = this.now() + backoff * (0.8 + Math.random() * 0.4);
        }
        this.opts.onChange(autoscaler);
      });
    }
    for (const uid of drain.pods.keys()) if (!live.has(uid)) drain.pods.delete(uid);
    return nextAt;
  }

  private async evictOne(pod: k8s.V1Pod): Promise<{ ok: true; gone?: boolean } | { ok: false; refused: boolean; message: string }> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    try {
      await this.core.createNamespacedPodEviction({
        name,
        namespace,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          // Exactly the pod observed: a pod recreated under the same name is not evicted on its behalf.
          ...(pod.metadata?.uid ? { deleteOptions: { preconditions: { uid: pod.metadata.uid } } } : {}),
        },
      });
      this.opts.logger.info({ pod: `${namespace}/${name}` }, 'pod evicted');
      return { ok: true };
    } catch (err) {
      if (err instanceof k8s.ApiException) {
        if (err.code === 404) return { ok: true, gone: true };
        const message = apiExceptionMessage(err);
        // A 409 is the uid precondition failing only when the pod under that name is
        // another one (or none): anything else is a conflict to retry, not a pod gone.
        if (err.code === 409) return (await this.replaced(pod)) ? { ok: true, gone: true } : { ok: false, refused: true, message: `eviction conflicted: ${message}` };
        if (err.code === 429) return { ok: false, refused: true, message: `eviction refused: ${message}` };
        return { ok: false, refused: false, message: `eviction failed (HTTP ${err.code}): ${message}` };
      }
      return { ok: false, refused: false, message: `eviction failed: ${errorMessage(err)}` };
    }
  }

  /** The pod observed is no longer there: none under its name, or one with another uid. */
  private async replaced(pod: k8s.V1Pod): Promise<boolean> {
    try {
      const now = await this.core.readNamespacedPod({ name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '' });
      return pod.metadata?.uid !== undefined && now.metadata?.uid !== pod.metadata.uid;
    } catch (err) {
      if (isApiStatus(err, 404)) return true;
      return false;
    }
  }

  /** Puts the draining taint on the Node (NoSchedule); false when the Node does not exist. */
  async taint(nodeName: string): Promise<boolean> {
    return this.updateTaints(nodeName, (taints) => (taints.some((t) => t.key === DRAINING_TAINT) ? undefined : [...taints, DRAINING_TAINT_SPEC]));
  }

  /** Takes the draining taint off the Node, if it is there. */
  async untaint(nodeName: string): Promise<boolean> {
    return this.updateTaints(nodeName, (taints) => (taints.some((t) => t.key === DRAINING_TAINT) ? taints.filter((t) => t.key !== DRAINING_TAINT) : undefined));
  }

  /**
   * Read-modify-write with the Node's resourceVersion: the taint list is one field that the
   * node lifecycle controller and others also write, so a blind patch could drop theirs.
   */
  private async updateTaints(nodeName: string, change: (taints: k8s.V1Taint[]) => k8s.V1Taint[] | undefined): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      let node: k8s.V1Node;
      try {
        node = await this.core.readNode({ name: nodeName });
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 404) return false;
        throw new Error(`reading Node ${nodeName}: ${describeError(err)}`);
      }
      const taints = change(node.spec?.taints ?? []);
      if (taints === undefined) return true;
      node.spec = { ...node.spec, taints };
      try {
        await this.core.replaceNode({ name: nodeName, body: node });
        return true;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 409 && attempt < 5) continue;
        if (err instanceof k8s.ApiException && err.code === 404) return false;
        throw new Error(`updating the taints of Node ${nodeName}: ${describeError(err)}`);
      }
    }
  }

  /**
   * Deletes the Node of a machine that is off, only the one observed (uid precondition): a
   * Node that registered again since is left alone.
   */
  async deleteNode(nodeName: string, uid: string | undefined): Promise<void> {
    try {
      await this.core.deleteNode({ name: nodeName, body: { preconditions: uid ? { uid } : {} } });
      this.opts.logger.info({ node: nodeName }, 'Node of a powered-off machine deleted');
    } catch (err) {
      if (err instanceof k8s.ApiException && (err.code === 404 || err.code === 409)) return;
      throw new Error(`deleting Node ${nodeName}: ${describeError(err)}`);
    }
  }
}
