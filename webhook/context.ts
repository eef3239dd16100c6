import type { InventoryConfigMap, InventoryIssue, InventoryResult, ParsedMachine } from '../api/inventory.js';
import { inventoriesOf, type BareMetalAutoscaler, type BareMetalAutoscalerSpec, type MachineStatus } from '../api/v1alpha1/baremetalautoscaler.js';
import { selectorMatches } from '../api/selector.js';

/**
 * What the admission checks know about the cluster: a snapshot the server assembles from
 * the manager's informer caches (and, for the inventory an autoscaler names, a live read
 * when the cache has not seen it yet). The checks themselves are pure functions of the
 * object under review and this snapshot.
 */

export type InventoryView =
  | { state: 'missing' }
  /** A ConfigMap of that name exists but lacks autoscaling.bamel.io/inventory: "true". */
  | { state: 'unlabelled' }
  | { state: 'invalid'; errors: InventoryIssue[] }
  | { state: 'valid'; machines: ParsedMachine[] };

export interface AdmissionContext {
  /** Every BareMetalAutoscaler in the cluster. */
  autoscalers(): readonly BareMetalAutoscaler[];
  inventory(namespace: string, name: string): InventoryView;
  /** Whether the Secret exists; undefined when that is not known (cache not synced). */
  secretExists(namespace: string, name: string): boolean | undefined;
  /** Parses an inventory ConfigMap under review; the server's caches it by content. Default: parse every time. */
  parseInventory?: (cm: InventoryConfigMap) => InventoryResult;
}

/**
 * Selections by inventory view and selector object. Cached views and informer objects are
 * stable until they change, so the overlap check over every other autoscaler does not
 * match each selector against each machine on every request; the weak keys let go of
 * replaced objects.
 */
const selections = new WeakMap<InventoryView, WeakMap<object, ParsedMachine[]>>();

/** The machines an autoscaler's machineSelector picks from its inventory (none unless the inventory is valid). */
export function selectedMachines(spec: Pick<BareMetalAutoscalerSpec, 'machineSelector'>, view: InventoryView): ParsedMachine[] {
  if (view.state !== 'valid') return [];
  const selector = spec.machineSelector as object | undefined;
  let byView = selections.get(view);
  const hit = selector === undefined ? undefined : byView?.get(selector);
  if (hit) return hit;
  const selected = view.machines.filter((m) => selectorMatches(spec.machineSelector, m.labels));
  if (selector !== undefined) {
    if (!byView) selections.set(view, (byView = new WeakMap()));
    byView.set(selector, selected);
  }
  return selected;
}

export interface BusyMachine {
  name: string;
  /** In words: "being powered on (PowerOn operation op-7, since 2024-05-01T10:00:00Z)". */
  what: string;
}

const BUSY_PHASES: Readonly<Record<string, string>> = {
  PoweringOn: 'being powered on',
  PoweringOff: 'being powered off',
  Draining: 'being drained',
};

/**
 * The machines of an autoscaler in the middle of something that must finish where it
 * started: a power intent in flight (status.machines[].operation), a drain, a power-on or
 * a power-off. Taking such a machine away from its autoscaler (deselecting it, removing it
 * from the inventory, changing its BMC) leaves it half-done: powered but never joined, a
 * Node tainted and half-emptied, a BMC asked twice.
 */
export function busyMachines(autoscaler: BareMetalAutoscaler): BusyMachine[] {
  const out: BusyMachine[] = [];
  for (const m of autoscaler.status?.machines ?? []) {
    const what = busyWhat(m);
    if (what !== undefined) out.push({ name: m.name, what });
  }
  return out;
}

function busyWhat(m: MachineStatus): string | undefined {
  const op = m.operation;
  if (m.phase === 'Draining' || m.drain !== undefined) {
    const d = m.drain;
    const progress = d === undefined ? '' : `, ${d.evicted} of ${d.evicted + d.podsToEvict} pods evicted`;
    return `being drained (since ${d?.startedAt ?? m.since}${progress})`;
  }
  const phase = BUSY_PHASES[m.phase];
  if (op !== undefined) {
    const doing = op.action === 'PowerOn' ? 'being powered on' : 'being powered off';
    return `${doing} (${op.action} operation ${op.id}, since ${op.startedAt})`;
  }
  if (phase !== undefined) return `${phase} (since ${m.since})`;
  return undefined;
}

/** Whether the autoscaler names this inventory (as spec.inventory or in spec.inventories). */
export function namesInventory(spec: Pick<BareMetalAutoscalerSpec, 'inventory' | 'inventories'>, namespace: string | undefined, name: string | undefined): boolean {
  return inventoriesOf(spec).some((r) => r.namespace === namespace && r.name === name);
}
