/**
 * One copy of what tens of thousands of cached objects repeat. JSON.parse gives every
 * object its own strings and sub-objects: the namespace, the owner's kind, label values,
 * the resource quantities and tolerations of every replica of a Deployment. A cache
 * transform copies what it keeps through here, so replicas share them.
 *
 * Shared values are frozen: a reader that changed one would change it for every object
 * holding it (cached objects are never to be changed anyway).
 */

/** Longer strings are rarely repeated (uids, messages): they are kept as they are. */
const MAX_STRING = 128;
/** Sub-objects whose JSON is longer than this are copied, not shared. */
const MAX_SHARED_JSON = 4096;
/** Past this many entries a table starts again (values of objects long gone). */
const MAX_ENTRIES = 100_000;

export class Interner {
  private strings = new Map<string, string>();
  private shared = new Map<string, unknown>();

  /** The one copy of a short string. */
  string(s: string): string {
    if (s.length > MAX_STRING) return s;
    const hit = this.strings.get(s);
    if (hit !== undefined) return hit;
    if (this.strings.size >= MAX_ENTRIES) this.strings = new Map();
    this.strings.set(s, s);
    return s;
  }

  /** A deep copy of plain JSON data (objects and arrays), with its short strings interned; anything else as it is. */
  copy<T>(value: T): T {
    if (typeof value === 'string') return this.string(value) as T;
    if (Array.isArray(value)) return value.map((v: unknown) => this.copy(v)) as T;
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.string(k)] = this.copy(v);
    return out as T;
  }

  /**
   * One frozen copy of equal plain JSON data (by its JSON text): the tolerations, resources,
   * selectors of replicas. Undefined stays undefined.
   */
  share<T>(value: T): T {
    if (value === undefined || value === null || typeof value !== 'object') return this.copy(value);
    const key = JSON.stringify(value);
    if (key.length > MAX_SHARED_JSON) return this.copy(value);
    const hit = this.shared.get(key);
    if (hit !== undefined) return hit as T;
    if (this.shared.size >= MAX_ENTRIES) this.shared = new Map();
    const copy = deepFreeze(this.copy(value));
    this.shared.set(key, copy);
    return copy;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
