import { createHash } from 'node:crypto';
import { parseInventoryConfigMap, type InventoryConfigMap, type InventoryResult } from '../api/inventory.js';
import { isPlainObject } from '../api/schema-check.js';

/**
 * Inventory parses by content. Parsing machines.yaml is nearly all of an inventory review's
 * cost (about 0.3 ms a machine), and the same content comes back again and again: the
 * stored object of every UPDATE was parsed when it was admitted, GitOps tools re-apply
 * unchanged manifests, `--dry-run=server` precedes the real apply. The key is a digest of
 * everything the parse reads (name, namespace, labels and every data key), so two objects
 * with one digest parse to the same result. Results are shared: callers must not change them.
 */
export class InventoryParseCache {
  private readonly entries = new Map<string, InventoryResult>();
  hits = 0;
  misses = 0;

  constructor(private readonly capacity = 64) {}

  parse(cm: InventoryConfigMap): InventoryResult {
    const key = digest(cm);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Least recently used first out: a hit moves to the back.
      this.entries.delete(key);
      this.entries.set(key, hit);
      this.hits++;
      return hit;
    }
    this.misses++;
    const result = parseInventoryConfigMap(cm);
    this.entries.set(key, result);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return result;
  }

  get size(): number {
    return this.entries.size;
  }
}

function digest(cm: InventoryConfigMap): string {
  const raw: unknown = cm;
  const obj = isPlainObject(raw) ? raw : {};
  const metadata = isPlainObject(obj.metadata) ? obj.metadata : {};
  const data = isPlainObject(obj.data) ? obj.data : {};
  const hash = createHash('sha256');
  // JSON of each part keeps the boundaries unambiguous (a label value cannot pass for a key).
  hash.update(JSON.stringify([metadata.namespace ?? null, metadata.name ?? null, sorted(metadata.labels)]));
  for (const key of Object.keys(data).sort()) {
    const value = data[key];
    hash.update(JSON.stringify(key));
    hash.update(typeof value === 'string' ? `s${value.length}:` : `j:${JSON.stringify(value) ?? 'undefined'}`);
    if (typeof value === 'string') hash.update(value);
  }
  return hash.digest('base64');
}

function sorted(value: unknown): unknown {
  if (!isPlainObject(value)) return value ?? null;
  return Object.keys(value).sort().map((k) => [k, value[k]]);
}
