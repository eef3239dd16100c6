import { stringify } from 'yaml';
import { INVENTORY_LABEL, parseInventoryConfigMap, type InventoryConfigMap } from '../../api/inventory.js';
import type { BareMetalAutoscaler, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { checkAutoscalerStructure } from '../../webhook/structure.js';
import type { AdmissionContext, InventoryView } from '../../webhook/context.js';

/** Objects for the webhook's unit tests, shaped as the API server sends them. */

export interface MachineEntry {
  name: string;
  labels?: Record<string, string>;
  address?: string;
  secret?: string;
  bootSeconds?: number;
  joinTimeoutSeconds?: number;
}

export function machinesYaml(machines: MachineEntry[]): string {
  return stringify({
    machines: machines.map((m, i) => ({
      name: m.name,
      bmc: { address: m.address ?? `ipmi://10.0.0.${i + 1}:623`, credentialsSecret: m.secret ?? 'bmc' },
      ...(m.labels ? { labels: m.labels } : {}),
      capacity: { cpu: '16', memory: '64Gi' },
      power: { idleWatts: 100, maxWatts: 400 },
      ...(m.bootSeconds !== undefined ? { bootSeconds: m.bootSeconds } : {}),
      ...(m.joinTimeoutSeconds !== undefined ? { joinTimeoutSeconds: m.joinTimeoutSeconds } : {}),
    })),
  });
}

export function inventoryConfigMap(namespace: string, name: string, machines: MachineEntry[] | string, labels: Record<string, string> = { [INVENTORY_LABEL]: 'true' }): InventoryConfigMap & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, labels },
    data: { 'machines.yaml': typeof machines === 'string' ? machines : machinesYaml(machines) },
  };
}

/** An autoscaler as stored: the CRD's defaults applied. */
export function autoscaler(name: string, spec: Record<string, unknown>, machines?: MachineStatus[]): BareMetalAutoscaler {
  const raw = {
    apiVersion: 'autoscaling.bamel.io/v1alpha1',
    kind: 'BareMetalAutoscaler',
    metadata: { name },
    spec: { inventory: { namespace: 'inv', name: 'machines' }, ...spec },
    ...(machines ? { status: { machines } } : {}),
  };
  const { defaulted, issues } = checkAutoscalerStructure(raw);
  if (issues.length > 0) throw new Error(`fixture ${name}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
  return defaulted;
}

export interface World {
  autoscalers?: BareMetalAutoscaler[];
  inventories?: InventoryConfigMap[];
  /** namespace/name of the Secrets that exist; undefined: not known. */
  secrets?: string[];
}

/** The admission context over plain lists, with the same inventory parsing as the server. */
export function context(world: World): AdmissionContext {
  return {
    autoscalers: () => world.autoscalers ?? [],
    inventory: (namespace, name): InventoryView => {
      const cm = (world.inventories ?? []).find((c) => c.metadata?.namespace === namespace && c.metadata.name === name);
      if (!cm) return { state: 'missing' };
      if (cm.metadata?.labels?.[INVENTORY_LABEL] !== 'true') return { state: 'unlabelled' };
      const r = parseInventoryConfigMap(cm);
      return r.ok ? { state: 'valid', machines: r.inventory.machines } : { state: 'invalid', errors: r.errors };
    },
    secretExists: (namespace, name) => (world.secrets === undefined ? undefined : world.secrets.includes(`${namespace}/${name}`)),
  };
}

export const T0 = '2024-05-01T10:00:00Z';

export function poweringOn(name: string): MachineStatus {
  return { name, phase: 'PoweringOn', since: T0, operation: { id: `op-${name}`, action: 'PowerOn', startedAt: T0 } };
}

export function draining(name: string): MachineStatus {
  return { name, phase: 'Draining', since: T0, drain: { startedAt: T0, deadline: '2024-05-01T10:10:00Z', podsToEvict: 3, evicted: 2 } };
}
