import type { ParsedMachine } from '../api/inventory.js';
import { inventoriesOf, inventoryKey, type BareMetalAutoscalerSpec, type InventoryReference } from '../api/v1alpha1/baremetalautoscaler.js';
import type { AdmissionContext, InventoryView } from './context.js';

/**
 * An autoscaler's inventories as the admission checks see them: each one's view, and the
 * machines of the valid ones merged into one view (names two inventories list are left out,
 * as the controller leaves them alone). With one inventory the merged view is that
 * inventory's own view, so its cached selections keep working.
 */

export interface FleetInventory {
  ref: InventoryReference;
  /** Where the reference is in the spec: spec.inventory or spec.inventories[i]. */
  field: string;
  view: InventoryView;
}

export interface AdmissionFleet {
  inventories: FleetInventory[];
  /** Valid when at least one inventory is; the machines of the valid ones. */
  merged: InventoryView;
  /** Every inventory is valid. */
  allValid: boolean;
  /** Machine name → the inventories (namespace/name) that list it, for names listed more than once. */
  duplicates: ReadonlyMap<string, string[]>;
  /** The namespace of the inventory a merged machine came from (its credentials Secret's). */
  namespaceOf: (machine: string) => string | undefined;
  /** "inventory ns/name" or "inventories ns/a, ns/b". */
  describe: string;
}

interface Merge {
  merged: InventoryView;
  duplicates: Map<string, string[]>;
  origin: Map<string, string>;
}

/** Merges by the identity of the views (cached views are stable until their ConfigMap changes). */
const merges = new WeakMap<InventoryView, { next: WeakMap<InventoryView, unknown>; merge?: Merge }>();

export function fleetOf(spec: Pick<BareMetalAutoscalerSpec, 'inventory' | 'inventories'>, ctx: Pick<AdmissionContext, 'inventory'>): AdmissionFleet {
  const inventories = inventoriesOf(spec).map((ref) => ({
    ref,
    field: spec.inventory && inventoryKey(spec.inventory) === inventoryKey(ref) ? 'spec.inventory' : `spec.inventories[${(spec.inventories ?? []).findIndex((r) => inventoryKey(r) === inventoryKey(ref))}]`,
    view: ctx.inventory(ref.namespace, ref.name),
  }));
  const allValid = inventories.every((i) => i.view.state === 'valid');
  const describe = inventories.length === 1 ? `inventory ${inventoryKey(inventories[0]!.ref)}` : `inventories ${inventories.map((i) => inventoryKey(i.ref)).join(', ')}`;
  const only = inventories.length === 1 ? inventories[0] : undefined;
  if (only !== undefined) {
    const ns = only.ref.namespace;
    return { inventories, merged: only.view, allValid, duplicates: new Map(), namespaceOf: () => ns, describe };
  }
  const m = cachedMerge(inventories);
  return { inventories, merged: m.merged, allValid, duplicates: m.duplicates, namespaceOf: (n) => m.origin.get(n), describe };
}

function cachedMerge(inventories: readonly FleetInventory[]): Merge {
  let level: WeakMap<InventoryView, unknown> = merges;
  let node: { next: WeakMap<InventoryView, unknown>; merge?: Merge } | undefined;
  for (const i of inventories) {
    node = level.get(i.view) as typeof node;
    if (node === undefined) level.set(i.view, (node = { next: new WeakMap() }));
    level = node.next;
  }
  if (node === undefined) return merge(inventories);
  node.merge ??= merge(inventories);
  return node.merge;
}

function merge(inventories: readonly FleetInventory[]): Merge {
  const seen = new Map<string, string>();
  const duplicates = new Map<string, string[]>();
  const origin = new Map<string, string>();
  const valid = inventories.filter((i) => i.view.state === 'valid');
  for (const i of valid) {
    if (i.view.state !== 'valid') continue;
    const key = inventoryKey(i.ref);
    for (const m of i.view.machines) {
      const first = seen.get(m.name);
      if (first === undefined) {
        seen.set(m.name, key);
        origin.set(m.name, i.ref.namespace);
      } else duplicates.set(m.name, [...(duplicates.get(m.name) ?? [first]), key]);
    }
  }
  const machines: ParsedMachine[] = [];
  for (const i of valid) if (i.view.state === 'valid') for (const m of i.view.machines) if (!duplicates.has(m.name)) machines.push(m);
  for (const n of duplicates.keys()) origin.delete(n);
  const merged: InventoryView = valid.length > 0 ? { state: 'valid', machines } : (inventories[0]?.view ?? { state: 'missing' });
  return { merged, duplicates, origin };
}
