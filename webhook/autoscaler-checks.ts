import { isDeepStrictEqual } from 'node:util';
import { formatIssue as formatInventoryIssue, type ParsedMachine } from '../api/inventory.js';
import { INVENTORY_LABEL, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { describeSelector } from '../api/selector.js';
import { busyMachines, selectedMachines, type AdmissionContext } from './context.js';
import { fleetOf, type AdmissionFleet, type FleetInventory } from './fleet.js';
import { checkAutoscalerStructure } from './structure.js';
import { listSome, type Issue, type Verdict } from './verdict.js';

/**
 * The checks on a BareMetalAutoscaler that neither its schema nor its CEL rules can make,
 * because they need the rest of the cluster: the inventories it names, the other
 * autoscalers, the Secrets, and what its machines are doing right now.
 */

export interface AutoscalerReview {
  operation: 'CREATE' | 'UPDATE';
  object: unknown;
  /** The stored object, on UPDATE. */
  oldObject?: unknown;
}

/** Below this, an idle machine is powered off so soon that the next pod powers it on again. */
export const MIN_SAFE_UNNEEDED_SECONDS = 60;
export const MIN_SAFE_SCALE_DOWN_COOLDOWN_SECONDS = 60;
export const MAX_SAFE_UTILIZATION_THRESHOLD = 0.8;

export function checkAutoscaler(review: AutoscalerReview, ctx: AdmissionContext): Verdict {
  const structure = checkAutoscalerStructure(review.object);
  if (structure.issues.length > 0) return { errors: structure.issues, warnings: [] };
  const next = structure.defaulted;
  const old = review.operation === 'UPDATE' && review.oldObject !== undefined ? checkAutoscalerStructure(review.oldObject).defaulted : undefined;

  // Being deleted: only its finalizer is left to remove. Nothing may stand in the way.
  if (next.metadata.deletionTimestamp !== undefined) return { errors: [], warnings: [] };
  // Metadata only (labels, annotations, the controller's finalizer): nothing to check.
  if (old !== undefined && isDeepStrictEqual(old.spec, next.spec)) return { errors: [], warnings: [] };

  const fleet = fleetOf(next.spec, ctx);
  const selected = selectedMachines(next.spec, fleet.merged);
  const errors = clusterProblems(next, fleet, selected, ctx);
  const warnings: Issue[] = [];

  // Ratcheting, as the API server does for schemas: a problem the stored object already had
  // is not this update's fault, and refusing would block the very edits that fix things
  // (dryRun: true, a narrower selector elsewhere). It is reported, not refused.
  if (old !== undefined) {
    const oldFleet = fleetOf(old.spec, ctx);
    const before = new Set(clusterProblems(old, oldFleet, selectedMachines(old.spec, oldFleet.merged), ctx).map(key));
    for (let i = errors.length - 1; i >= 0; i--) {
      const e = errors[i];
      if (e === undefined || !before.has(key(e))) continue;
      errors.splice(i, 1);
      warnings.unshift({ field: e.field, message: `${e.message} (already so before this update, so not refused)` });
    }
    errors.push(...strandedMachines(old, next, fleet, selected));
  }

  warnings.push(...riskyAutoscalerSettings(next, fleet, selected, ctx));
  return { errors, warnings };
}

function key(issue: Issue): string {
  return `${issue.field}\u0000${issue.message}`;
}

/** The inventories it names, minMachines against what it selects, and overlap with other autoscalers. */
function clusterProblems(a: BareMetalAutoscaler, fleet: AdmissionFleet, selected: ParsedMachine[], ctx: AdmissionContext): Issue[] {
  const unusable = fleet.inventories.flatMap(inventoryProblem);
  if (fleet.inventories.length === 0) unusable.push({ field: 'spec.inventory', message: 'names no inventory: set spec.inventory, or list one in spec.inventories' });
  if (unusable.length > 0) return unusable;
  const view = fleet.merged;
  if (view.state !== 'valid') return [];
  const ref = fleet.describe;

  const problems: Issue[] = [...fleet.duplicates].map(([machine, where]) => ({
    field: 'spec.inventories',
    message: `machine ${machine} is listed by ${where.join(' and ')}; bamel would not know which BMC it has and leaves it alone. Keep each machine in one inventory`,
  }));
  const total = view.machines.length;
  if (a.spec.minMachines > selected.length) {
    const which = selected.length === 0 ? 'none' : `only ${selected.length} (${listSome(selected.map((m) => m.name))})`;
    problems.push({
      field: 'spec.minMachines',
      message: `${a.spec.minMachines} machines must stay powered on, but spec.machineSelector (${describeSelector(a.spec.machineSelector)}) selects ${which} of the ${total} machine${total === 1 ? '' : 's'} of ${ref}; lower minMachines to ${selected.length} or less, or widen machineSelector`,
    });
  }

  const mine = new Set(selected.map((m) => m.name));
  if (mine.size > 0) {
    for (const other of ctx.autoscalers()) {
      if (other.metadata.name === a.metadata.name) continue;
      const shared = selectedMachines(other.spec, fleetOf(other.spec, ctx).merged)
        .map((m) => m.name)
        .filter((m) => mine.has(m));
      if (shared.length === 0) continue;
      const deleting = other.metadata.deletionTimestamp !== undefined ? ', and is being deleted: wait until it is gone' : '';
      problems.push({
        field: 'spec.machineSelector',
        message: `selects ${shared.length === 1 ? 'machine' : `${shared.length} machines`} that BareMetalAutoscaler ${other.metadata.name} already selects (${listSome(shared)})${deleting}; two autoscalers would power the same machines on and off, so make the selectors disjoint (e.g. a label only this autoscaler's machines carry, or matchExpressions with NotIn)`,
      });
    }
  }
  return problems;
}

/** Why one inventory of the autoscaler cannot be used, at the field that names it. */
function inventoryProblem({ ref: { namespace, name }, field, view }: FleetInventory): Issue[] {
  const ref = `${namespace}/${name}`;
  switch (view.state) {
    case 'missing':
      return [
        {
          field,
          message: `ConfigMap ${ref} not found; apply the inventory first (a ConfigMap labelled ${INVENTORY_LABEL}: "true" with key machines.yaml), or correct ${field}.namespace and ${field}.name`,
        },
      ];
    case 'unlabelled':
      return [
        {
          field,
          message: `ConfigMap ${ref} is not labelled ${INVENTORY_LABEL}: "true", so bamel does not read it; label it (kubectl label configmap -n ${namespace} ${name} ${INVENTORY_LABEL}=true) or name the right ConfigMap`,
        },
      ];
    case 'invalid': {
      const first = view.errors[0];
      const more = view.errors.length > 1 ? ` (and ${view.errors.length - 1} more)` : '';
      return [
        {
          field,
          message: `inventory ${ref} is invalid: ${first === undefined ? 'unreadable' : formatInventoryIssue(first)}${more}; fix it (bamel inventory validate shows every problem) and apply it again`,
        },
      ];
    }
    case 'valid':
      return [];
  }
}

/**
 * An update that takes a machine away from its autoscaler in the middle of an operation:
 * the new spec no longer selects it (selector or inventory changed), or dryRun stops the
 * autoscaler from finishing what it started.
 */
function strandedMachines(old: BareMetalAutoscaler, next: BareMetalAutoscaler, fleet: AdmissionFleet, selected: ParsedMachine[]): Issue[] {
  const busy = busyMachines(old);
  if (busy.length === 0) return [];
  const name = old.metadata.name;
  const wait = (m: string): string =>
    `wait until its phase is Ready or Off (kubectl get bma ${name} -o jsonpath='{.status.machines[?(@.name=="${m}")].phase}') and apply again`;
  const issues: Issue[] = [];
  const stillSelected = new Set(selected.map((m) => m.name));
  const inventoryChanged = !isDeepStrictEqual(old.spec.inventory, next.spec.inventory) || !isDeepStrictEqual(old.spec.inventories ?? [], next.spec.inventories ?? []);
  for (const m of busy) {
    // With an inventory unreadable, a machine missing from the others may be in it: not judged.
    if (fleet.allValid && fleet.inventories.length > 0 && !stillSelected.has(m.name)) {
      issues.push({
        field: inventoryChanged ? (next.spec.inventories ? 'spec.inventories' : 'spec.inventory') : 'spec.machineSelector',
        message: `would no longer select machine ${m.name}, which is ${m.what}; the machine would be left half-done, so ${wait(m.name)}`,
      });
    } else if (next.spec.dryRun && !old.spec.dryRun) {
      issues.push({
        field: 'spec.dryRun',
        message: `true would stop bamel from finishing machine ${m.name}, which is ${m.what}; ${wait(m.name)}`,
      });
    }
  }
  return issues;
}

/** Legal settings that usually mean trouble. */
function riskyAutoscalerSettings(a: BareMetalAutoscaler, fleet: AdmissionFleet, selected: ParsedMachine[], ctx: AdmissionContext): Issue[] {
  const { spec } = a;
  const warnings: Issue[] = [];
  const view = fleet.merged;
  if (view.state === 'valid' && selected.length === 0 && view.machines.length > 0) {
    warnings.push({
      field: 'spec.machineSelector',
      message: `(${describeSelector(spec.machineSelector)}) selects none of the ${view.machines.length} machines of ${fleet.describe}; check the labels`,
    });
  }
  const repeated = (spec.inventories ?? []).findIndex((r) => r.namespace === spec.inventory?.namespace && r.name === spec.inventory.name);
  if (repeated >= 0) warnings.push({ field: `spec.inventories[${repeated}]`, message: 'repeats spec.inventory; each inventory is read once, so remove the entry' });
  if (spec.maxMachines === 0) {
    warnings.push({ field: 'spec.maxMachines', message: '0: no machine will ever be powered on' });
  }
  if (spec.scaleDown.enabled) {
    if (spec.scaleDown.unneededSeconds < MIN_SAFE_UNNEEDED_SECONDS) {
      warnings.push({
        field: 'spec.scaleDown.unneededSeconds',
        message: `${spec.scaleDown.unneededSeconds}s is under a minute: a machine idle between two jobs is powered off and soon on again; 300 or more is usual`,
      });
    }
    if (spec.scaleDown.cooldownSeconds < MIN_SAFE_SCALE_DOWN_COOLDOWN_SECONDS) {
      warnings.push({
        field: 'spec.scaleDown.cooldownSeconds',
        message: `${spec.scaleDown.cooldownSeconds}s is under a minute: machines may be powered off one after another before the load settles`,
      });
    }
    if (spec.scaleDown.utilizationThreshold > MAX_SAFE_UTILIZATION_THRESHOLD) {
      warnings.push({
        field: 'spec.scaleDown.utilizationThreshold',
        message: `${spec.scaleDown.utilizationThreshold}: machines up to ${Math.round(spec.scaleDown.utilizationThreshold * 100)}% busy count as idle and are drained; 0.5 is usual`,
      });
    }
  }
  const slow = selected
    .filter((m) => m.bootSeconds !== undefined && m.bootSeconds >= (m.joinTimeoutSeconds ?? spec.scaleUp.joinTimeoutSeconds))
    .filter((m) => m.joinTimeoutSeconds === undefined);
  if (slow.length > 0) {
    const longest = Math.max(...slow.map((m) => m.bootSeconds ?? 0));
    warnings.push({
      field: 'spec.scaleUp.joinTimeoutSeconds',
      message: `${spec.scaleUp.joinTimeoutSeconds}s is not longer than the bootSeconds of ${listSome(slow.map((m) => `${m.name} (${m.bootSeconds}s)`), 3)}; they will time out before they join. Use more than ${longest}`,
    });
  }
  // Each machine's Secret is in the namespace of the inventory that lists it.
  const missing = new Map<string, string[]>();
  for (const m of selected) {
    const ns = fleet.namespaceOf(m.name);
    if (ns === undefined || ctx.secretExists(ns, m.bmc.credentialsSecret) !== false) continue;
    const secret = `${ns}/${m.bmc.credentialsSecret}`;
    missing.set(secret, [...(missing.get(secret) ?? []), m.name]);
  }
  for (const [secret, machines] of missing) {
    warnings.push({
      field: fleet.inventories.length > 1 ? 'spec.inventories' : 'spec.inventory',
      message: `Secret ${secret} (BMC credentials of ${listSome(machines, 3)}) not found; create it with keys username and password before these machines are powered`,
    });
  }
  return warnings;
}
