import type { ParsedMachine } from '../../api/inventory.js';
import { inventoriesOf, inventoryKey, type BareMetalAutoscalerSpec, type Condition, type InventoryReference } from '../../api/v1alpha1/baremetalautoscaler.js';
import { setCondition } from '../conditions.js';
import { inventoryProblem, type InventoryCache } from './fetch.js';

/**
 * The fleet of one autoscaler: the machines of all its inventory ConfigMaps (spec.inventory
 * and spec.inventories), merged. One ConfigMap holds at most 1 MiB (about 2,000 machines), so
 * a larger fleet is split over several.
 *
 * What is not certain is not acted on:
 * - a machine name listed by two inventories is ambiguous (which BMC is it?): neither entry is
 *   used, and its status entry, if any, stays as it is;
 * - a missing or invalid inventory, among valid ones, is named in InventoryValid; the valid
 *   ones proceed, and while any is broken every status entry that no valid inventory lists is
 *   kept as it is (it may be a machine of the broken one: never forgotten, never powered).
 */

export interface InventoryIssue {
  inventory: InventoryReference;
  reason: 'InventoryNotFound' | 'InventoryInvalid' | 'DuplicateMachine';
  message: string;
}

export interface Fleet {
  /** Machines that may be acted on: from valid inventories, unambiguous names, inventory order. */
  machines: ParsedMachine[];
  /** How many inventories the autoscaler names, and how many of them are usable. */
  inventories: number;
  usable: number;
  /** What is wrong, per inventory (empty when every inventory is valid and names are unique). */
  issues: InventoryIssue[];
  /** Machine names listed by more than one valid inventory. */
  duplicates: ReadonlySet<string>;
  /** The inventory a usable machine came from (its credentials Secret lives in that namespace). */
  origin: (machine: string) => InventoryReference | undefined;
  /** The parse version of a machine's inventory. */
  versionOf: (machine: string) => string;
  /** The parse versions of every usable inventory together (what is cached per fleet is cached by it). */
  version: string;
  /** True for a status entry to keep exactly as it is: ambiguous, or possibly of a broken inventory. */
  held: (machine: string) => boolean;
}

interface Source {
  ref: InventoryReference;
  rv: string;
  machines: ParsedMachine[];
}

/** The merged fleet of every autoscaler, rebuilt only when its inventories or their versions change. */
export class FleetCache {
  private readonly built = new Map<string, { key: string; fleet: Fleet }>();

  constructor(private readonly inventories: InventoryCache) {}

  get(autoscaler: string, spec: Pick<BareMetalAutoscalerSpec, 'inventory' | 'inventories'>): Fleet {
    const refs = inventoriesOf(spec);
    const sources: Source[] = [];
    const issues: InventoryIssue[] = [];
    const keyParts: string[] = [];
    for (const ref of refs) {
      const view = this.inventories.get(ref.namespace, ref.name);
      if (view.ok) {
        sources.push({ ref, rv: view.rv, machines: view.machines });
        keyParts.push(`${inventoryKey(ref)}@${view.rv}`);
      } else {
        issues.push({ inventory: ref, ...inventoryProblem(ref, view) });
        keyParts.push(`${inventoryKey(ref)}!`);
      }
    }
    const key = keyParts.join(',');
    const hit = this.built.get(autoscaler);
    if (hit && hit.key === key) return hit.fleet;
    const fleet = mergeFleet(refs.length, sources, issues);
    this.built.set(autoscaler, { key, fleet });
    return fleet;
  }

  /** The inventory a machine came from at the autoscaler's last reconcile (its credentials Secret's namespace). */
  originOf(autoscaler: string, machine: string): InventoryReference | undefined {
    return this.built.get(autoscaler)?.fleet.origin(machine);
  }

  forget(autoscaler: string): void {
    this.built.delete(autoscaler);
  }
}

/**
 * InventoryValid from the fleet, and Ready false when no inventory is usable. The answers
 * the reconciler keeps about the selected machines are keyed by `version` and the selector.
 */
export function fleetConditions(conditions: Condition[], fleet: Fleet, generation: number, now: Date): { valid: ReturnType<typeof fleetCondition>; conditions: Condition[] } {
  const valid = fleetCondition(fleet);
  let out = setCondition(conditions, { type: 'InventoryValid', ...valid }, generation, now);
  if (fleet.usable === 0) out = setCondition(out, { type: 'Ready', status: 'False', reason: 'InventoryUnusable', message: valid.message }, generation, now);
  return { valid, conditions: out };
}

/** Merges the valid inventories' machines; names listed twice are left out and reported. */
export function mergeFleet(inventories: number, sources: readonly Source[], brokenIssues: readonly InventoryIssue[]): Fleet {
  const firstSeen = new Map<string, Source>();
  const duplicates = new Map<string, Source[]>();
  for (const s of sources) {
    for (const m of s.machines) {
      const first = firstSeen.get(m.name);
      if (first === undefined) firstSeen.set(m.name, s);
      else duplicates.set(m.name, [...(duplicates.get(m.name) ?? [first]), s]);
    }
  }
  const issues = [...brokenIssues];
  for (const [name, where] of duplicates) {
    const names = where.map((s) => inventoryKey(s.ref));
    issues.push({
      inventory: where[1]?.ref ?? where[0]!.ref,
      reason: 'DuplicateMachine',
      message: `machine ${name} is listed by inventories ${names.join(' and ')}; it is left alone until only one lists it`,
    });
  }
  const machines: ParsedMachine[] = [];
  const origin = new Map<string, Source>();
  for (const s of sources) {
    for (const m of s.machines) {
      if (duplicates.has(m.name)) continue;
      machines.push(m);
      origin.set(m.name, s);
    }
  }
  const someBroken = brokenIssues.length > 0;
  const dupNames = new Set(duplicates.keys());
  return {
    machines,
    inventories,
    usable: sources.length,
    issues,
    duplicates: dupNames,
    origin: (n) => origin.get(n)?.ref,
    versionOf: (n) => {
      const s = origin.get(n);
      return s ? `${inventoryKey(s.ref)}@${s.rv}` : '';
    },
    held: (n) => dupNames.has(n) || (someBroken && !origin.has(n)),
    version: sources.map((s) => `${inventoryKey(s.ref)}@${s.rv}`).join(','),
  };
}

/** The InventoryValid condition's words for a fleet: at most a few issues spelled out. */
export function fleetCondition(fleet: Fleet): { status: 'True' | 'False'; reason: string; message: string } {
  if (fleet.inventories === 0) return { status: 'False', reason: 'InventoryNotFound', message: 'the autoscaler names no inventory: set spec.inventory or spec.inventories' };
  if (fleet.issues.length === 0) {
    const where = fleet.inventories === 1 ? 'the inventory' : `${fleet.inventories} inventories`;
    return { status: 'True', reason: 'Valid', message: `${fleet.machines.length} machines in ${where}` };
  }
  const reasons = new Set(fleet.issues.map((i) => i.reason));
  const reason = reasons.size === 1 ? [...reasons][0]! : 'InventoryInvalid';
  const shown = fleet.issues.slice(0, 5).map((i) => i.message);
  const more = fleet.issues.length > 5 ? `; and ${fleet.issues.length - 5} more` : '';
  const usable = fleet.inventories > 1 && fleet.usable > 0 ? `; the machines of the ${fleet.usable} valid inventories proceed (${fleet.machines.length} machines)` : '';
  return { status: 'False', reason, message: `${shown.join('; ')}${more}${usable}`.slice(0, 32000) };
}
