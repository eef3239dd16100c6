import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { GROUP, INVENTORY_LABEL, PLURAL, VERSION, inventoriesOf, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { BmcPool } from '../power/pool.js';
import { CredentialsCache, readCredentialsSecret } from '../power/secrets.js';
import { Extender } from '../extender/extender.js';
import { ExtenderMetrics } from '../extender/metrics.js';
import { buildExtenderServer } from '../extender/server.js';
import { Actuator } from '../controller/actuator.js';
import { PowerReader } from '../controller/power-readings.js';
import type { ParsedMachine } from '../api/inventory.js';
import type { BmcCredentials } from '../power/credentials.js';
import { Drainer } from '../controller/drain.js';
import { EventRecorder, podRef } from '../kube/events.js';
import { ResourceInformer } from '../kube/informer.js';
import { NamespacedInformers, type Informer } from '../kube/namespaced-informers.js';
import { LeaderElector } from '../kube/leader.js';
import { FencedError } from '../power/errors.js';
import { ControllerMetrics } from '../controller/metrics.js';
import { WorkQueue } from '../kube/queue.js';
import { FEASIBILITY_ANNOTATION, PodVerdicts } from '../controller/verdict.js';
import { Reconciler, type ClusterCaps, type Stores } from '../controller/reconcile/reconciler.js';
import { KubeApiError, kubeGetJson } from '../kube/kube-http.js';
import { WebhookMetrics } from '../webhook/metrics.js';
import { WebhookServer } from '../webhook/server.js';
import { TRAFFIC_PLURAL, type TrafficReport } from '../api/v1alpha1/trafficreport.js';
import { TrafficDemand } from '../controller/traffic.js';
import { Watches, type SecretMetadata, type WatchedInformers } from '../controller/watches.js';
import { slimNode, slimPod } from '../controller/pod-shape.js';
import { listenOn, listeningAddresses, readServingCertificate } from './listeners.js';
import { parseOptionalBindAddress } from '../kube/net.js';
import { errorMessage } from '../kube/errors.js';
import { makeApiClient } from '../kube/client.js';

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
  /** A BMC call needs the lease held with this much left before the renew deadline. Default 1 s. */
  fencingMarginMs?: number;
  /** /healthz fails while one reconcile has run longer than this (the worker is stuck). Default 5 min. */
  reconcileWatchdogMs?: number;
  /** /readyz fails while a watch has been down longer than this. Default 30 s. */
  watchStaleMs?: number;
  /** Between two power readings of one BMC; 0 turns readings off (the inventory figures stand in). Default 60 s. */
  powerReadingIntervalMs?: number;
  /** Called when this replica loses leadership: the process should exit and start anew. */
  onLeadershipLost?: () => void;
}

/**
 * The `bamel manager` process: informers (every replica keeps its caches warm, for the
 * webhook and the extender), leader election, and on the leader only the reconcile workers
 * that talk to BMCs; metrics and health endpoints; graceful shutdown.
 */
export class Manager {
  readonly metrics = new ControllerMetrics();
  readonly identity: string;
  readonly stores: Stores;
  private readonly informers: Omit<WatchedInformers, 'trafficReports'>;
  /**
   * The eBPF agents' TrafficReports. Outside `informers`: the manager does not wait for it
   * (a cluster without agents, or without the CRD, still scales on pending pods).
   */
  private readonly trafficReports: ResourceInformer<TrafficReport>;
  readonly traffic: TrafficDemand;
  private readonly pool: BmcPool;
  private readonly actuator: Actuator;
  private readonly powerReader: PowerReader | undefined;
  private readonly reconciler: Reconciler;
  private queue: WorkQueue | undefined;
  private elector: LeaderElector | undefined;
  private servers: FastifyInstance[] = [];
  private readonly stopping = new AbortController();
  private readonly watches: Watches;
  /** The reconcile running now, and since when (performance.now()), for the watchdog. */
  private reconciling: { key: string; since: number } | undefined;
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
    const informer = <T extends k8s.KubernetesObject>(path: string, extra: { labelSelector?: string; metadataOnly?: boolean; transform?: (o: k8s.KubernetesObject) => k8s.KubernetesObject } = {}): ResourceInformer<T> =>
      new ResourceInformer<T>({ kc: opts.kc, path, logger: log, resyncMs: 300_000, ...extra });
    const inNamespaces = opts.inventoryNamespaces?.length ? opts.inventoryNamespaces : undefined;
    const namespaced = <T extends k8s.KubernetesObject>(resource: string, extra: { labelSelector?: string; metadataOnly?: boolean }): Informer<T> =>
      inNamespaces
        ? new NamespacedInformers<T>({ kc: opts.kc, groupVersionPath: '/api/v1', resource, namespaces: inNamespaces, logger: log, resyncMs: 300_000, ...extra })
        : informer<T>(`/api/v1/${resource}`, extra);
    this.informers = {
      autoscalers: informer<BareMetalAutoscaler>(`/apis/${GROUP}/${VERSION}/${PLURAL}`, opts.autoscalerSelector ? { labelSelector: opts.autoscalerSelector } : {}),
      inventories: namespaced<k8s.V1ConfigMap>('configmaps', { labelSelector: `${INVENTORY_LABEL}=true` }),
      // Only the fields the controller and the extender read are cached (controller/pod-shape.ts).
      nodes: informer<k8s.V1Node>('/api/v1/nodes', { transform: slimNode }),
      pods: informer<k8s.V1Pod>('/api/v1/pods', { transform: slimPod }),
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
    const core = makeApiClient(opts.kc, k8s.CoreV1Api);
    const secrets = new CredentialsCache(
      (namespace, name, where) => readCredentialsSecret(core, namespace, name, where),
      (namespace, name) => this.informers.secrets.get(`${namespace}/${name}`)?.metadata?.resourceVersion,
    );
    const credentials = async (m: ParsedMachine, autoscaler: string): Promise<BmcCredentials> => {
      // The Secret lives in the namespace of the inventory the machine came from.
      const namespace = this.reconciler.fleets.originOf(autoscaler, m.name)?.namespace ?? this.inventoryNamespaceOf(autoscaler, m.name);
      return secrets.get(namespace, m.bmc.credentialsSecret, `machine ${m.name}`);
    };
    this.actuator = new Actuator({
      pool: this.pool,
      credentials,
      metrics: this.metrics,
      logger: log.child({ component: 'actuator' }),
      gracefulTimeoutMs: opts.gracefulTimeoutMs ?? 180_000,
      operationTimeoutMs: opts.bmcTimeouts?.operationMs ?? 300_000,
      ...(opts.leaderElect ? { fence: () => this.fence() } : {}),
      onDone: (autoscaler) => this.queue?.add(autoscaler),
    });
    const recorder = new EventRecorder(opts.kc, 'bamel-controller', this.identity, log.child({ component: 'events' }));
    if (opts.powerReadingIntervalMs !== 0) {
      const interval = opts.powerReadingIntervalMs ? { intervalMs: opts.powerReadingIntervalMs } : {};
      const onChange = (autoscaler: string) => this.queue?.add(autoscaler);
      this.powerReader = new PowerReader({ pool: this.pool, credentials, metrics: this.metrics, logger: log.child({ component: 'power-readings' }), onChange, ...interval });
    }
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
        operationTimeoutMs: opts.bmcTimeouts?.operationMs ?? 300_000,
      },
      traffic: this.traffic,
      ...(this.powerReader ? { powerReader: this.powerReader } : {}),
    });
    this.watches = new Watches(
      { ...this.informers, trafficReports: this.trafficReports },
      {
        enqueue: (autoscaler) => this.queue?.add(autoscaler),
        podsChanged: () => this.reconciler.podsChanged(),
        podChanged: (pod) => this.verdicts?.podChanged(pod),
        machinesChanged: () => this.verdicts?.machinesChanged(),
        autoscalerDeleted: (name) => this.traffic.forget(name),
      },
    );
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

  /**
   * Before the autoscaler's first reconcile in this process (its fleet not built yet): the
   * namespace of its first inventory, else of the first autoscaler that has the machine.
   */
  private inventoryNamespaceOf(autoscaler: string, machine: string): string {
    const own = this.informers.autoscalers.get(autoscaler) ?? this.informers.autoscalers.list().find((a) => a.status?.machines?.some((m) => m.name === machine));
    return (own ? inventoriesOf(own.spec)[0]?.namespace : undefined) ?? 'bamel-system';
  }

  private enqueueAll(): void {
    this.watches.enqueueAll();
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
    this.actuator.lead(signal);
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
        this.reconciling = { key, since: performance.now() };
        let result;
        try {
          result = await this.reconciler.reconcile(key);
        } finally {
          this.reconciling = undefined;
        }
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
    const core = makeApiClient(this.opts.kc, k8s.CoreV1Api);
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
    const keep = (app: FastifyInstance | undefined): void => {
      if (app) this.servers.push(app);
    };
    keep(
      await listenOn(this.opts.metricsBindAddress, '--metrics-bind-address', log, (app) => {
        app.get('/metrics', async (_req, reply) => {
          reply.header('content-type', this.metrics.registry.contentType);
          return this.metrics.registry.metrics();
        });
      }),
    );
    keep(
      await listenOn(this.opts.healthProbeBindAddress, '--health-probe-bind-address', log, (app) => {
        app.get('/healthz', async (_req, reply) => {
          const stuck = this.stuckReconcile();
          if (stuck) return reply.code(503).send({ status: 'stuck', autoscaler: stuck.key, reconcilingForMs: stuck.ms });
          return { status: 'ok' };
        });
        app.get('/readyz', async (_req, reply) => {
          const notSynced = Object.entries(this.informers).filter(([, i]) => !i.hasSynced()).map(([n]) => n);
          if (notSynced.length > 0) return reply.code(503).send({ status: 'not ready', waitingFor: notSynced });
          const limit = this.opts.watchStaleMs ?? 30_000;
          const stale = Object.entries(this.informers)
            .map(([n, i]) => ({ informer: n, staleForMs: i.staleForMs() }))
            .filter((x) => x.staleForMs > limit);
          if (stale.length > 0) return reply.code(503).send({ status: 'not ready', staleWatches: stale });
          return { status: 'ok', leader: this.leading };
        });
      }),
    );
    if (this.webhook) await this.webhook.start();
    else log.info('webhook server off: no --webhook-cert-dir; BareMetalAutoscalers and inventories are not checked at admission');
    await this.serveExtender();
  }

  /** The scheduler extender (extender/): on every replica, over this replica's caches. */
  private async serveExtender(): Promise<void> {
    const bind = parseOptionalBindAddress(this.opts.extenderBindAddress, '--extender-bind-address');
    if (!bind) return;
    const https = this.opts.extenderCertDir ? readServingCertificate(this.opts.extenderCertDir, '--extender-cert-dir') : undefined;
    const metrics = new ExtenderMetrics(this.metrics.registry);
    const app = buildExtenderServer({
      extender: new Extender(this.informers, metrics),
      metrics,
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      logger: this.opts.logger.child({ component: 'extender' }) as FastifyBaseLogger,
      ...(https ? { https } : {}),
    });
    await app.listen(bind);
    this.servers.push(app);
    this.opts.logger.info({ address: listeningAddresses(app), https: https !== undefined }, 'scheduler extender serving');
  }

  /** Throws unless this replica holds the lease with the fencing margin left (leader election on). */
  private fence(): void {
    // At most a quarter of the renew deadline: short test leases keep a window to act in.
    const margin = Math.min(this.opts.fencingMarginMs ?? 1000, (this.opts.renewDeadlineMs ?? 10_000) / 4);
    if (this.elector?.holds(margin)) return;
    this.metrics.fenced.inc();
    this.opts.logger.warn({ marginMs: margin }, 'BMC call refused: this replica does not hold the lease with the fencing margin');
    throw new FencedError(`${this.identity} does not hold the lease ${this.opts.namespace}/${this.opts.leaseName ?? 'bamel-manager'} with ${margin} ms to spare: no BMC call`);
  }

  /** The reconcile that has run longer than the watchdog allows, if one has. */
  private stuckReconcile(): { key: string; ms: number } | undefined {
    const r = this.reconciling;
    if (!r) return undefined;
    const ms = Math.round(performance.now() - r.since);
    return ms > (this.opts.reconcileWatchdogMs ?? 300_000) ? { key: r.key, ms } : undefined;
  }

  /** Addresses the HTTP servers listen on (for tests). */
  addresses(): string[] {
    const servers = this.servers.flatMap(listeningAddresses);
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
    this.watches.stop();
    this.actuator.abortAll();
    await this.electionDone;
    await Promise.all([...this.servers.map((s) => s.close()), this.webhook?.stop()]);
    await Promise.all([...Object.values(this.informers).map((i) => i.stop()), this.webhookAutoscalers?.stop()]);
    await this.trafficReports.stop();
    this.powerReader?.stop();
    await this.pool.close();
  }

  private reconcilerBusy(): boolean {
    return this.informers.autoscalers.list().some((a) => (a.status?.machines ?? []).some((m) => this.actuator.busy(m.name)));
  }
}
