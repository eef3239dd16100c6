import { Counter, Histogram, type Registry } from 'prom-client';
import type { FilterObserver } from './extender.js';
import type { Refusal } from './standings.js';

/** Buckets for one extender request: kube-scheduler waits for it on every pod it schedules. */
export const EXTENDER_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The extender's series, registered into the manager's registry (served on its /metrics). */
export class ExtenderMetrics implements FilterObserver {
  readonly requests: Counter<'verb' | 'code'>;
  readonly latency: Histogram<'verb'>;
  readonly refusedNodes: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'bamel_extender_requests_total',
      help: 'Requests from kube-scheduler by verb (filter, prioritize) and HTTP status code.',
      labelNames: ['verb', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'bamel_extender_request_duration_seconds',
      help: 'Time to answer one extender request, by verb (body parsing and validation included).',
      labelNames: ['verb'],
      buckets: EXTENDER_LATENCY_BUCKETS,
      registers,
    });
    this.refusedNodes = new Counter({
      name: 'bamel_extender_refused_nodes_total',
      help: 'Nodes the filter refused, by reason (Draining, PoweringOff, Quarantined, DrainNext, DrainingTaint).',
      labelNames: ['reason'],
      registers,
    });
  }

  refused(kind: Refusal['kind'], count = 1): void {
    this.refusedNodes.inc({ reason: kind }, count);
  }
}
