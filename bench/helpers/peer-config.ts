/**
 * The peers' configuration from a bamel inventory, so that all three autoscale the same
 * machine shapes: machines with the same capacity, labels and taints make one shape, and a
 * shape becomes
 * - for Karpenter's kwok provider: an instance type (its instance-types file) and a NodePool
 *   of its own, limited to that type and to the cpu of the shape's machines (a cloud has no
 *   end of instances; the inventory has), with the shape's labels and taints;
 * - for Cluster Autoscaler's kwok provider: a node group, as a template Node in the
 *   kwok-provider-templates ConfigMap, with min 0 and max the shape's machine count.
 * Smaller shapes are preferred by both, as bamel prefers the best-fitting machine: Karpenter
 * through the NodePools' weights and the instance prices, CA through its least-waste expander.
 */
import type { Machine, MachineTaint } from '../../api/inventory.js';

export interface Shape {
  /** A label value and object name: c<cpu>-m<memory>[-t<n>], lower case. */
  name: string;
  capacity: Record<string, string>;
  labels: Record<string, string>;
  taints: MachineTaint[];
  /** How many machines of the inventory have this shape. */
  count: number;
}

/** Labels that name one machine, not its shape. */
const PER_MACHINE_LABELS = new Set(['kubernetes.io/hostname']);

function shapeKey(m: Pick<Machine, 'capacity' | 'labels' | 'taints'>): string {
  const sorted = (o: Record<string, unknown>): [string, unknown][] => Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
  const labels = Object.fromEntries(Object.entries(m.labels ?? {}).filter(([k]) => !PER_MACHINE_LABELS.has(k)));
  const taints = [...(m.taints ?? [])].map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).sort();
  return JSON.stringify([sorted(m.capacity), sorted(labels), taints]);
}

/** Whole cores of a cpu quantity ("16", "15500m"), for names, prices and limits. */
export function cpuCores(q: string | number): number {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

/** The inventory's machines grouped into shapes, smallest cpu first. */
export function machineShapes(machines: readonly Pick<Machine, 'capacity' | 'labels' | 'taints'>[]): Shape[] {
  const byKey = new Map<string, Shape>();
  for (const m of machines) {
    const key = shapeKey(m);
    const seen = byKey.get(key);
    if (seen) {
      seen.count++;
      continue;
    }
    const capacity = Object.fromEntries(Object.entries(m.capacity).map(([k, v]) => [k, String(v)]));
    const labels = Object.fromEntries(Object.entries(m.labels ?? {}).filter(([k]) => !PER_MACHINE_LABELS.has(k)));
    byKey.set(key, { name: '', capacity, labels, taints: [...(m.taints ?? [])], count: 1 });
  }
  const shapes = [...byKey.values()].sort((a, b) => cpuCores(a.capacity.cpu ?? 0) - cpuCores(b.capacity.cpu ?? 0) || a.taints.length - b.taints.length);
  const used = new Map<string, number>();
  for (const s of shapes) {
    const base = `c${s.capacity.cpu}-m${s.capacity.memory}${s.taints.length ? '-t' : ''}`.toLowerCase().replace(/[^a-z0-9-]/g, '');
    const n = used.get(base) ?? 0;
    used.set(base, n + 1);
    s.name = n === 0 ? base : `${base}-${n}`;
  }
  return shapes;
}

// ---- Karpenter (kwok provider) ----

export const KARPENTER_ZONE = 'zone-a';
const INSTANCE_TYPE_LABEL = 'node.kubernetes.io/instance-type';
const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The kwok provider's instance-types file (INSTANCE_TYPES_FILE_PATH): one type per shape. */
export function karpenterInstanceTypes(shapes: readonly Shape[]): unknown[] {
  return shapes.map((s) => ({
    name: s.name,
    offerings: [
      {
        // Price by cores: the smaller shape is the cheaper one, as bamel prefers the best fit.
        Price: cpuCores(s.capacity.cpu ?? 0) / 100,
        Available: true,
        Requirements: [
          { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
          // A zone label of the machines is the type's zone: the NodePool's label must match an offering.
          { key: ZONE_LABEL, operator: 'In', values: [s.labels[ZONE_LABEL] ?? KARPENTER_ZONE] },
        ],
      },
    ],
    architecture: 'amd64',
    operatingSystems: ['linux'],
    resources: s.capacity,
  }));
}

export interface KarpenterDisruption {
  consolidationPolicy: 'WhenEmpty' | 'WhenEmptyOrUnderutilized';
  /** e.g. "60s"; Karpenter's default is 0s. */
  consolidateAfter: string;
}

/** A KWOKNodeClass and one NodePool per shape (name prefix + shape name). */
export function karpenterObjects(shapes: readonly Shape[], opts: { prefix: string; labels?: Record<string, string>; disruption: KarpenterDisruption }): Record<string, unknown>[] {
  const nodeClass = { apiVersion: 'karpenter.kwok.sh/v1alpha1', kind: 'KWOKNodeClass', metadata: { name: opts.prefix } };
  const pools = shapes.map((s, i) => ({
    apiVersion: 'karpenter.sh/v1',
    kind: 'NodePool',
    metadata: { name: `${opts.prefix}-${s.name}`, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      // Higher weight first: the smallest shape is tried first.
      weight: Math.max(1, 100 - i),
      limits: { cpu: String(cpuCores(s.capacity.cpu ?? 0) * s.count) },
      disruption: { consolidationPolicy: opts.disruption.consolidationPolicy, consolidateAfter: opts.disruption.consolidateAfter },
      template: {
        metadata: { labels: s.labels },
        spec: {
          nodeClassRef: { group: 'karpenter.kwok.sh', kind: 'KWOKNodeClass', name: opts.prefix },
          requirements: [
            { key: INSTANCE_TYPE_LABEL, operator: 'In', values: [s.name] },
            { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
          ],
          ...(s.taints.length ? { taints: s.taints.map((t) => ({ key: t.key, ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect })) } : {}),
          expireAfter: 'Never',
        },
      },
    },
  }));
  return [nodeClass, ...pools];
}

// ---- Cluster Autoscaler (kwok provider) ----

export const CA_NODEGROUP_LABEL = 'kwok-nodegroup';

/** The kwok provider's config (ConfigMap kwok-provider-config, key config): templates from a ConfigMap. */
export function clusterAutoscalerProviderConfig(templatesConfigMap: string): string {
  return [
    'apiVersion: v1alpha1',
    'readNodesFrom: configmap',
    'nodegroups:',
    `  fromNodeLabelKey: "${CA_NODEGROUP_LABEL}"`,
    'configmap:',
    `  name: ${templatesConfigMap}`,
    'kwok:',
    '  install: false',
    '',
  ].join('\n');
}

/** The template Nodes (ConfigMap kwok-provider-templates, key templates): a v1 List, one Node per shape. */
export function clusterAutoscalerTemplates(shapes: readonly Shape[], prefix: string): Record<string, unknown> {
  const items = shapes.map((s) => {
    const name = `${prefix}-${s.name}`;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: {
          'cluster-autoscaler.kwok.nodegroup/min-count': '0',
          'cluster-autoscaler.kwok.nodegroup/max-count': String(s.count),
          'cluster-autoscaler.kwok.nodegroup/desired-count': '0',
        },
        labels: {
          ...s.labels,
          [CA_NODEGROUP_LABEL]: name,
          [INSTANCE_TYPE_LABEL]: s.name,
          'kubernetes.io/arch': 'amd64',
          'kubernetes.io/os': 'linux',
          'kubernetes.io/hostname': name,
        },
      },
      spec: s.taints.length ? { taints: s.taints.map((t) => ({ key: t.key, ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect })) } : {},
      status: { capacity: s.capacity, allocatable: s.capacity },
    };
  });
  return { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
}
