import { Counter, Histogram, type Registry } from 'prom-client';

/** Admission is on the API server's request path: its buckets start well under a millisecond. */
export const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type WebhookName = 'baremetalautoscaler' | 'inventory';
/** allowed, warned (allowed with warnings), denied, malformed (400), error (500). */
export type VerdictLabel = 'allowed' | 'warned' | 'denied' | 'malformed' | 'error';

/** The webhook's metrics, in the manager's registry: bamel_webhook_*. */
export class WebhookMetrics {
  readonly requests: Counter<'webhook' | 'verdict'>;
  readonly duration: Histogram<'webhook'>;
  readonly warnings: Counter<'webhook'>;
  readonly inventoryLookups: Counter<'source'>;
  readonly certificateReloads: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'bamel_webhook_requests_total',
      help: 'Admission requests by webhook (baremetalautoscaler, inventory) and verdict (allowed, warned, denied, malformed, error).',
      labelNames: ['webhook', 'verdict'],
      registers,
    });
    this.duration = new Histogram({
      name: 'bamel_webhook_request_duration_seconds',
      help: 'Time to answer one admission request, from the body parsed to the answer sent.',
      labelNames: ['webhook'],
      buckets: ADMISSION_BUCKETS,
      registers,
    });
    this.warnings = new Counter({
      name: 'bamel_webhook_warnings_total',
      help: 'Warnings returned with admitted objects.',
      labelNames: ['webhook'],
      registers,
    });
    this.inventoryLookups = new Counter({
      name: 'bamel_webhook_inventory_lookups_total',
      help: "Where the inventory an autoscaler names was found: cache, live (a GET, the cache had not seen it yet), missing, error.",
      labelNames: ['source'],
      registers,
    });
    this.certificateReloads = new Counter({
      name: 'bamel_webhook_certificate_reloads_total',
      help: 'Serving certificate reloads from --webhook-cert-dir by result (ok, error).',
      labelNames: ['result'],
      registers,
    });
  }
}
