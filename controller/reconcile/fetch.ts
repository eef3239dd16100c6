import type * as k8s from '@kubernetes/client-node';
import { parseInventoryConfigMap, type InventoryResult, type ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscaler, BareMetalAutoscalerSpec, InventoryReference } from '../../api/v1alpha1/baremetalautoscaler.js';
import { selectorMatches } from '../../api/selector.js';
import type { Store } from './types.js';

/**
 * Fetch: the autoscaler as fresh as we know it, and its inventory parsed once per
 * resourceVersion. Both keep a little state across reconciles (our own writes, parsed
 * inventories), so they are small classes the reconciler owns.
 */

export type InventoryView =
  | { ok: true; machines: ParsedMachine[]; rv: string }
  | { ok: false; missing: boolean; errors: string[] };

/** Inventory ConfigMaps parsed once per resourceVersion. */
export class InventoryCache {
  private readonly parsed = new Map<string, { rv: string; result: InventoryResult }>();

  constructor(private readonly inventories: Store<k8s.V1ConfigMap>) {}

  get(namespace: string, name: string): InventoryView {
    const key = `${namespace}/${name}`;
    const cm = this.inventories.get(key);
    if (!cm) return { ok: false, missing: true, errors: [] };
    const rv = cm.metadata?.resourceVersion ?? '';
    let hit = this.parsed.get(key);
    if (!hit || hit.rv !== rv) {
      hit = { rv, result: parseInventoryConfigMap(cm) };
      this.parsed.set(key, hit);
    }
    const r = hit.result;
    if (!r.ok) return { ok: false, missing: false, errors: r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)) };
    return { ok: true, machines: r.inventory.machines, rv };
  }
}

/** What InventoryValid and Ready say about an inventory that cannot be used. */
export function inventoryProblem(ref: InventoryReference, inv: Extract<InventoryView, { ok: false }>): { reason: 'InventoryNotFound' | 'InventoryInvalid'; message: string } {
  const where = `${ref.namespace}/${ref.name}`;
  if (inv.missing) return { reason: 'InventoryNotFound', message: `inventory ConfigMap ${where} not found (or not labelled autoscaling.bamel.io/inventory: "true")` };
  const more = inv.errors.length > 10 ? `; and ${inv.errors.length - 10} more` : '';
  return { reason: 'InventoryInvalid', message: `inventory ${where} is invalid: ${inv.errors.slice(0, 10).join('; ')}${more}` };
}

/** The inventory machines this autoscaler's machineSelector selects. */
export function selectMachines(spec: BareMetalAutoscalerSpec, machines: ParsedMachine[]): ParsedMachine[] {
  return machines.filter((m) => selectorMatches(spec.machineSelector, m.labels));
}

/**
 * The autoscaler as fresh as we know it: the informer's copy, or our own last write when the
 * informer has not caught up with it yet (a newer resourceVersion).
 */
export class AutoscalerView {
  private readonly recent = new Map<string, BareMetalAutoscaler>();

  constructor(private readonly autoscalers: Store<BareMetalAutoscaler>) {}

  latest(name: string): BareMetalAutoscaler | undefined {
    const cached = this.autoscalers.get(name);
    const mine = this.recent.get(name);
    if (!cached) {
      this.recent.delete(name);
      return undefined;
    }
    if (mine && Number(mine.metadata.resourceVersion) > Number(cached.metadata.resourceVersion)) return mine;
    this.recent.delete(name);
    return cached;
  }

  wrote(updated: BareMetalAutoscaler): void {
    this.recent.set(updated.metadata.name, updated);
  }

  forget(name: string): void {
    this.recent.delete(name);
  }
}
