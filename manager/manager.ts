import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { GROUP, INVENTORY_LABEL, PLURAL, SCALE_DOWN_DISABLED_ANNOTATION, VERSION, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { BmcPool } from '../power/pool.js';
import { readCredentialsSecret } from '../power/secrets.js';
import { Extender } from '../extender/extender.js';
import { ExtenderMetrics } from '../extender/metrics.js';
import { buildExtenderServer } from '../extender/server.js';
import { Actuator } from '../controller/actuator.js';
import { Drainer } from '../controller/drain.js';
import { EventRecorder, podRef } from '../kube/events.js';
import { ResourceInformer } from '../kube/informer.js';
import { NamespacedInformers, type Informer } from '../kube/namespaced-informers.js';
import { LeaderElector } from '../kube/leader.js';
import { ControllerMetrics } from '../controller/metrics.js';
import { isNodeReady, unschedulableSince } from '../controller/observe.js';
import { WorkQueue } from '../kube/queue.js';
import { FEASIBILITY_ANNOTATION, PodVerdicts } from '../controller/verdict.js';
import { Reconciler, type ClusterCaps, type Stores } from '../controller/reconciler.js';
import { KubeApiError, kubeGetJson } from '../kube/kube-http.js';
import { WebhookMetrics } from '../webhook/metrics.js';
import { WebhookServer } from '../webhook/server.js';
import { TRAFFIC_PLURAL, type TrafficReport } from '../api/v1alpha1/trafficreport.js';
import { TrafficDemand } from '../controller/traffic.js';
import { parseOptionalBindAddress } from '../kube/net.js';
import { errorMessage } from '../kube/errors.js';

export interface ManagerOptions {
  kc: k8s.KubeConfig;
  /** Where the leader Lease lives (the manager's own namespace). */
  namespace: string;
  leaderElect: boolean;
  identity?: string;
  leaseName?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** host:port, or "0" to serve no metrics. */
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  /** host:port of the scheduler extender, or "0" (the default) to serve none. */
  extenderBindAddress?: string;
  /** A directory with tls.crt and tls.key: the extender serves HTTPS. */
  extenderCertDir?: string;
  caps: ClusterCaps;
  /** Only autoscalers matching this label selector (sharding among manager deployments). */
  autoscalerSelector?: string;
  /**
   * Namespaces holding inventories and their credentials Secrets: ConfigMaps and Secrets are
   * watched there only (a namespaced Role suffices). Absent: every namespace.
   */
  inventoryNamespaces?: readonly string[];
  settleGraceMs?: number;
  quarantineBaseMs?: number;
  gracefulTimeoutMs?: number;
  bmcTimeouts?: { connectMs?: number; requestMs?: number; operationMs?: number };
  logger: Logger;
  /** host:port of the admission webhook server, served by every replica. Default ":9443". */
  webhookBindAddress?: string;
  /** Directory holding the webhook's tls.crt and tls.key; without it the webhook server stays off. */
  webhookCertDir?: string;
  /** Called when this replica loses leadership: the process should exit and start anew. */
  onLeadershipLost?: () => void;
}

/** A Secret as the metadata-only watch delivers it (PartialObjectMetadata): never its data. */
interface SecretMetadata extends k8s.KubernetesObject {
  metadata?: k8s.V1ObjectMeta;
}

/** Pending pods are batched: decided 250 ms after the last new one, at most 2 s after the first. */
const BATCH_IDLE_MS = 250;
const BATCH_MAX_MS = 2000;

/**
 * The `bamel manager` process: informers (every replica keeps its caches warm, for the
 * webhook and the extender), leader election, and on the leader only the reconcile workers
 * that talk to BMCs; metrics and health endpoints; graceful shutdown.
 */
export class Manager {
  readonly metrics = new ControllerMetrics();
  readonly identity: string;
  readonly stores: Stores;
  private readonly informers: {
    autoscalers: ResourceInformer<BareMetalAutoscaler>;
    inventories: Informer<k8s.V1ConfigMap>;
    nodes: ResourceInformer<k8s.V1Node>;
    pods: ResourceInformer<k8s.V1Pod>;
    pdbs: ResourceInformer<k8s.V1PodDisruptionBudget>;
    secrets: Informer<SecretMetadata>;
  };
  /**
   * The eBPF agents' TrafficReports. Outside `informers`: the manager does not wait for it
   * (a cluster without agents, or without the CRD, still scales on pending pods).
   */
  private readonly trafficReports: ResourceInformer<TrafficReport>;
  readonly traffic: TrafficDemand;
  private readonly pool: BmcPool;
  private readonly actuator: Actuator;
  private readonly reconciler: Reconciler;
  private queue: WorkQueue | undefined;
  private elector: LeaderElector | undefined;
  private servers: FastifyInstance[] = [];
  private readonly stopping = new AbortController();
  private batchFirst: number | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private leading = false;
  private electionDone: Promise<void> | undefined;
  /** The leader's pod feasibility marks (verdict.ts); undefined on followers. */
  private verdicts: PodVerdicts | undefined;
  private readonly webhook: WebhookServer | undefined;
  /** With --autoscaler-selector, the webhook still needs every autoscaler (overlap is cluster-wide). */
  private readonly webhookAutoscalers: ResourceInformer<BareMetalAutoscaler> | undefined;

  constructor(private readonly opts: ManagerOptions) {
    this.identity = opts.identity ?? `${hostname()}_${Math.random().toString(36).slice(2, 10)}`;
    const log = opts.logger;
    const informer = <T extends k8s.KubernetesObject>(path: string, extra: { labelSelector?: string; metadataOnly?: boolean } = {}): ResourceInformer<T> =>
      new ResourceInformer<T>({ kc: opts.kc, path, logger: log, resyncMs: 300_000, ...extra });
    const inNamespaces = opts.inventoryNamespaces?.length ? opts.inventoryNamespaces : undefined;
    const namespaced = <T extends k8s.KubernetesObject>(resource: string, extra: { labelSelector?: string; metadataOnly?: boolean }): Informer<T> =>
      inNamespaces
        ? new NamespacedInformers<T>({ kc: opts.kc, groupVersionPath: '/api/v1', resource, namespaces: inNamespaces, logger: log, resyncMs: 300_000, ...extra })
        : informer<T>(`/api/v1/${resource}`, extra);
    this.informers = {
      autoscalers: informer<BareMetalAutoscaler>(`/apis/${GROUP}/${VERSION}/${PLURAL}`, opts.autoscalerSelector ? { labelSelector: opts.autoscalerSelector } : {}),
      inventories: namespaced<k8s.V1ConfigMap>('configmaps', { labelSelector: `${INVENTORY_LABEL}=true` }),
      nodes: informer<k8s.V1Node>('/api/v1/nodes'),
      pods: informer<k8s.V1Pod>('/api/v1/pods'),
      pdbs: informer<k8s.V1PodDisruptionBudget>('/apis/policy/v1/poddisruptionbudgets'),
      // Credentials Secrets: metadata only; their data is read when a BMC is called.
      secrets: namespaced<SecretMetadata>('secrets', { metadataOnly: true }),
    };
    this.stores = this.informers;
    this.trafficReports = informer<TrafficReport>(`/apis/${GROUP}/${VERSION}/${TRAFFIC_PLURAL}`);
    const trafficEvents = new EventRecorder(opts.kc, 'bamel-controller', this.identity, log.child({ component: 'events' }));
    this.traffic = new TrafficDemand(
      { reports: this.trafficReports, pods: this.informers.pods, nodes: this.informers.nodes },
      {
        onSurge: (autoscaler, surge, replica) => {
          log.info({ autoscaler, surge, workload: `${replica.metadata?.namespace}/${replica.metadata?.name}` }, 'traffic surge: room for one more replica is needed');
          trafficEvents.emit({ apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', name: autoscaler }, 'Normal', 'NetworkPressure', `${surge}: no Ready node has room for one more replica`);
        },
      },
    );
    this.pool = new BmcPool({
      logger: log.child({ component: 'power' }),
      ...(opts.bmcTimeouts ? { timeouts: opts.bmcTimeouts } : {}),
      ...(opts.gracefulTimeoutMs !== undefined ? { gracefulTimeoutMs: opts.gracefulTimeoutMs } : {}),
    });
    const core = opts.kc.makeApiClient(k8s.CoreV1Api);
    this.actuator = new Actuator({
      pool: this.pool,
      credentials: async (m, autoscaler) => {
        const namespace = this.informers.autoscalers.get(autoscaler)?.spec.inventory.namespace ?? this.inventoryNamespaceOf(m.name);
        return readCredentialsSecret(core, namespace, m.bmc.credentialsSecret, `machine ${m.name}`);
      },
      metrics: this.metrics,
      logger: log.child({ component: 'actuator' }),
      gracefulTimeoutMs: opts.gracefulTimeoutMs ?? 180_000,
      onDone: (autoscaler) => this.queue?.add(autoscaler),
    });
    const recorder = new EventRecorder(opts.kc, 'bamel-controller', this.identity, log.child({ component: 'events' }));
    const drainer = new Drainer({
      kc: opts.kc,
      logger: log.child({ component: 'drain' }),
      metrics: this.metrics,
      onChange: (autoscaler) => this.queue?.add(autoscaler),
      onEvicted: (pod, machine, autoscaler) =>
        recorder.emit(
          podRef(pod),
          'Normal',
          'Evicted',
          `evicted by bamel to drain ${machine} before powering it off (autoscaler ${autoscaler})`,
        ),
    });
    this.reconciler = new Reconciler({
      kc: opts.kc,
      stores: this.stores,
      pool: this.pool,
      actuator: this.actuator,
      recorder,
      drainer,
      metrics: this.metrics,
      logger: log.child({ component: 'reconciler' }),
      options: {
        identity: this.identity,
        settleGraceMs: opts.settleGraceMs ?? 15_000,
        quarantineBaseMs: opts.quarantineBaseMs ?? 60_000,
        quarantineMaxMs: 3_600_000,
        readyAbsorbMs: 60_000,
        resyncMs: 30_000,
        caps: opts.caps,
      },
      traffic: this.traffic,
    });
    this.wireEvents();
    if (opts.webhookCertDir) {
      this.webhookAutoscalers = opts.autoscalerSelector ? informer<BareMetalAutoscaler>(`/apis/${GROUP}/${VERSION}/${PLURAL}`) : undefined;
      this.webhook = new WebhookServer({
        bindAddress: opts.webhookBindAddress ?? ':9443',
        certDir: opts.webhookCertDir,
        stores: { autoscalers: this.webhookAutoscalers ?? this.informers.autoscalers, inventories: this.informers.inventories, secrets: this.informers.secrets },
        readConfigMap: async (namespace, name, signal) => {
          const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`;
          try {
            return await kubeGetJson<k8s.V1ConfigMap>(opts.kc, path, {}, signal, `reading ConfigMap ${namespace}/${name}`);
          } catch (err) {
            if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
            throw err;
          }
        },
        metrics: new WebhookMetrics(this.metrics.registry),
        logger: log.child({ component: 'webhook' }),
      });
    }
  }

  /** Machine name → the namespace of the inventory that lists it (for its credentials Secret). */
  private inventoryNamespaceOf(machine: string): string {
    for (const a of this.informers.autoscalers.list()) {
      if (a.status?.machines?.some((m) => m.name === machine)) return a.spec.inventory.namespace;
    }
    return this.informers.autoscalers.list()[0]?.spec.inventory.namespace ?? 'bamel-system';
  }

  private enqueueAll(): void {
    for (const a of this.informers.autoscalers.list()) this.queue?.add(a.metadata.name);
  }

  private wireEvents(): void {
    const { autoscalers, inventories, nodes, pods, pdbs, secrets } = this.informers;
    autoscalers.on('add', (a) => this.queue?.add(a.metadata.name));
    autoscalers.on('update', (a) => this.queue?.add(a.metadata.name));
    autoscalers.on('delete', (a) => {
      this.traffic.forget(a.metadata.name);
      this.queue?.add(a.metadata.name);
    });
    // A new TrafficReport: the autoscalers that watch network pressure look again.
    const byTraffic = (): void => {
      for (const a of autoscalers.list()) {
        const n = a.spec.pressure.network;
        if (n.requestsPerSecondRate > 0 || n.bytesPerSecondRate > 0) this.queue?.add(a.metadata.name);
      }
    };
    this.trafficReports.on('add', byTraffic);
    this.trafficReports.on('update', byTraffic);
    this.trafficReports.on('delete', byTraffic);
    const byInventory = (cm: k8s.V1ConfigMap): void => {
      for (const a of autoscalers.list()) {
        if (a.spec.inventory.namespace === cm.metadata?.namespace && a.spec.inventory.name === cm.metadata?.name) this.queue?.add(a.metadata.name);
      }
    };
    // The powered-off machines may be others: the pod feasibility marks are looked at again.
    for (const e of ['add', 'update', 'delete'] as const) {
      autoscalers.on(e, () => this.verdicts?.machinesChanged());
      inventories.on(e, () => this.verdicts?.machinesChanged());
    }
    inventories.on('add', byInventory);
    inventories.on('update', byInventory);
    inventories.on('delete', byInventory);
    const nodeChanged = (n: k8s.V1Node, old?: k8s.V1Node): void => {
      if (
        old &&
        isNodeReady(old) === isNodeReady(n) &&
        JSON.stringify(old.spec?.taints) === JSON.stringify(n.spec?.taints) &&
        old.metadata?.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION] === n.metadata?.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION]
      ) {
        return;
      }
      this.enqueueAll();
    };
    nodes.on('add', (n) => nodeChanged(n));
    nodes.on('update', nodeChanged);
    nodes.on('delete', (n) => nodeChanged(n));
    const podChanged = (p: k8s.V1Pod, old?: k8s.V1Pod): void => {
      this.verdicts?.podChanged(p);
      this.reconciler.podsChanged();
      const pendingNow = unschedulableSince(p) !== undefined;
      const pendingBefore = old ? unschedulableSince(old) !== undefined : false;
      if (pendingNow && !pendingBefore) this.batchPending();
      else if (
        pendingNow !== pendingBefore ||
        p.spec?.nodeName !== old?.spec?.nodeName ||
        p.status?.phase !== old?.status?.phase ||
        // Scale-down blockers (do-not-disrupt and the like) and pods starting to terminate.
        (p.spec?.nodeName !== undefined && (JSON.stringify(p.metadata?.annotations) !== JSON.stringify(old?.metadata?.annotations) || p.metadata?.deletionTimestamp !== old?.metadata?.deletionTimestamp))
      ) {
        this.debounceAll();
      }
    };
    // A PodDisruptionBudget changes what may be drained: the autoscalers look again.
    pdbs.on('add', () => this.debounceAll());
    pdbs.on('update', () => this.debounceAll());
    pdbs.on('delete', () => this.debounceAll());
    // A credentials Secret in an inventory's namespace: the machines of that inventory may
    // have new BMC credentials (the driver is rebuilt on its next call).
    const bySecret = (sec: SecretMetadata): void => {
      for (const a of autoscalers.list()) if (a.spec.inventory.namespace === sec.metadata?.namespace) this.queue?.add(a.metadata.name);
    };
    secrets.on('add', bySecret);
    secrets.on('update', bySecret);
    secrets.on('delete', bySecret);
    pods.on('add', (p) => podChanged(p));
    pods.on('update', podChanged);
    pods.on('delete', (p) => {
      this.reconciler.podsChanged();
      if (p.spec?.nodeName || unschedulableSince(p) !== undefined) this.debounceAll();
    });
  }

  /** A new unschedulable pod: decide once the burst is over (250 ms quiet), at most 2 s after the first. */
  private batchPending(): void {
    const now = Date.now();
    this.batchFirst ??= now;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    const due = Math.min(now + BATCH_IDLE_MS, this.batchFirst + BATCH_MAX_MS);
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined;
      this.batchFirst = undefined;
      this.enqueueAll();
    }, Math.max(0, due - now));
  }

  private debounceTimer: NodeJS.Timeout | undefined;
  private debounceAll(): void {
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.enqueueAll();
    }, 1000);
  }

  async start(): Promise<void> {
    const log = this.opts.logger;
    for (const inf of Object.values(this.informers)) inf.start();
    this.webhookAutoscalers?.start();
    this.trafficReports.start();
    await this.serve();
    if (!this.opts.leaderElect) {
      log.warn('leader election is off: this replica reconciles; run one replica only');
      this.startLeading(this.stopping.signal);
      return;
    }
    this.elector = new LeaderElector({
      client: this.opts.kc,
      namespace: this.opts.namespace,
      name: this.opts.leaseName ?? 'bamel-manager',
      identity: this.identity,
      ...(this.opts.leaseDurationMs !== undefined ? { leaseDurationMs: this.opts.leaseDurationMs } : {}),
      ...(this.opts.renewDeadlineMs !== undefined ? { renewDeadlineMs: this.opts.renewDeadlineMs } : {}),
      ...(this.opts.retryPeriodMs !== undefined ? { retryPeriodMs: this.opts.retryPeriodMs } : {}),
      logger: log.child({ component: 'leader' }),
      onStartedLeading: (signal) => this.startLeading(signal),
      onStoppedLeading: () => {
        this.metrics.isLeader.set(0);
        const was = this.leading;
        this.leading = false;
        void this.queue?.shutDown({ drain: false });
        this.actuator.abortAll();
        if (was && !this.stopping.signal.aborted) {
          log.error('leadership lost');
          this.opts.onLeadershipLost?.();
        }
      },
      onNewLeader: (id) => log.info({ leader: id }, 'leader observed'),
    });
    this.electionDone = this.elector.run(this.stopping.signal).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'leader election failed');
      this.opts.onLeadershipLost?.();
    });
  }

  private startLeading(signal: AbortSignal): void {
    const log = this.opts.logger;
    this.leading = true;
    this.metrics.isLeader.set(1);
    log.info({ identity: this.identity }, 'leading: reconciling autoscalers');
    const queue = new WorkQueue({
      name: 'autoscalers',
      logger: log.child({ component: 'queue' }),
      metrics: { depth: (d) => this.metrics.queueDepth.set(d) },
    });
    this.queue = queue;
    void (async () => {
      // Decisions need warm caches: an empty pod cache would look like no demand.
      while (!Object.values(this.informers).every((i) => i.hasSynced())) {
        if (signal.aborted) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      this.startVerdicts(signal);
      this.enqueueAll();
      await queue.run(async (key, s) => {
        if (s.aborted || signal.aborted) return;
        const result = await this.reconciler.reconcile(key);
        log.debug({ autoscaler: key, requeueAfterMs: result.requeueAfterMs }, 'reconciled');
        if (result.requeueAfterMs !== undefined) {
          if (result.requeueAfterMs <= 0) queue.addRateLimited(key);
          else {
            queue.forget(key);
            queue.addAfter(key, result.requeueAfterMs);
          }
        }
      }, 1);
    })().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'reconcile workers stopped'));
    signal.addEventListener('abort', () => void queue.shutDown({ drain: false }), { once: true });
  }

  /** Leader only, on warm caches: an empty autoscaler cache would look like no machine at all. */
  private startVerdicts(signal: AbortSignal): void {
    const core = this.opts.kc.makeApiClient(k8s.CoreV1Api);
    const recorder = new EventRecorder(this.opts.kc, 'bamel-controller', this.identity, this.opts.logger.child({ component: 'verdict-events' }));
    const verdicts = new PodVerdicts({
      autoscalers: this.informers.autoscalers,
      inventories: this.informers.inventories,
      pods: this.informers.pods,
      writeMark: async (namespace, name, resourceVersion, value) => {
        await core.patchNamespacedPod(
          { namespace, name, body: { metadata: { resourceVersion, annotations: { [FEASIBILITY_ANNOTATION]: value } } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      },
      emit: (obj, type, reason, message) => recorder.emit(obj, type, reason, message),
      logger: this.opts.logger.child({ component: 'verdict' }),
    });
    this.verdicts = verdicts;
    verdicts.machinesChanged();
    signal.addEventListener(
      'abort',
      () => {
        verdicts.stop();
        if (this.verdicts === verdicts) this.verdicts = undefined;
      },
      { once: true },
    );
  }

  private async serve(): Promise<void> {
    const log = this.opts.logger;
    const listen = async (address: string, flag: string, setup: (app: FastifyInstance) => void): Promise<void> => {
      const bind = parseOptionalBindAddress(address, flag);
      if (!bind) return;
      // pino's Logger and fastify's logger type differ only in generics fastify cannot infer.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      const app = Fastify({ loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger, disableRequestLogging: true });
      setup(app);
      await app.listen(bind);
      this.servers.push(app);
    };
    await listen(this.opts.metricsBindAddress, '--metrics-bind-address', (app) => {
      app.get('/metrics', async (_req, reply) => {
        reply.header('content-type', this.metrics.registry.contentType);
        return this.metrics.registry.metrics();
      });
    });
    await listen(this.opts.healthProbeBindAddress, '--health-probe-bind-address', (app) => {
      app.get('/healthz', async () => ({ status: 'ok' }));
      app.get('/readyz', async (_req, reply) => {
        const notSynced = Object.entries(this.informers).filter(([, i]) => !i.hasSynced()).map(([n]) => n);
        if (notSynced.length > 0) return reply.code(503).send({ status: 'not ready', waitingFor: notSynced });
        return { status: 'ok', leader: this.leading };
      });
    });
    if (this.webhook) await this.webhook.start();
    else log.info('webhook server off: no --webhook-cert-dir; BareMetalAutoscalers and inventories are not checked at admission');
    await this.serveExtender();
  }

  /** The scheduler extender (extender/): on every replica, over this replica's caches. */
  private async serveExtender(): Promise<void> {
    const bind = parseOptionalBindAddress(this.opts.extenderBindAddress, '--extender-bind-address');
    if (!bind) return;
    const { host, port } = bind;
    const dir = this.opts.extenderCertDir;
    let https: { cert: Buffer; key: Buffer } | undefined;
    if (dir) {
      try {
        https = { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) };
      } catch (err) {
        throw new Error(`--extender-cert-dir ${dir}: reading tls.crt and tls.key: ${errorMessage(err)}`, { cause: err });
      }
    }
    const metrics = new ExtenderMetrics(this.metrics.registry);
    const app = buildExtenderServer({
      extender: new Extender(this.informers, metrics),
      metrics,
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      logger: this.opts.logger.child({ component: 'extender' }) as FastifyBaseLogger,
      ...(https ? { https } : {}),
    });
    await app.listen({ host, port });
    this.servers.push(app);
    this.opts.logger.info({ address: app.addresses().map((a) => (typeof a === 'string' ? a : `${a.address}:${a.port}`)), https: https !== undefined }, 'scheduler extender serving');
  }

  /** Addresses the HTTP servers listen on (for tests). */
  addresses(): string[] {
    const servers = this.servers.flatMap((s) => s.addresses().map((a) => (typeof a === 'string' ? a : `${a.address}:${a.port}`)));
    return this.webhook ? [...servers, this.webhook.address()] : servers;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Stops reconciling, lets running BMC operations finish for up to graceMs, releases the lease. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.stopping.signal.aborted) return;
    await this.queue?.shutDown({ drain: false });
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.reconcilerBusy()) await new Promise((r) => setTimeout(r, 100));
    this.stopping.abort();
    this.actuator.abortAll();
    await this.electionDone;
    await Promise.all([...this.servers.map((s) => s.close()), this.webhook?.stop()]);
    await Promise.all([...Object.values(this.informers).map((i) => i.stop()), this.webhookAutoscalers?.stop()]);
    await this.trafficReports.stop();
    await this.pool.close();
  }

  private reconcilerBusy(): boolean {
    return this.informers.autoscalers.list().some((a) => (a.status?.machines ?? []).some((m) => this.actuator.busy(m.name)));
  }
}
