import type { ParsedMachine } from '../../api/inventory.js';
import { candidateFromMachine, compileCandidate, type CompiledCandidate } from '../../scheduling/index.js';

/**
 * What the reconciler keeps across reconciles about the inventory's machines: each machine
 * compiled empty once per inventory version, and answers that depend only on the machines
 * an autoscaler selects and on a pod signature (can any of them host it; why none can).
 * At 10,000 machines these are the answers asked most often, and they change only with the
 * inventory or the selector.
 */

/** A few recent keys and their maps: two autoscalers over two inventories must not evict each other at every reconcile. */
class RecentMaps<V> {
  private readonly maps = new Map<string, Map<string, V>>();

  constructor(
    private readonly keep: number,
    /** A map grown past this is emptied (signatures of pods long gone). */
    private readonly maxEntries: number,
  ) {}

  of(key: string): Map<string, V> {
    let map = this.maps.get(key);
    if (map) {
      // Most recently used last: the first is the one evicted.
      this.maps.delete(key);
    } else {
      map = new Map();
      if (this.maps.size >= this.keep) this.maps.delete(this.maps.keys().next().value as string);
    }
    this.maps.set(key, map);
    if (map.size > this.maxEntries) map.clear();
    return map;
  }
}

/** Empty machines compiled once per inventory version. */
export class CandidateCache {
  private readonly compiled = new RecentMaps<CompiledCandidate>(8, Number.POSITIVE_INFINITY);

  empty(inventoryVersion: string, m: ParsedMachine): CompiledCandidate {
    return this.forInventory(inventoryVersion)(m);
  }

  /** empty() bound to one inventory version: one map lookup per machine, no key to build. */
  forInventory(inventoryVersion: string): (m: ParsedMachine) => CompiledCandidate {
    const map = this.compiled.of(inventoryVersion);
    return (m) => {
      let c = map.get(m.name);
      if (c === undefined) map.set(m.name, (c = compileCandidate(candidateFromMachine(m))));
      return c;
    };
  }
}

/**
 * Answers by pod signature (PodIndex's: pods with one signature get the same verdict from
 * every machine) for one selection of machines, named by a key that changes whenever the
 * selection may have: the inventory version and the machine selector.
 */
export class SelectionMemo<V> {
  private readonly maps = new RecentMaps<V>(8, 50_000);

  scope(selection: string): (signature: string, compute: () => V) => V {
    const map = this.maps.of(selection);
    return (signature, compute) => {
      let v = map.get(signature);
      if (v === undefined) map.set(signature, (v = compute()));
      return v;
    };
  }
}
