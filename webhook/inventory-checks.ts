import { INVENTORY_DATA_KEY, INVENTORY_LABEL, parseInventoryConfigMap, type InventoryConfigMap, type InventoryIssue, type ParsedMachine } from '../api/inventory.js';
import { isPlainObject } from '../api/schema-check.js';
import { inventoriesOf, inventoryKey, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { busyMachines, namesInventory, selectedMachines, type AdmissionContext } from './context.js';
import { listSome, type Issue, type Verdict } from './verdict.js';

/**
 * The checks on an inventory ConfigMap: every rule of `bamel inventory validate` (the same
 * module, api/inventory.ts), plus what only the cluster knows: a machine an autoscaler is
 * powering on or draining cannot disappear from the inventory or change its BMC under it,
 * and the inventory cannot be deleted under it.
 */

export interface InventoryReview {
  operation: 'CREATE' | 'UPDATE';
  /** The request's namespace: the object's own may be empty on create. */
  namespace?: string;
  object: unknown;
  oldObject?: unknown;
}

export function checkInventory(review: InventoryReview, ctx: AdmissionContext): Verdict {
  const cm = withNamespace(review.object, review.namespace);
  const old = review.oldObject === undefined ? undefined : withNamespace(review.oldObject, review.namespace);
  const namespace = cm.metadata?.namespace;
  const name = cm.metadata?.name;
  const users = ctx.autoscalers().filter((a) => namesInventory(a.spec, namespace, name));

  if (!isInventory(cm)) {
    // Not (or no longer) an inventory. The objectSelector sends a ConfigMap whose old or new
    // version carries the label, so this is a label being taken off.
    if (old === undefined || !isInventory(old)) return { errors: [], warnings: [] };
    const errors = users.flatMap((a) =>
      busyMachines(a).map((m) => ({
        field: `metadata.labels["${INVENTORY_LABEL}"]`,
        message: `removing it removes every machine, and BareMetalAutoscaler ${a.metadata.name} has machine ${m.name} ${m.what}; keep the label until its phase is Ready or Off`,
      })),
    );
    const warnings =
      users.length === 0
        ? []
        : [
            {
              field: `metadata.labels["${INVENTORY_LABEL}"]`,
              message: `removed: BareMetalAutoscaler ${listSome(users.map((a) => a.metadata.name), 3)} will find no inventory and manage no machine`,
            },
          ];
    return { errors, warnings };
  }

  const parse = ctx.parseInventory ?? parseInventoryConfigMap;
  const result = parse(cm);
  const warnings = result.warnings.map(inventoryField);
  if (!result.ok) return { errors: result.errors.map(inventoryField), warnings };
  const machines = result.inventory.machines;

  const errors: Issue[] = [];
  const byName = new Map(machines.map((m) => [m.name, m]));
  const busyUsers = users.map((a) => ({ a, busy: busyMachines(a) })).filter((u) => u.busy.length > 0);
  // The stored version is parsed only when a machine is busy (YAML is most of the cost).
  const oldParsed = busyUsers.length > 0 && old !== undefined && isInventory(old) ? parse(old) : undefined;
  const oldByName = new Map((oldParsed?.ok === true ? oldParsed.inventory.machines : []).map((m) => [m.name, m]));
  for (const { a, busy: busyList } of busyUsers) {
    for (const busy of busyList) {
      const now = byName.get(busy.name);
      const before = oldByName.get(busy.name);
      if (now === undefined) {
        // Only a machine this inventory listed is this inventory's to lose (with several
        // inventories, a machine of another one is not in this one at all).
        if (old !== undefined ? before === undefined : inventoriesOf(a.spec).length > 1) continue;
        errors.push({
          field: `${INVENTORY_DATA_KEY}: machines`,
          message: `machine ${busy.name} is removed while BareMetalAutoscaler ${a.metadata.name} has it ${busy.what}; keep it listed until its phase is Ready or Off, then remove it`,
        });
      } else if (before !== undefined && before.bmc.address !== now.bmc.address) {
        errors.push({
          field: `${INVENTORY_DATA_KEY}: machines[${now.index}] (${now.name}).bmc.address`,
          message: `changed from ${before.bmc.address} while BareMetalAutoscaler ${a.metadata.name} has the machine ${busy.what}; the operation would finish on another BMC. Keep the address until its phase is Ready or Off`,
        });
      }
    }
  }

  errors.push(...duplicatesAcross(cm, machines, old, users, ctx, parse));
  warnings.push(...riskyInventorySettings(machines, users));
  return { errors, warnings };
}

/**
 * Machine names this update adds that another inventory of the same autoscaler already
 * lists: the controller would not know which BMC the machine has and would leave it alone.
 * A name the stored version already shared is not this update's doing (not refused here).
 */
function duplicatesAcross(cm: InventoryConfigMap, machines: readonly ParsedMachine[], old: InventoryConfigMap | undefined, users: readonly BareMetalAutoscaler[], ctx: AdmissionContext, parse: NonNullable<AdmissionContext['parseInventory']>): Issue[] {
  const self = `${cm.metadata?.namespace ?? ''}/${cm.metadata?.name ?? ''}`;
  const others = new Map<string, ParsedMachine[]>();
  for (const a of users) {
    for (const ref of inventoriesOf(a.spec)) {
      const key = inventoryKey(ref);
      if (key === self || others.has(key)) continue;
      const view = ctx.inventory(ref.namespace, ref.name);
      if (view.state === 'valid') others.set(key, view.machines);
    }
  }
  if (others.size === 0) return [];
  const listedBy = new Map<string, string>();
  for (const [key, ms] of others) for (const m of ms) listedBy.set(m.name, key);
  const shared = machines.filter((m) => listedBy.has(m.name));
  if (shared.length === 0) return [];
  const oldParsed = old !== undefined && isInventory(old) ? parse(old) : undefined;
  const before = new Set(oldParsed?.ok === true ? oldParsed.inventory.machines.map((m) => m.name) : []);
  return shared
    .filter((m) => !before.has(m.name))
    .map((m) => ({
      field: `${INVENTORY_DATA_KEY}: machines[${m.index}] (${m.name}).name`,
      message: `machine ${m.name} is already listed by inventory ${listedBy.get(m.name) ?? '?'}, which BareMetalAutoscaler ${listSome(users.filter((a) => inventoriesOf(a.spec).some((r) => inventoryKey(r) === listedBy.get(m.name))).map((a) => a.metadata.name), 3)} also reads; a machine belongs in one inventory`,
    }));
}

export interface InventoryDeletion {
  /** The request's namespace and name (the stored object's, when the API server sends it). */
  namespace?: string;
  name?: string;
  /** The ConfigMap being deleted, as stored. */
  oldObject?: unknown;
}

/**
 * Deleting an inventory removes every machine of it from the autoscalers that name it. A
 * machine in the middle of a power operation or a drain would be left half-done (powered but
 * never joined, a Node tainted and half-emptied, an intent no one settles): refused while any
 * is, naming each autoscaler and its machines. At rest, the deletion is admitted with a
 * warning per autoscaler left without machines.
 */
export function checkInventoryDeletion(review: InventoryDeletion, ctx: AdmissionContext): Verdict {
  const old = review.oldObject === undefined || review.oldObject === null ? undefined : withNamespace(review.oldObject, review.namespace);
  const namespace = old?.metadata?.namespace ?? review.namespace;
  const name = old?.metadata?.name ?? review.name;
  // Without the stored object the label cannot be seen: the objectSelector sent it, so it had it.
  if (old !== undefined && !isInventory(old)) return { errors: [], warnings: [] };
  const users = ctx.autoscalers().filter((a) => namesInventory(a.spec, namespace, name));
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  // With several inventories, only the busy machines this one lists are its to lose.
  const parsedOld = old !== undefined ? parseInventoryConfigMap(old) : undefined;
  const listed = parsedOld?.ok === true ? new Set(parsedOld.inventory.machines.map((m) => m.name)) : undefined;
  for (const a of users) {
    const busy = busyMachines(a).filter((m) => listed === undefined || inventoriesOf(a.spec).length === 1 || listed.has(m.name));
    if (busy.length === 0) {
      warnings.push({ field: '', message: `deleting inventory ${namespace}/${name}: BareMetalAutoscaler ${a.metadata.name} will find no inventory and manage no machine` });
      continue;
    }
    errors.push({
      field: '',
      message:
        `inventory ${namespace}/${name} cannot be deleted while BareMetalAutoscaler ${a.metadata.name} has ${busy.length === 1 ? 'a machine' : `${busy.length} machines`} in flight: ` +
        `${listSome(busy.map((m) => `${m.name} ${m.what}`), 5)}; deleting it would leave ${busy.length === 1 ? 'it' : 'them'} half-done. ` +
        'Delete it once their phase is Ready or Off (or point the autoscaler at another inventory first)',
    });
  }
  return { errors, warnings };
}

function withNamespace(object: unknown, namespace: string | undefined): InventoryConfigMap {
  const cm = (isPlainObject(object) ? object : {}) as InventoryConfigMap;
  if (namespace === undefined || namespace === '' || (cm.metadata?.namespace ?? '') !== '') return cm;
  return { ...cm, metadata: { ...cm.metadata, namespace } };
}

function isInventory(cm: InventoryConfigMap): boolean {
  const labels = cm.metadata?.labels;
  return isPlainObject(labels) && INVENTORY_LABEL in labels;
}

/** `machines[3] (rack-a-07).bmc.address` → `machines.yaml: machines[3] (rack-a-07).bmc.address`; envelope paths stay as they are. */
function inventoryField(issue: InventoryIssue): Issue {
  if (issue.path === '') return { field: INVENTORY_DATA_KEY, message: issue.message };
  if (issue.path.startsWith('machines')) return { field: `${INVENTORY_DATA_KEY}: ${issue.path}`, message: issue.message };
  return { field: issue.path, message: issue.message };
}

function riskyInventorySettings(machines: ParsedMachine[], users: BareMetalAutoscaler[]): Issue[] {
  const warnings: Issue[] = [];
  for (const m of machines) {
    if (m.bootSeconds !== undefined && m.joinTimeoutSeconds !== undefined && m.joinTimeoutSeconds <= m.bootSeconds) {
      warnings.push({
        field: `${INVENTORY_DATA_KEY}: machines[${m.index}] (${m.name}).joinTimeoutSeconds`,
        message: `${m.joinTimeoutSeconds}s is not longer than its bootSeconds (${m.bootSeconds}s); it will time out before it joins`,
      });
    }
  }
  const view = { state: 'valid' as const, machines };
  for (const a of users) {
    const selected = selectedMachines(a.spec, view);
    // With several inventories, this one alone says nothing about minMachines.
    if (inventoriesOf(a.spec).length === 1 && a.spec.minMachines > selected.length) {
      warnings.push({
        field: INVENTORY_DATA_KEY,
        message: `BareMetalAutoscaler ${a.metadata.name} keeps minMachines ${a.spec.minMachines} on but would select only ${selected.length} machines of this inventory`,
      });
    }
    const slow = selected.filter((m) => m.joinTimeoutSeconds === undefined && m.bootSeconds !== undefined && m.bootSeconds >= a.spec.scaleUp.joinTimeoutSeconds);
    if (slow.length > 0) {
      warnings.push({
        field: INVENTORY_DATA_KEY,
        message: `bootSeconds of ${listSome(slow.map((m) => m.name), 3)} is not shorter than BareMetalAutoscaler ${a.metadata.name}'s scaleUp.joinTimeoutSeconds (${a.spec.scaleUp.joinTimeoutSeconds}s); set the machine's joinTimeoutSeconds`,
      });
    }
  }
  return warnings;
}
