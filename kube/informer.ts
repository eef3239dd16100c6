import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { linkedAbort } from './abort.js';
import { Backoff } from './backoff.js';
import { sleep, systemClock } from './clock.js';
import { KubeApiError, kubeGet, kubeGetJson, type KubeEndpoint, type KubeStatus, type Query } from './kube-http.js';
import { errorMessage } from './errors.js';

export interface ResourceInformerOptions {
  /** client-node's KubeConfig, or kube/kubeconfig.ts's KubeAccess. */
  kc: KubeEndpoint;
  /** The collection's URL path: '/api/v1/pods', '/api/v1/namespaces/x/configmaps', '/apis/g/v/plural'. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Metadata only (PartialObjectMetadata): for Secrets, whose data the controller must not
   * hold in memory just to learn that one changed.
   */
  metadataOnly?: boolean;
  /** A full relist this often (0: never), catching whatever a stalled watch missed. Default 5 min. */
  resyncMs?: number;
  /** Server-side watch timeout; each watch gets between this and twice this. Default 300 s. */
  watchTimeoutSeconds?: number;
  /** Items per list page. Default 500. */
  pageSize?: number;
  /** First reconnect delay after an error; doubles up to backoffMaxMs. Default 500 ms. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Timeout of each list page request. Default 60 s. */
  listTimeoutMs?: number;
  /**
   * Reduces each object to what its readers use before it is cached (Pods drop
   * managedFields and the container fields nobody reads): the cache of a large cluster is
   * most of the manager's memory.
   */
  transform?: (obj: KubernetesObject) => KubernetesObject;
  logger?: Logger;
}

export interface InformerHandlers<T> {
  add: (obj: T) => void;
  update: (obj: T, old: T) => void;
  /** The object's last state: from the DELETED event, or the cache when a relist found it gone. */
  delete: (obj: T) => void;
  /** The cache has been filled by the first list; emitted once. */
  synced: () => void;
  /** Informational: the informer reconnects by itself. */
  error: (err: Error) => void;
}

export interface InformerStats {
  lists: number;
  watches: number;
  events: number;
  errors: number;
}

type WatchEnd = { kind: 'closed'; healthy: boolean } | { kind: 'resync' } | { kind: 'stopped' };

/** A watch that failed; `opened` tells whether it got as far as a stream. */
class WatchFailure extends Error {
  constructor(
    readonly opened: boolean,
    readonly healthy: boolean,
    cause: unknown,
  ) {
    super(errorMessage(cause), { cause });
    this.name = 'WatchFailure';
  }
}

class ResyncRequested extends Error {}

/** A watch that has lived this long, or delivered anything, was healthy: reset the backoff. */
const HEALTHY_WATCH_MS = 10_000;
/** Beyond the server-side timeout: a watch still open then is on a half-open connection. */
const WATCH_STALL_GRACE_MS = 30_000;

/**
 * A list-watch cache of one collection, built to survive what client-node's informer does
 * not (NOTES.md): it restarts itself with backoff after any error, relists on 410 Gone
 * (status or ERROR event), diffs every relist against the cache so deletions missed while
 * disconnected are reported, and bounds each watch with a server-side timeout, a client-side
 * stall deadline and a periodic relist so a half-open connection cannot freeze it.
 *
 * Objects are the API server's JSON as is (timestamps are strings), from the list and the
 * watch alike; the list is done over the same raw HTTP as the watch so that selectors,
 * pagination and object shape cannot differ between the two.
 */
export class ResourceInformer<T extends KubernetesObject> {
  private readonly opts: Required<Omit<ResourceInformerOptions, 'labelSelector' | 'fieldSelector' | 'logger' | 'metadataOnly' | 'transform'>> &
    Pick<ResourceInformerOptions, 'labelSelector' | 'fieldSelector' | 'transform'>;
  private readonly log: Logger | undefined;
  private readonly handlers: { [E in keyof InformerHandlers<T>]: InformerHandlers<T>[E][] } = {
    add: [],
    update: [],
    delete: [],
    synced: [],
    error: [],
  };

  private cache = new Map<string, T>();
  private resourceVersion = '';
  private synced = false;
  private readonly counters: InformerStats = { lists: 0, watches: 0, events: 0, errors: 0 };
  /** A watch stream is open now. */
  private watching = false;
  /** When (Date.now) the API server last answered this informer: a list, a watch opening, an event. */
  private lastContact = 0;

  private stopController: AbortController | undefined;
  private running: Promise<void> | undefined;
  private watchController: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDue = false;
  private readonly backoff: Backoff;

  private readonly metadataOnly: boolean;

  constructor(opts: ResourceInformerOptions) {
    this.metadataOnly = opts.metadataOnly ?? false;
    this.opts = {
      kc: opts.kc,
      path: opts.path.replace(/\/+$/, ''),
      resyncMs: opts.resyncMs ?? 300_000,
      watchTimeoutSeconds: opts.watchTimeoutSeconds ?? 300,
      pageSize: opts.pageSize ?? 500,
      backoffInitialMs: opts.backoffInitialMs ?? 500,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      listTimeoutMs: opts.listTimeoutMs ?? 60_000,
      ...(opts.labelSelector !== undefined ? { labelSelector: opts.labelSelector } : {}),
      ...(opts.fieldSelector !== undefined ? { fieldSelector: opts.fieldSelector } : {}),
      ...(opts.transform !== undefined ? { transform: opts.transform } : {}),
    };
    if (!(this.opts.watchTimeoutSeconds >= 1)) throw new RangeError(`watchTimeoutSeconds must be >= 1, got ${this.opts.watchTimeoutSeconds}`);
    this.log = opts.logger?.child({ component: 'informer', path: this.opts.path });
    this.backoff = new Backoff(this.opts.backoffInitialMs, this.opts.backoffMaxMs);
  }

  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    this.handlers[event].push(handler);
    return this;
  }

  off<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    const list = this.handlers[event];
    const i = list.indexOf(handler);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** Starts listing and watching in the background; a no-op while running. */
  start(): void {
    if (this.running) return;
    const stop = new AbortController();
    this.stopController = stop;
    this.running = this.loop(stop.signal).catch((err: unknown) => {
      // The loop handles its own errors; reaching here is a bug, and must not be silent.
      this.log?.error({ err }, 'informer loop crashed');
    });
  }

  /** Stops and waits for the in-flight request to be aborted. The cache is kept. */
  async stop(): Promise<void> {
    this.stopController?.abort();
    this.clearResync();
    await this.running;
    this.running = undefined;
    this.stopController = undefined;
  }

  /** The cache has been filled by a list at least once. */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * How long the cache may have been missing changes: 0 while a watch is open, else the
   * time since the API server last answered (Infinity before it ever did).
   */
  staleForMs(now = Date.now()): number {
    if (this.watching) return 0;
    return this.lastContact === 0 ? Infinity : Math.max(0, now - this.lastContact);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** By `namespace/name`, or `name` for cluster-scoped objects. */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** The resourceVersion the next watch starts from. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  stats(): InformerStats {
    return { ...this.counters };
  }

  private async loop(stop: AbortSignal): Promise<void> {
    let needList = true;
    while (!stop.aborted) {
      if (needList || this.resyncDue) {
        try {
          this.resyncDue = false;
          await this.relist(stop);
          needList = false;
          this.armResync();
        } catch (err) {
          if (stop.aborted) break;
          // Also when this was a periodic relist: the next one is armed only by a success.
          needList = true;
          this.reportError(err, 'listing failed, retrying');
          await sleep(systemClock, this.backoff.next(), stop);
          continue;
        }
      }

      let end: WatchEnd;
      try {
        end = await this.watch(stop);
      } catch (err) {
        if (stop.aborted) break;
        const failure = err instanceof WatchFailure ? err : new WatchFailure(false, false, err);
        const cause = failure.cause;
        if (cause instanceof KubeApiError && cause.gone) {
          this.log?.info({ resourceVersion: this.resourceVersion }, 'resourceVersion too old, relisting');
          needList = true;
          continue;
        }
        this.reportError(cause, 'watch failed, reconnecting');
        // A watch that could not even be opened means we were cut off from the API server:
        // relist afterwards, which also finds deletions whose events have left its history.
        // Throttling (429) is the exception: a list would only add to the load.
        const throttled = cause instanceof KubeApiError && cause.statusCode === 429;
        if (!failure.opened && !throttled) needList = true;
        if (failure.healthy) this.backoff.reset();
        else await sleep(systemClock, this.backoff.next(), stop);
        continue;
      }

      if (end.kind === 'stopped') break;
      if (end.kind === 'closed') {
        if (end.healthy) this.backoff.reset();
        // A server that closes every watch at once must not make us spin.
        else await sleep(systemClock, this.backoff.next(), stop);
      }
    }
    this.clearResync();
  }

  private async relist(stop: AbortSignal): Promise<void> {
    const items: T[] = [];
    let resourceVersion = '';
    let continueToken: string | undefined;
    let pageSize: number | undefined = this.opts.pageSize;
    for (;;) {
      const query: Query = {
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: pageSize,
        continue: continueToken,
      };
      const scope = linkedAbort(stop);
      const timer = setTimeout(() => scope.controller.abort(new Error(`no answer in ${this.opts.listTimeoutMs} ms`)), this.opts.listTimeoutMs);
      let page: KubeList<T>;
      try {
        page = await kubeGetJson<KubeList<T>>(
          this.opts.kc,
          this.opts.path,
          query,
          scope.signal,
          `listing ${this.opts.path}`,
          this.metadataOnly ? 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json' : undefined,
        );
      } catch (err) {
        if (continueToken !== undefined && err instanceof KubeApiError && err.gone) {
          // The continue token outlived the snapshot it pointed into: list whole instead.
          this.log?.info('list continuation expired, listing without pages');
          items.length = 0;
          continueToken = undefined;
          pageSize = undefined;
          continue;
        }
        throw err;
      } finally {
        clearTimeout(timer);
        scope.dispose();
      }
      const kind = page.kind?.replace(/List$/, '');
      for (const item of page.items ?? []) {
        // List items come without apiVersion and kind; watch events carry them.
        items.push(this.shape({ ...item, apiVersion: item.apiVersion ?? page.apiVersion, kind: item.kind ?? kind }));
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue || undefined;
      if (!continueToken) break;
    }
    this.counters.lists++;
    this.lastContact = Date.now();
    this.replace(items, resourceVersion);
    if (!this.synced) {
      this.synced = true;
      this.log?.debug({ items: items.length, resourceVersion }, 'synced');
      this.emit('synced');
    }
  }

  /** Swaps in a fresh list and reports the difference to the old cache. */
  private replace(items: T[], resourceVersion: string): void {
    const old = this.cache;
    const next = new Map<string, T>();
    for (const item of items) {
      const key = keyOf(item);
      if (key) next.set(key, item);
    }
    this.cache = next;
    this.resourceVersion = resourceVersion;
    for (const [key, obj] of next) {
      const before = old.get(key);
      if (!before) this.emit('add', obj);
      else if (rvOf(before) !== rvOf(obj)) this.emit('update', obj, before);
    }
    for (const [key, obj] of old) if (!next.has(key)) this.emit('delete', obj);
  }

  private async watch(stop: AbortSignal): Promise<WatchEnd> {
    const base = this.opts.watchTimeoutSeconds;
    const timeoutSeconds = Math.floor(base * (1 + Math.random()));
    const scope = linkedAbort(stop);
    const controller = scope.controller;
    this.watchController = controller;
    const stall = setTimeout(
      () => controller.abort(new Error(`watch open longer than ${timeoutSeconds} s + grace: connection presumed dead`)),
      timeoutSeconds * 1000 + WATCH_STALL_GRACE_MS,
    );
    const signal = scope.signal;
    const startedAt = Date.now();
    let events = 0;
    let opened = false;
    const healthy = (): boolean => events > 0 || Date.now() - startedAt >= HEALTHY_WATCH_MS;
    try {
      const query: Query = {
        watch: 'true',
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      };
      const res = await kubeGet(
        this.opts.kc,
        this.opts.path,
        query,
        signal,
        `watching ${this.opts.path}`,
        this.metadataOnly ? 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json' : undefined,
      );
      opened = true;
      this.watching = true;
      this.lastContact = Date.now();
      this.counters.watches++;
      res.setEncoding('utf8');
      let buffer = '';
      for await (const chunk of res) {
        buffer += chunk as string;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          this.handleEvent(line);
          events++;
        }
      }
      return { kind: 'closed', healthy: healthy() };
    } catch (err) {
      if (stop.aborted) return { kind: 'stopped' };
      if (controller.signal.reason instanceof ResyncRequested) return { kind: 'resync' };
      throw new WatchFailure(opened, healthy(), controller.signal.aborted ? controller.signal.reason : err);
    } finally {
      if (this.watching) this.lastContact = Date.now();
      this.watching = false;
      clearTimeout(stall);
      scope.dispose();
      this.watchController = undefined;
    }
  }

  private handleEvent(line: string): void {
    let event: { type?: string; object?: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch (err) {
      throw new Error(`watching ${this.opts.path}: undecodable event: ${(err as Error).message}`, { cause: err });
    }
    this.counters.events++;
    this.lastContact = Date.now();
    if (event.type === 'ERROR') {
      const status = (event.object ?? {}) as KubeStatus;
      throw new KubeApiError(`watching ${this.opts.path}`, status.code ?? 500, status);
    }
    const obj = event.object && event.type !== 'BOOKMARK' ? this.shape(event.object as T) : (event.object as T | undefined);
    const rv = obj ? rvOf(obj) : undefined;
    if (rv) this.resourceVersion = rv;
    if (!obj || event.type === 'BOOKMARK') return;
    const key = keyOf(obj);
    if (!key) return;
    const before = this.cache.get(key);
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.cache.set(key, obj);
        if (!before) this.emit('add', obj);
        else if (rvOf(before) !== rv) this.emit('update', obj, before);
        break;
      case 'DELETED':
        // Not cached means never reported (it left the selector before we saw it): stay quiet.
        if (this.cache.delete(key)) this.emit('delete', obj);
        break;
      default:
        this.log?.debug({ type: event.type }, 'ignoring unknown watch event type');
    }
  }

  private shape(obj: T): T {
    return this.opts.transform ? (this.opts.transform(obj) as T) : obj;
  }

  private armResync(): void {
    this.clearResync();
    if (!(this.opts.resyncMs > 0)) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.resyncDue = true;
      this.watchController?.abort(new ResyncRequested('periodic relist'));
    }, this.opts.resyncMs);
  }

  private clearResync(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
  }

  private reportError(err: unknown, message: string): void {
    this.counters.errors++;
    const error = err instanceof Error ? err : new Error(String(err));
    this.log?.warn({ err: error }, message);
    this.emit('error', error);
  }

  private emit<E extends keyof InformerHandlers<T>>(event: E, ...args: Parameters<InformerHandlers<T>[E]>): void {
    for (const handler of [...this.handlers[event]]) {
      try {
        (handler as (...a: Parameters<InformerHandlers<T>[E]>) => void)(...args);
      } catch (err) {
        // A broken handler must not break the cache, nor the other handlers.
        this.log?.error({ err, event }, 'informer event handler threw');
      }
    }
  }
}

interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** The cache key: `namespace/name`, or `name` for cluster-scoped objects. */
export function keyOf(obj: KubernetesObject): string | undefined {
  const name = obj.metadata?.name;
  if (!name) return undefined;
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

function rvOf(obj: KubernetesObject): string | undefined {
  return obj.metadata?.resourceVersion;
}
