import { Type, type Static } from '@sinclair/typebox';
import type { BareMetalAutoscalerSpec } from './baremetalautoscaler.js';

/**
 * How an autoscaler names its inventory ConfigMaps: spec.inventory and spec.inventories
 * (part of the BareMetalAutoscaler schema, which re-exports everything here).
 */

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const InventoryReferenceSchema = Type.Object(
  {
    namespace: Type.String({
      description: 'Namespace of the inventory ConfigMap. Credential Secrets named by its machines live in the same namespace.',
      minLength: 1,
      maxLength: 63,
      pattern: DNS_LABEL,
    }),
    name: Type.String({
      description: 'Name of the inventory ConfigMap (labelled autoscaling.bamel.io/inventory: "true", key machines.yaml).',
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN,
    }),
  },
  { description: 'The ConfigMap that lists the machines, their BMC addresses, capacity, labels and taints.' },
);

/** At most this many inventory ConfigMaps per autoscaler (about 2,000 machines fit in one 1 MiB ConfigMap). */
export const MAX_INVENTORIES = 64;

export const InventoryListSchema = Type.Array(
  InventoryReferenceSchema,
  {
    description:
      'More inventory ConfigMaps, for fleets larger than one ConfigMap holds (1 MiB, about 2,000 machines). The autoscaler manages the machines of spec.inventory and of every entry here; machine names must be unique across all of them (a machine two inventories list is left alone). While the autoscaler actuates, entries may be added but not removed (set dryRun: true first).',
    maxItems: MAX_INVENTORIES,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['namespace', 'name'],
  },
);

export type InventoryReference = Static<typeof InventoryReferenceSchema>;

/**
 * Every inventory ConfigMap of an autoscaler, spec.inventory first, then spec.inventories in
 * their order, each once. The API server refuses a spec with none (a CEL rule); objects that
 * predate that rule (or unit-test fixtures) may have none, and then the list is empty.
 */
export function inventoriesOf(spec: Pick<BareMetalAutoscalerSpec, 'inventory' | 'inventories'>): InventoryReference[] {
  const out: InventoryReference[] = [];
  const seen = new Set<string>();
  for (const ref of [...(spec.inventory ? [spec.inventory] : []), ...(spec.inventories ?? [])]) {
    const key = inventoryKey(ref);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ref);
  }
  return out;
}

/** namespace/name of an inventory reference: the key of the informer's store. */
export function inventoryKey(ref: InventoryReference): string {
  return `${ref.namespace}/${ref.name}`;
}
