import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from './errors.js';
import { makeApiClient } from './client.js';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

/** The object an event about a pod is on. */
export function podRef(pod: k8s.V1Pod | { metadata?: { name?: string; namespace?: string; uid?: string } }): InvolvedObject {
  const m = pod.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    name: m?.name ?? '',
    ...(m?.namespace ? { namespace: m.namespace } : {}),
    ...(m?.uid ? { uid: m.uid } : {}),
  };
}

/** The object an event about a Node is on. */
export function nodeRef(name: string): InvolvedObject {
  return { apiVersion: 'v1', kind: 'Node', name };
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  first: Date;
  last: number;
}

const MAX_MESSAGE = 1024;
/** Events remembered for aggregation, and objects remembered for rate limiting, at most. */
const MAX_TRACKED = 10_000;

/** Event writes per involved object: a burst, then one per refill interval (client-go's spam filter, less strict). */
export interface EventRateLimit {
  burst: number;
  refillMs: number;
}

export const DEFAULT_EVENT_RATE_LIMIT: EventRateLimit = { burst: 25, refillMs: 10_000 };

/**
 * Kubernetes Events (core/v1) for decisions and failures. The same event repeated within
 * `aggregateMs` increments the existing Event's count instead of creating a new object, as
 * kubectl describe users expect. Cluster-scoped objects (autoscalers, Nodes) get their
 * events in the `default` namespace, as client-go does.
 */
export class EventRecorder {
  private readonly seen = new Map<string, Seen>();
  /** Involved object → tokens left and when they were counted (ms). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly core: k8s.CoreV1Api;
  /** Events dropped by the per-object rate limit since the start. */
  dropped = 0;

  constructor(
    kc: k8s.KubeConfig,
    private readonly component: string,
    private readonly host: string,
    private readonly logger: Logger,
    private readonly aggregateMs = 10 * 60_000,
    private readonly rateLimit: EventRateLimit = DEFAULT_EVENT_RATE_LIMIT,
  ) {
    this.core = makeApiClient(kc, k8s.CoreV1Api);
  }

  /** Fire and forget: an event that cannot be written is logged, never fatal. */
  emit(obj: InvolvedObject, type: EventType, reason: string, message: string): void {
    void this.record(obj, type, reason, message).catch((err: unknown) => {
      this.logger.warn({ err: errorMessage(err), reason, object: `${obj.kind}/${obj.name}` }, 'writing an event failed');
    });
  }

  async record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
    const namespace = obj.namespace ?? 'default';
    const key = `${obj.kind}/${namespace}/${obj.name}/${obj.uid ?? ''}/${type}/${reason}/${text}`;
    const now = new Date();
    if (!this.take(`${obj.kind}/${namespace}/${obj.name}/${obj.uid ?? ''}`, now.getTime())) {
      this.dropped++;
      this.logger.debug({ reason, object: `${obj.kind}/${obj.name}` }, 'event dropped: too many events for this object');
      return;
    }
    const prior = this.seen.get(key);
    if (prior && now.getTime() - prior.last < this.aggregateMs) {
      prior.count++;
      prior.last = now.getTime();
      // Most recently used last: the bound below drops the least recently used first.
      this.seen.delete(key);
      this.seen.set(key, prior);
      try {
        await this.core.patchNamespacedEvent(
          { name: prior.name, namespace: prior.namespace, body: { count: prior.count, lastTimestamp: now } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
        return;
      } catch (err) {
        if (!(err instanceof k8s.ApiException) || err.code !== 404) throw err;
        // The Event expired (the API server drops them after an hour): write a new one.
      }
    }
    const name = `${obj.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.name,
          ...(obj.namespace ? { namespace: obj.namespace } : {}),
          ...(obj.uid ? { uid: obj.uid } : {}),
        },
        type,
        reason,
        message: text,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component, host: this.host },
        reportingComponent: this.component,
        reportingInstance: this.host,
      },
    });
    this.seen.set(key, { name, namespace, count: 1, first: now, last: now.getTime() });
    if (this.seen.size > MAX_TRACKED) this.prune(now.getTime());
  }

  /** Takes one of the object's tokens; false when it has none left. */
  private take(object: string, now: number): boolean {
    const { burst, refillMs } = this.rateLimit;
    const b = this.buckets.get(object);
    const tokens = b ? Math.min(burst, b.tokens + (now - b.at) / refillMs) : burst;
    this.buckets.delete(object);
    const ok = tokens >= 1;
    this.buckets.set(object, { tokens: ok ? tokens - 1 : tokens, at: now });
    if (!ok) return false;
    if (this.buckets.size > MAX_TRACKED) {
      // Least recently used first: Map keeps insertion order and every use re-inserts.
      for (const k of this.buckets.keys()) {
        if (this.buckets.size <= MAX_TRACKED) break;
        this.buckets.delete(k);
      }
    }
    return true;
  }

  /** Drops stale entries, then the least recently used, down to the bound. */
  private prune(now: number): void {
    for (const [k, v] of this.seen) if (now - v.last > this.aggregateMs) this.seen.delete(k);
    for (const k of this.seen.keys()) {
      if (this.seen.size <= MAX_TRACKED) break;
      this.seen.delete(k);
    }
  }

  /** How many events and objects are remembered (bounded by MAX_TRACKED each). */
  tracked(): { events: number; objects: number } {
    return { events: this.seen.size, objects: this.buckets.size };
  }
}
