import type * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { parseInventoryConfigMap, type ParsedMachine } from '../../../api/inventory.js';
import { DRAINING_TAINT, type BareMetalAutoscalerSpec, type MachinePhase, type MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import type { MachineStates, Store } from '../../../controller/reconcile/types.js';
import { MemoryCache } from '../../extender/memory-cache.js';
import { autoscaler, inventoryConfigMap } from '../../webhook/fixtures.js';

/**
 * Objects for the unit tests of the reconcile steps: specs with the CRD's defaults, inventory
 * machines parsed as the controller parses them, Nodes and pods as the informers hold them,
 * and inputs that throw when a step writes to them.
 */

export const T0 = Date.parse('2026-11-28T10:00:00Z');
export const iso = (ms: number): string => new Date(ms).toISOString();
export const GiB = 1024n ** 3n;

/** A spec as stored: the CRD's defaults under the given fields (inventory inv/machines). */
export function spec(over: Record<string, unknown> = {}): BareMetalAutoscalerSpec {
  return autoscaler('a', over).spec;
}

export interface MachineEntry {
  name: string;
  cpu?: number;
  memoryGi?: number;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  maxWatts?: number;
  idleWatts?: number;
  joinTimeoutSeconds?: number;
  bootSeconds?: number;
}

/** The inventory ConfigMap (inv/machines) listing these machines, each with its own BMC. */
export function inventory(entries: readonly MachineEntry[], resourceVersion = '1'): k8s.V1ConfigMap {
  const doc = stringify({
    machines: entries.map((m, i) => ({
      name: m.name,
      bmc: { address: `ipmi://10.0.0.${i + 1}:623`, credentialsSecret: 'bmc' },
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.taints ? { taints: m.taints } : {}),
      capacity: { cpu: String(m.cpu ?? 16), memory: `${m.memoryGi ?? 64}Gi` },
      ...(m.maxWatts !== undefined || m.idleWatts !== undefined
        ? { power: { ...(m.idleWatts !== undefined ? { idleWatts: m.idleWatts } : {}), ...(m.maxWatts !== undefined ? { maxWatts: m.maxWatts } : {}) } }
        : {}),
      ...(m.joinTimeoutSeconds !== undefined ? { joinTimeoutSeconds: m.joinTimeoutSeconds } : {}),
      ...(m.bootSeconds !== undefined ? { bootSeconds: m.bootSeconds } : {}),
    })),
  });
  const cm = inventoryConfigMap('inv', 'machines', doc);
  return { ...cm, metadata: { ...cm.metadata, resourceVersion } };
}

/** The machines as the controller parses them from the inventory. */
export function machines(...entries: (MachineEntry | string)[]): ParsedMachine[] {
  const r = parseInventoryConfigMap(inventory(entries.map((e) => (typeof e === 'string' ? { name: e } : e))));
  if (!r.ok) throw new Error(`fixture inventory: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return r.inventory.machines;
}

export function machine(entry: MachineEntry | string): ParsedMachine {
  return machines(entry)[0] as ParsedMachine;
}

export interface NodeOptions {
  cpu?: string;
  memory?: string;
  ready?: boolean;
  taints?: k8s.V1Taint[];
  draining?: boolean;
  annotations?: Record<string, string>;
  created?: number;
  uid?: string;
}

/** A Node as the informer holds it (Ready unless told otherwise). */
export function node(name: string, o: NodeOptions = {}): k8s.V1Node {
  const taints = [...(o.taints ?? []), ...(o.draining ? [{ key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' }] : [])];
  return {
    metadata: {
      name,
      uid: o.uid ?? `node-uid-${name}`,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.created !== undefined ? { creationTimestamp: new Date(o.created) } : {}),
    },
    spec: taints.length > 0 ? { taints } : {},
    status: {
      allocatable: { cpu: o.cpu ?? '16', memory: o.memory ?? '64Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

let seq = 0;

export interface PodOptions {
  name?: string;
  namespace?: string;
  memory?: string;
  /** The controller's kind, or 'none' for a bare pod. */
  owner?: string;
  annotations?: Record<string, string>;
  deleting?: boolean;
  tolerations?: k8s.V1Toleration[];
  nodeSelector?: Record<string, string>;
}

function podMeta(o: PodOptions): k8s.V1ObjectMeta {
  seq++;
  const name = o.name ?? `p${seq}`;
  return {
    name,
    namespace: o.namespace ?? 'default',
    uid: `uid-${name}`,
    resourceVersion: String(seq),
    labels: { app: 'web' },
    ...(o.annotations ? { annotations: o.annotations } : {}),
    ...(o.deleting ? { deletionTimestamp: new Date(T0 - 1000) } : {}),
    ownerReferences: o.owner === 'none' ? [] : [{ apiVersion: 'apps/v1', kind: o.owner ?? 'ReplicaSet', name: 'web', uid: 'owner', controller: true }],
  };
}

/** A pod running on a Node, owned by a ReplicaSet unless told otherwise. */
export function runningPod(nodeName: string, cpu = '1', o: PodOptions = {}): k8s.V1Pod {
  return {
    metadata: podMeta(o),
    spec: {
      nodeName,
      containers: [{ name: 'c', resources: { requests: { cpu, memory: o.memory ?? '1Gi' } } }],
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
    },
    status: { phase: 'Running' },
  };
}

/** A pod the scheduler marked Unschedulable at `since`. */
export function pendingPod(cpu = '1', o: PodOptions & { since?: number } = {}): k8s.V1Pod {
  return {
    metadata: podMeta(o),
    spec: {
      containers: [{ name: 'c', resources: { requests: { cpu, memory: o.memory ?? '1Gi' } } }],
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
    },
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(o.since ?? T0 - 30_000) }],
    },
  };
}

/** A machine's status entry, in this phase since `since` (an hour ago by default). */
export function status(name: string, phase: MachinePhase, extra: Partial<MachineStatus> = {}): MachineStatus {
  return { name, phase, since: iso(T0 - 3_600_000), ...extra };
}

/** An informer store over these objects (keyed namespace/name, or name). */
export function store<T extends { metadata?: { name?: string; namespace?: string } }>(items: readonly T[] = []): Store<T> {
  return new MemoryCache<T>([...items]);
}

/** Freezes a value and everything under it: a step that writes to its input throws. */
export function deepFreeze<T>(value: T): T {
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
    const fail = (): never => {
      throw new TypeError('a frozen Map was written to');
    };
    Object.assign(value, { set: fail, delete: fail, clear: fail });
  } else if (Array.isArray(value)) {
    for (const v of value) deepFreeze(v);
  } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  if (value !== null && typeof value === 'object') Object.freeze(value);
  return value;
}

/** Machine states keyed by name, frozen. */
export function states(...entries: MachineStatus[]): MachineStates {
  return deepFreeze(new Map(entries.map((s) => [s.name, s])));
}

/** A JSON copy that keeps bigints, for before/after comparisons. */
export function snapshot(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? [...v.entries()] : v));
}
