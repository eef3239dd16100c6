import type { WatchedCache } from '../../extender/standings.js';

type Obj = { metadata?: { name?: string; namespace?: string } };

/** An informer stand-in for unit tests: a map with the informer's events. */
export class MemoryCache<T extends Obj> implements WatchedCache<T> {
  private readonly items = new Map<string, T>();
  private readonly handlers: { add: ((o: T) => void)[]; update: ((o: T, old: T) => void)[]; delete: ((o: T) => void)[] } = { add: [], update: [], delete: [] };
  synced = true;

  constructor(items: T[] = []) {
    for (const i of items) this.items.set(MemoryCache.key(i), i);
  }

  static key(o: Obj): string {
    const ns = o.metadata?.namespace;
    return ns ? `${ns}/${o.metadata?.name ?? ''}` : (o.metadata?.name ?? '');
  }

  list(): T[] {
    return [...this.items.values()];
  }
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  hasSynced(): boolean {
    return this.synced;
  }
  on(event: 'add' | 'delete', handler: (obj: T) => void): this;
  on(event: 'update', handler: (obj: T, old: T) => void): this;
  on(event: 'add' | 'update' | 'delete', handler: ((obj: T) => void) | ((obj: T, old: T) => void)): this {
    (this.handlers[event] as unknown[]).push(handler);
    return this;
  }

  /** Adds or replaces, with the event an informer would emit. */
  put(obj: T): void {
    const key = MemoryCache.key(obj);
    const old = this.items.get(key);
    this.items.set(key, obj);
    if (old === undefined) for (const h of this.handlers.add) h(obj);
    else for (const h of this.handlers.update) h(obj, old);
  }

  remove(obj: T): void {
    const key = MemoryCache.key(obj);
    const old = this.items.get(key);
    if (old === undefined) return;
    this.items.delete(key);
    for (const h of this.handlers.delete) h(old);
  }
}
