import type { KubernetesObject } from '@kubernetes/client-node';
import { ResourceInformer, type InformerHandlers, type ResourceInformerOptions } from './informer.js';

/**
 * One namespaced collection watched in a fixed set of namespaces, seen as one cache: what a
 * least-privilege install needs for ConfigMaps and Secrets, which its Role grants only in
 * the inventory namespaces (a cluster-wide list would be refused). Keys are those of
 * ResourceInformer (`namespace/name`), so the union needs no translation.
 */
export interface Informer<T extends KubernetesObject> {
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this;
  start(): void;
  stop(): Promise<void>;
  hasSynced(): boolean;
  /** How long the cache may have been missing changes (ResourceInformer.staleForMs). */
  staleForMs(now?: number): number;
  list(): T[];
  get(key: string): T | undefined;
}

export interface NamespacedInformersOptions extends Omit<ResourceInformerOptions, 'path'> {
  /** The API group and version path, e.g. '/api/v1'. */
  groupVersionPath: string;
  /** Plural resource name, e.g. 'configmaps'. */
  resource: string;
  namespaces: readonly string[];
}

export class NamespacedInformers<T extends KubernetesObject> implements Informer<T> {
  private readonly parts: ResourceInformer<T>[];
  private syncedEmitted = false;
  private readonly syncedHandlers: (() => void)[] = [];

  constructor(opts: NamespacedInformersOptions) {
    const { groupVersionPath, resource, namespaces, ...rest } = opts;
    if (namespaces.length === 0) throw new RangeError('NamespacedInformers needs at least one namespace');
    this.parts = [...new Set(namespaces)].map(
      (ns) => new ResourceInformer<T>({ ...rest, path: `${groupVersionPath}/namespaces/${encodeURIComponent(ns)}/${resource}` }),
    );
    for (const p of this.parts) {
      p.on('synced', () => {
        if (this.syncedEmitted || !this.hasSynced()) return;
        this.syncedEmitted = true;
        for (const h of this.syncedHandlers) h();
      });
    }
  }

  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    // Synced means every namespace's first list is in: said once, for the whole.
    if (event === 'synced') this.syncedHandlers.push(handler as () => void);
    else for (const p of this.parts) p.on(event, handler);
    return this;
  }

  start(): void {
    for (const p of this.parts) p.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stop()));
  }

  hasSynced(): boolean {
    return this.parts.every((p) => p.hasSynced());
  }

  /** The stalest of the namespaces' watches. */
  staleForMs(now = Date.now()): number {
    return Math.max(0, ...this.parts.map((p) => p.staleForMs(now)));
  }

  list(): T[] {
    return this.parts.flatMap((p) => p.list());
  }

  get(key: string): T | undefined {
    for (const p of this.parts) {
      const v = p.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}

/**
 * `--inventory-namespaces a,b` → ['a', 'b']; empty or absent → undefined (every namespace,
 * through cluster-wide informers). Names are checked as DNS labels, the namespace rule.
 */
export function parseNamespaceList(text: string | undefined, flag: string): string[] | undefined {
  if (text === undefined) return undefined;
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const ns of list) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) throw new Error(`${flag}: ${JSON.stringify(ns)} is not a namespace name`);
  }
  return list.length > 0 ? list : undefined;
}
