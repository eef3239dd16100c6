import type { Server as TlsServer } from 'node:tls';
import type * as k8s from '@kubernetes/client-node';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { INVENTORY_LABEL } from '../api/inventory.js';
import { InventoryParseCache } from './parse-cache.js';
import { GROUP, KIND, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { isPlainObject } from '../api/schema-check.js';
import { checkAutoscaler } from './autoscaler-checks.js';
import { CertificateWatcher } from './certificates.js';
import type { AdmissionContext, InventoryView } from './context.js';
import { checkInventory, checkInventoryDeletion } from './inventory-checks.js';
import type { VerdictLabel, WebhookMetrics, WebhookName } from './metrics.js';
import { MalformedReviewError, parseAdmissionReview, reviewResponse, type AdmissionRequest } from './review.js';
import type { Verdict } from './verdict.js';
import { parseBindAddress } from '../kube/net.js';
import { errorMessage } from '../kube/errors.js';

/**
 * The admission webhook server: HTTPS (fastify), AdmissionReview v1 on
 * POST /validate/baremetalautoscaler and POST /validate/inventory. Every manager replica
 * serves it from its own informer caches, so any replica can answer and none needs the lease.
 */

export const ROUTES: Readonly<Record<WebhookName, string>> = {
  baremetalautoscaler: '/validate/baremetalautoscaler',
  inventory: '/validate/inventory',
};

interface SyncedStore<T> {
  get(key: string): T | undefined;
  list(): T[];
  hasSynced(): boolean;
}

export interface WebhookStores {
  /** Every autoscaler (not only this manager's shard: overlap is a cluster-wide question). */
  autoscalers: SyncedStore<BareMetalAutoscaler>;
  /** Labelled inventory ConfigMaps, keyed namespace/name. */
  inventories: SyncedStore<k8s.V1ConfigMap>;
  /** Secrets, metadata only, keyed namespace/name. */
  secrets: SyncedStore<k8s.KubernetesObject>;
}

export interface WebhookServerOptions {
  /** host:port; ":9443" listens on every address. */
  bindAddress: string;
  certDir: string;
  stores: WebhookStores;
  /**
   * Reads one ConfigMap from the API server (undefined when it does not exist): for the
   * inventory an autoscaler names when the cache has not seen it (just created).
   */
  readConfigMap?: (namespace: string, name: string, signal: AbortSignal) => Promise<k8s.V1ConfigMap | undefined>;
  metrics: WebhookMetrics;
  logger: Logger;
  /** How long a request waits for the caches' first list before it is refused. Default 3 s. */
  syncWaitMs?: number;
  /** Budget of the live read. Default 2 s (the API server gives the webhook 5 s in all). */
  liveReadTimeoutMs?: number;
  /** Each answered review: which webhook, the handler's time, the verdict (benchmarks). */
  onAnswer?: (webhook: WebhookName, seconds: number, verdict: VerdictLabel) => void;
}

/** A body too large for any real object: the API server's own limit is 3 MiB per object. */
const BODY_LIMIT = 16 << 20;

export class WebhookServer {
  private app: FastifyInstance | undefined;
  private certificates: CertificateWatcher | undefined;
  /** Parsed inventories by ConfigMap object: the informer replaces the object on every change. */
  private readonly views = new WeakMap<object, InventoryView>();
  private readonly parses = new InventoryParseCache();

  constructor(private readonly opts: WebhookServerOptions) {}

  async start(): Promise<void> {
    const log = this.opts.logger;
    this.certificates = new CertificateWatcher({
      dir: this.opts.certDir,
      logger: log,
      onChange: (pair) => (this.app?.server as TlsServer | undefined)?.setSecureContext({ cert: pair.cert, key: pair.key }),
      onReload: (result) => this.opts.metrics.certificateReloads.inc({ result }),
    });
    const pair = await this.certificates.load();
    const app = Fastify({
      https: { cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' },
      // pino's Logger and fastify's logger type differ only in generics fastify cannot infer.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      loggerInstance: log.child({ component: 'webhook-http' }) as FastifyBaseLogger,
      // Per-request lines would be one per admission: the metrics count them instead.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: BODY_LIMIT,
      return503OnClosing: true,
    });
    this.app = app;
    // Any body, any content type: a malformed review is answered with what is wrong, by us.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
      const code = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      void reply.code(code).send(statusBody(code, err.message));
    });
    app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send(statusBody(404, `no route ${req.method} ${req.url}; the webhook serves POST ${ROUTES.baremetalautoscaler} and POST ${ROUTES.inventory}`));
    });
    for (const webhook of Object.keys(ROUTES) as WebhookName[]) {
      app.post(ROUTES[webhook], async (req, reply) => {
        const started = process.hrtime.bigint();
        const { code, body, verdict } = await this.answer(webhook, req.body);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.opts.metrics.requests.inc({ webhook, verdict });
        this.opts.metrics.duration.observe({ webhook }, seconds);
        this.opts.onAnswer?.(webhook, seconds, verdict);
        return reply.code(code).send(body);
      });
    }
    const { host, port } = parseBindAddress(this.opts.bindAddress, '--webhook-bind-address');
    await app.listen({ host, port });
    this.certificates.start();
    log.info({ address: this.address(), certDir: this.opts.certDir, serial: pair.serial, notAfter: pair.notAfter }, 'webhook server listening');
  }

  /** host:port it listens on. */
  address(): string {
    const a = this.app?.server.address();
    if (!a || typeof a === 'string') return a ?? '';
    return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async stop(): Promise<void> {
    this.certificates?.stop();
    await this.app?.close();
  }

  /** Reloads the certificate now rather than on the next change event. */
  async reloadCertificates(): Promise<void> {
    await this.certificates?.reload();
  }

  private async answer(webhook: WebhookName, body: unknown): Promise<{ code: number; body: unknown; verdict: VerdictLabel }> {
    let request: AdmissionRequest;
    try {
      request = parseAdmissionReview(body);
    } catch (err) {
      if (!(err instanceof MalformedReviewError)) throw err;
      return { code: 400, body: statusBody(400, err.message), verdict: 'malformed' };
    }
    try {
      const verdict = await this.review(webhook, request);
      const label: VerdictLabel = verdict.errors.length > 0 ? 'denied' : verdict.warnings.length > 0 ? 'warned' : 'allowed';
      const response = reviewResponse(request.uid, verdict);
      if (response.response.warnings) this.opts.metrics.warnings.inc({ webhook }, response.response.warnings.length);
      return { code: 200, body: response, verdict: label };
    } catch (err) {
      const message = errorMessage(err);
      this.opts.logger.error({ webhook, uid: request.uid, err: message }, 'admission check failed');
      return { code: 500, body: statusBody(500, `bamel webhook: the check failed: ${message}`), verdict: 'error' };
    }
  }

  private async review(webhook: WebhookName, request: AdmissionRequest): Promise<Verdict> {
    // Only what the configuration registers is checked: an inventory's DELETE (a machine in
    // flight depends on it); an autoscaler's DELETE, or a CONNECT, has nothing to refuse.
    const deletion = request.operation === 'DELETE' && webhook === 'inventory';
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE' && !deletion) return { errors: [], warnings: [] };
    const expected = webhook === 'baremetalautoscaler' ? { group: GROUP, kind: KIND } : { group: '', kind: 'ConfigMap' };
    if (request.kind.group !== expected.group || request.kind.kind !== expected.kind) {
      const got = `${request.kind.group === '' ? 'core' : request.kind.group}/${request.kind.kind}`;
      const want = `${expected.group === '' ? 'core' : expected.group}/${expected.kind}`;
      return { errors: [{ field: 'request.kind', message: `${ROUTES[webhook]} validates ${want}, not ${got}; fix the rules of the ValidatingWebhookConfiguration (config/webhook)` }], warnings: [] };
    }
    if (!(await this.synced())) {
      return { errors: [{ field: '', message: 'the bamel webhook is still loading its caches of autoscalers, inventories and Secrets; retry in a few seconds' }], warnings: [] };
    }
    if (deletion) {
      return checkInventoryDeletion(
        { ...(request.namespace ? { namespace: request.namespace } : {}), ...(request.name ? { name: request.name } : {}), ...(request.oldObject ? { oldObject: request.oldObject } : {}) },
        this.context(new Map()),
      );
    }
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { errors: [], warnings: [] };
    const object = request.object ?? {};
    const oldObject = request.oldObject ?? undefined;
    const operation = request.operation;
    if (webhook === 'inventory') {
      return checkInventory({ operation, object, ...(oldObject ? { oldObject } : {}), ...(request.namespace ? { namespace: request.namespace } : {}) }, this.context(new Map()));
    }
    const live = new Map<string, InventoryView>();
    try {
      for (const ref of [...inventoryRefs(object), ...inventoryRefs(oldObject)]) {
        if (!live.has(ref.key)) await this.lookUpInventory(ref, live);
      }
    } catch (err) {
      this.opts.metrics.inventoryLookups.inc({ source: 'error' });
      const message = errorMessage(err);
      return { errors: [{ field: 'spec.inventory', message: `cannot read the inventory to check it (${message}); retry` }], warnings: [] };
    }
    return checkAutoscaler({ operation, object, ...(oldObject ? { oldObject } : {}) }, this.context(live));
  }

  /**
   * The inventory an autoscaler names, from the cache; read live when the cache does not
   * have it. `kubectl apply -f dir/` creates the inventory and then the autoscaler within
   * milliseconds, and this replica's watch may not have delivered the ConfigMap yet: judging
   * by the cache alone would refuse a correct pair of manifests now and then. A hit in the
   * cache needs no read (a cached inventory is at most a watch latency old, and an
   * inventory's updates pass this webhook's own checks); only a miss costs one GET, the
   * rare case, within the API server's timeout.
   */
  private async lookUpInventory(ref: { namespace: string; name: string; key: string }, live: Map<string, InventoryView>): Promise<void> {
    if (this.opts.stores.inventories.get(ref.key) !== undefined) {
      this.opts.metrics.inventoryLookups.inc({ source: 'cache' });
      return;
    }
    if (!this.opts.readConfigMap) {
      this.opts.metrics.inventoryLookups.inc({ source: 'missing' });
      return;
    }
    const signal = AbortSignal.timeout(this.opts.liveReadTimeoutMs ?? 2000);
    const cm = await this.opts.readConfigMap(ref.namespace, ref.name, signal);
    this.opts.metrics.inventoryLookups.inc({ source: cm === undefined ? 'missing' : 'live' });
    if (cm !== undefined) live.set(ref.key, this.viewOf(cm));
  }

  private context(live: Map<string, InventoryView>): AdmissionContext {
    const { autoscalers, inventories, secrets } = this.opts.stores;
    return {
      autoscalers: () => autoscalers.list(),
      inventory: (namespace, name) => {
        const key = `${namespace}/${name}`;
        const cached = inventories.get(key);
        if (cached !== undefined) return this.viewOf(cached);
        return live.get(key) ?? { state: 'missing' };
      },
      parseInventory: (cm) => this.parses.parse(cm),
      secretExists: (namespace, name) => (secrets.hasSynced() ? secrets.get(`${namespace}/${name}`) !== undefined : undefined),
    };
  }

  private viewOf(cm: k8s.V1ConfigMap): InventoryView {
    const hit = this.views.get(cm);
    if (hit) return hit;
    let view: InventoryView;
    if (cm.metadata?.labels?.[INVENTORY_LABEL] !== 'true') view = { state: 'unlabelled' };
    else {
      const result = this.parses.parse(cm);
      view = result.ok ? { state: 'valid', machines: result.inventory.machines } : { state: 'invalid', errors: result.errors };
    }
    this.views.set(cm, view);
    return view;
  }

  private async synced(): Promise<boolean> {
    const { autoscalers, inventories, secrets } = this.opts.stores;
    const all = (): boolean => autoscalers.hasSynced() && inventories.hasSynced() && secrets.hasSynced();
    const deadline = Date.now() + (this.opts.syncWaitMs ?? 3000);
    while (!all()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }
}

/** Every inventory an autoscaler object names (spec.inventory and spec.inventories), read before its checks run. */
function inventoryRefs(object: unknown): { namespace: string; name: string; key: string }[] {
  if (!isPlainObject(object) || !isPlainObject(object.spec)) return [];
  const { inventory, inventories } = object.spec;
  const out: { namespace: string; name: string; key: string }[] = [];
  const listed: unknown[] = Array.isArray(inventories) ? (inventories as unknown[]).slice(0, 64) : [];
  for (const ref of [inventory, ...listed]) {
    if (!isPlainObject(ref)) continue;
    const { namespace, name } = ref;
    if (typeof namespace !== 'string' || typeof name !== 'string' || namespace === '' || name === '') continue;
    out.push({ namespace, name, key: `${namespace}/${name}` });
  }
  return out;
}

/** A metav1.Status body for answers that are not AdmissionReviews (400, 404, 500). */
function statusBody(code: number, message: string): Record<string, unknown> {
  const reasons: Record<number, string> = { 400: 'BadRequest', 404: 'NotFound', 413: 'RequestEntityTooLarge', 415: 'UnsupportedMediaType', 500: 'InternalError' };
  return { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason: reasons[code] ?? 'Failure', message };
}
