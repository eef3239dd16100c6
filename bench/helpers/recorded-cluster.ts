import type { V1ConfigMap, V1Container, V1Node, V1NodeSelectorTerm, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { FINALIZER, INVENTORY_LABEL, INVENTORY_KEY, type BareMetalAutoscaler, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { predictedNodeLabels } from '../../scheduling/index.js';
import { seededRandom, type Random } from './random.js';

/**
 * A cluster as the manager's informers would hold it, built in memory: the inventory
 * ConfigMap, the Nodes of the machines that are on, the pods (running and pending) and the
 * autoscaler with the status an earlier reconcile left. Deterministic for a given seed.
 *
 * The mix is meant to look like a real site rather than a best case: four machine shapes,
 * GPU machines tainted, a few machines dedicated to batch work, zones and racks; pending
 * pods mostly from Deployments (identical replicas), some one-off pods, GPU pods, pods
 * pinned to memory machines, to SSD racks or to zones, and a small share no machine can
 * host (a request larger than any machine, as misconfigured workloads do).
 */

export interface RecordedClusterOptions {
  machines: number;
  pendingPods: number;
  /** Instead of pendingPods: as many pending pods as bring all the pods to this number. */
  totalPods?: number;
  /** Share of the machines that are Ready Nodes running pods. */
  readyShare?: number;
  /** Machines powering on or joining when the state was recorded (they take pods first). */
  joining?: number;
  maxConcurrentPowerOns?: number;
  seed?: number;
  /** The wall clock the recorded times are relative to (ms). */
  now: number;
}

export interface RecordedCluster {
  autoscaler: BareMetalAutoscaler;
  inventory: V1ConfigMap;
  nodes: V1Node[];
  pods: V1Pod[];
  pendingCount: number;
  runningCount: number;
  machineCount: number;
}

export const AUTOSCALER = 'bench';
export const INVENTORY_NAMESPACE = 'bamel-system';
export const INVENTORY_NAME = 'machines';

interface Shape {
  name: string;
  share: number;
  capacity: Record<string, string>;
  labels: Record<string, string>;
  taints: { key: string; value: string; effect: string }[];
  maxWatts: number;
  idleWatts: number;
  bootSeconds: number;
}

const SHAPES: Shape[] = [
  { name: 'general', share: 0.4, capacity: { cpu: '32', memory: '128Gi', 'ephemeral-storage': '1Ti', pods: '110' }, labels: { 'node.bamel.io/class': 'general' }, taints: [], maxWatts: 450, idleWatts: 140, bootSeconds: 240 },
  { name: 'compute', share: 0.25, capacity: { cpu: '64', memory: '256Gi', 'ephemeral-storage': '2Ti', pods: '250' }, labels: { 'node.bamel.io/class': 'compute' }, taints: [], maxWatts: 700, idleWatts: 200, bootSeconds: 300 },
  { name: 'memory', share: 0.2, capacity: { cpu: '32', memory: '768Gi', 'ephemeral-storage': '1Ti', pods: '110' }, labels: { 'node.bamel.io/class': 'memory' }, taints: [], maxWatts: 600, idleWatts: 180, bootSeconds: 360 },
  {
    name: 'gpu',
    share: 0.15,
    capacity: { cpu: '48', memory: '384Gi', 'ephemeral-storage': '2Ti', pods: '110', 'nvidia.com/gpu': '8' },
    labels: { 'node.bamel.io/class': 'gpu', 'nvidia.com/gpu.product': 'A100' },
    taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
    maxWatts: 3200,
    idleWatts: 400,
    bootSeconds: 420,
  },
];

const ZONES = ['a', 'b', 'c'];
const MACHINES_PER_RACK = 40;

interface InventoryMachine {
  name: string;
  bmc: { address: string; credentialsSecret: string };
  labels: Record<string, string>;
  taints: { key: string; value: string; effect: string }[];
  capacity: Record<string, string>;
  power: { idleWatts: number; maxWatts: number };
  bootSeconds: number;
}

function makeMachines(count: number, random: Random): InventoryMachine[] {
  const machines: InventoryMachine[] = [];
  for (let i = 0; i < count; i++) {
    const rack = Math.floor(i / MACHINES_PER_RACK);
    const shape = SHAPES[random.weighted(SHAPES.map((s) => s.share))] as Shape;
    const taints = [...shape.taints];
    if (shape.name === 'general' && random.chance(0.05)) taints.push({ key: 'dedicated', value: 'batch', effect: 'NoSchedule' });
    if (random.chance(0.03)) taints.push({ key: 'maintenance', value: 'soon', effect: 'PreferNoSchedule' });
    // Every BMC has its own address, as in a real rack (10.r.r.i).
    const ip = `10.${(rack >> 8) & 255}.${rack & 255}.${(i % MACHINES_PER_RACK) + 10}`;
    machines.push({
      name: `rack-${String(rack).padStart(3, '0')}-${String(i % MACHINES_PER_RACK).padStart(2, '0')}`,
      bmc: { address: random.chance(0.7) ? `redfish+https://${ip}/redfish/v1/Systems/1` : `ipmi://${ip}`, credentialsSecret: `bmc-rack-${rack}` },
      labels: {
        ...shape.labels,
        rack: `rack-${String(rack).padStart(3, '0')}`,
        'topology.kubernetes.io/zone': ZONES[rack % ZONES.length] as string,
        disk: rack % 3 === 0 ? 'hdd' : 'ssd',
        'node.kubernetes.io/instance-type': shape.name,
      },
      taints,
      capacity: shape.capacity,
      power: { idleWatts: shape.idleWatts, maxWatts: shape.maxWatts },
      bootSeconds: shape.bootSeconds,
    });
  }
  return machines;
}

/** What a Deployment's pods ask for: the part that is the same for every replica. */
interface PodTemplate {
  name: string;
  namespace: string;
  containers: V1Container[];
  tolerations: V1Toleration[];
  nodeSelector?: Record<string, string>;
  terms?: V1NodeSelectorTerm[];
}

/** The admission plugin DefaultTolerationSeconds adds these to every pod. */
const DEFAULT_TOLERATIONS: V1Toleration[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
];

const NAMESPACES = ['web', 'api', 'batch', 'ml', 'data', 'platform'];

function makeTemplate(i: number, random: Random): PodTemplate {
  const kind = random.weighted([60, 12, 10, 8, 6, 4]);
  const cpu = random.pick(['100m', '250m', '500m', '1', '2', '4', '8']);
  const memory = random.pick(['128Mi', '512Mi', '1Gi', '2Gi', '4Gi', '8Gi', '16Gi']);
  const requests: Record<string, string> = { cpu, memory };
  const limits: Record<string, string> = {};
  const tolerations = [...DEFAULT_TOLERATIONS];
  let nodeSelector: Record<string, string> | undefined;
  let terms: V1NodeSelectorTerm[] | undefined;
  switch (kind) {
    case 1: // GPU training or inference
      limits['nvidia.com/gpu'] = random.pick(['1', '1', '2', '4', '8']);
      requests.cpu = random.pick(['4', '8', '16']);
      requests.memory = random.pick(['32Gi', '64Gi', '128Gi']);
      tolerations.push({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
      break;
    case 2: // in-memory databases and caches, pinned to the memory machines
      requests.memory = random.pick(['64Gi', '128Gi', '256Gi', '512Gi']);
      nodeSelector = { 'node.bamel.io/class': 'memory' };
      break;
    case 3: // latency-sensitive: SSD racks in two zones
      nodeSelector = { disk: 'ssd', 'kubernetes.io/os': 'linux' };
      terms = [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a', 'b'] }] }];
      break;
    case 4: // batch work that may use the dedicated machines
      requests.cpu = random.pick(['4', '8', '16', '24']);
      tolerations.push({ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' });
      terms = [{ matchExpressions: [{ key: 'node.bamel.io/class', operator: 'NotIn', values: ['gpu'] }] }];
      break;
    case 5: // big compute, off the small machines
      requests.cpu = random.pick(['24', '32', '48']);
      requests.memory = random.pick(['64Gi', '96Gi']);
      terms = [{ matchExpressions: [{ key: 'node.bamel.io/class', operator: 'In', values: ['compute'] }] }];
      break;
    default:
      if (random.chance(0.4)) nodeSelector = { 'kubernetes.io/os': 'linux' };
  }
  const containers: V1Container[] = [{ name: 'app', image: `registry.example/${i}:1`, resources: { requests, ...(Object.keys(limits).length > 0 ? { limits } : {}) } }];
  if (random.chance(0.3)) containers.push({ name: 'proxy', image: 'registry.example/proxy:1', resources: { requests: { cpu: '100m', memory: '128Mi' } } });
  return {
    name: `app-${String(i).padStart(3, '0')}`,
    namespace: random.pick(NAMESPACES),
    containers,
    tolerations,
    ...(nodeSelector ? { nodeSelector } : {}),
    ...(terms ? { terms } : {}),
  };
}

/** Workloads nothing can host: more GPUs than any machine has, or a zone that does not exist. */
function unplaceableTemplates(): PodTemplate[] {
  return [
    {
      name: 'train-16gpu',
      namespace: 'ml',
      containers: [{ name: 'app', image: 'registry.example/train:1', resources: { requests: { cpu: '32', memory: '256Gi' }, limits: { 'nvidia.com/gpu': '16' } } }],
      tolerations: [...DEFAULT_TOLERATIONS, { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    },
    {
      name: 'edge-zone-d',
      namespace: 'web',
      containers: [{ name: 'app', image: 'registry.example/edge:1', resources: { requests: { cpu: '1', memory: '1Gi' } } }],
      tolerations: DEFAULT_TOLERATIONS,
      nodeSelector: { 'topology.kubernetes.io/zone': 'd' },
    },
  ];
}

/** Random uids collide once in a while at this scale; a counter in the last group keeps them unique. */
let uidCounter = 0;
function uid(random: Random): string {
  uidCounter++;
  const hex = (n: number): string => Math.floor(random.next() * 16 ** n).toString(16).padStart(n, '0');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${hex(4)}-${uidCounter.toString(16).padStart(12, '0')}`;
}

function podFrom(template: PodTemplate, name: string, random: Random, extra: { nodeName?: string; unschedulableAt?: string; startedAt?: string }): V1Pod {
  const scheduled = extra.nodeName !== undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: template.namespace,
      uid: uid(random),
      resourceVersion: String(100_000 + random.int(900_000)),
      labels: { app: template.name },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${template.name}-7d9f8c6b5`, uid: 'rs', controller: true }],
    },
    spec: {
      containers: template.containers,
      tolerations: template.tolerations,
      ...(template.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
      ...(template.terms ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: template.terms } } } } : {}),
      ...(scheduled ? { nodeName: extra.nodeName } : {}),
      schedulerName: 'default-scheduler',
      restartPolicy: 'Always',
    },
    status: scheduled
      ? { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: extra.startedAt as unknown as Date }] }
      : {
          phase: 'Pending',
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: '0/1000 nodes are available: insufficient cpu.',
              // As the informer cache holds it: the API server's string, second resolution.
              lastTransitionTime: extra.unschedulableAt as unknown as Date,
            },
          ],
        },
  };
}

const daemonSetPod = (node: string, random: Random): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: `node-exporter-${node}`,
    namespace: 'monitoring',
    uid: uid(random),
    resourceVersion: '42',
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-exporter', uid: 'ds', controller: true }],
  },
  spec: { nodeName: node, containers: [{ name: 'exporter', resources: { requests: { cpu: '100m', memory: '64Mi' } } }], tolerations: [{ operator: 'Exists' }] },
  status: { phase: 'Running' },
});

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function buildRecordedCluster(opts: RecordedClusterOptions): RecordedCluster {
  const random = seededRandom(opts.seed ?? 0x5eed);
  uidCounter = 0;
  const { now } = opts;
  const machines = makeMachines(opts.machines, random);
  const readyEvery = Math.round(1 / (opts.readyShare ?? 0.1));
  const joining = opts.joining ?? 5;

  const templates = Array.from({ length: 120 }, (_, i) => makeTemplate(i, random));
  // Replica counts follow a long tail: a few big Deployments and many small ones.
  const weights = templates.map(() => 1 / (1 + random.int(40)));

  const nodes: V1Node[] = [];
  const pods: V1Pod[] = [];
  const statuses: MachineStatus[] = [];
  let joiningLeft = joining;
  for (const [i, m] of machines.entries()) {
    if (i % readyEvery === 0) {
      nodes.push({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: m.name, labels: predictedNodeLabels(m.name, m.labels), resourceVersion: String(1000 + i) },
        spec: { taints: m.taints },
        status: {
          capacity: m.capacity,
          allocatable: m.capacity,
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady' },
            { type: 'MemoryPressure', status: 'False' },
            { type: 'DiskPressure', status: 'False' },
          ],
        },
      });
      pods.push(daemonSetPod(m.name, random));
      // Ready machines run a share of the workloads, up to about two thirds of their cpu.
      const cpuMilli = Number(m.capacity.cpu) * 1000;
      let used = 100;
      for (let k = 0; k < 60 && used < cpuMilli * 0.65; k++) {
        const template = templates[random.weighted(weights)] as PodTemplate;
        if (template.tolerations.length === DEFAULT_TOLERATIONS.length && m.taints.some((t) => t.effect === 'NoSchedule')) continue;
        if (template.containers[0]?.resources?.limits?.['nvidia.com/gpu'] !== undefined && !m.capacity['nvidia.com/gpu']) continue;
        used += milliCpu(template);
        pods.push(podFrom(template, `${template.name}-${m.name}-${k}`, random, { nodeName: m.name, startedAt: iso(now - 86_400_000) }));
      }
      statuses.push({ name: m.name, phase: 'Ready', since: iso(now - 2 * 86_400_000), reason: 'Joined', message: 'its Node joined and is Ready' });
    } else if (joiningLeft > 0 && i % 7 === 3) {
      joiningLeft--;
      statuses.push({ name: m.name, phase: 'Joining', since: iso(now - 30_000), reason: 'PoweredOn', message: 'the BMC reports it on; waiting for its Node', powerCyclesToday: 1, powerCyclesDay: iso(now).slice(0, 10) });
    } else if (random.chance(0.005)) {
      statuses.push({ name: m.name, phase: 'Failed', since: iso(now - 600_000), reason: 'PowerOnFailed', message: 'the BMC refused the request', failures: 1, retryAfter: iso(now + 3_600_000) });
    } else {
      statuses.push({ name: m.name, phase: 'Off', since: iso(now - 86_400_000), reason: 'PoweredOff', message: 'powered off', ...(random.chance(0.1) ? { powerCyclesToday: 1, powerCyclesDay: iso(now).slice(0, 10) } : {}) });
    }
  }
  const runningCount = pods.length;

  // Pending: Deployment replicas, about 5 % one-off pods, and 1 % no machine can host.
  const bad = unplaceableTemplates();
  const pendingCount = opts.totalPods !== undefined ? Math.max(0, opts.totalPods - runningCount) : opts.pendingPods;
  for (let i = 0; i < pendingCount; i++) {
    let template: PodTemplate;
    const roll = random.next();
    if (roll < 0.01) template = bad[i % bad.length] as PodTemplate;
    else if (roll < 0.06) template = { ...makeTemplate(1000 + i, random), name: `job-${i}` };
    else template = templates[random.weighted(weights)] as PodTemplate;
    const suffix = Math.floor(random.next() * 36 ** 5).toString(36).padStart(5, '0');
    pods.push(podFrom(template, `${template.name}-7d9f8c6b5-${suffix}`, random, { unschedulableAt: iso(now - random.int(120_000)) }));
  }

  const inventory: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: INVENTORY_NAME, namespace: INVENTORY_NAMESPACE, labels: { [INVENTORY_LABEL]: 'true' }, resourceVersion: '500' },
    // Shared capacity objects would become YAML aliases, which the parser caps (alias bombs).
    data: { [INVENTORY_KEY]: stringify({ machines }, { aliasDuplicateObjects: false }) },
  };
  const autoscaler: BareMetalAutoscaler = {
    apiVersion: 'autoscaling.bamel.io/v1alpha1',
    kind: 'BareMetalAutoscaler',
    metadata: { name: AUTOSCALER, uid: 'bench-uid', generation: 1, resourceVersion: '1000', finalizers: [FINALIZER] },
    spec: {
      inventory: { namespace: INVENTORY_NAMESPACE, name: INVENTORY_NAME },
      machineSelector: {},
      minMachines: 0,
      maxMachines: opts.machines,
      scaleUp: { cooldownSeconds: 60, maxConcurrentPowerOns: opts.maxConcurrentPowerOns ?? 100, joinTimeoutSeconds: 600, predictive: { enabled: false, lookaheadSeconds: 120 } },
      scaleDown: { enabled: true, utilizationThreshold: 0.5, unneededSeconds: 600, cooldownSeconds: 600, drainTimeoutSeconds: 600, maxConcurrentDrains: 1, maxPowerCyclesPerDay: 6, breakEven: { enabled: true, floorSeconds: 60 } },
      scoring: { usefulWeight: 1, nonUsefulWeight: 0.25 },
      pressure: {
        windowSeconds: 300,
        cpu: { level: 0.85, ratePerMinute: 0.1 },
        memory: { level: 0.85, ratePerMinute: 0.1 },
        ephemeralStorage: { level: 0.9, ratePerMinute: 0.1 },
        network: { requestsPerSecondRate: 0, bytesPerSecondRate: 0 },
      },
      dryRun: false,
      deletionPolicy: 'Retain',
    },
    status: {
      observedGeneration: 1,
      machines: statuses,
      // The last scale-up is past its cooldown: demand may power machines on now.
      lastScaleEvent: { time: iso(now - 600_000), direction: 'Up', machine: statuses[1]?.name ?? '', reason: 'powering on for 3 pending pod(s)' },
      lastScaleTime: iso(now - 600_000),
      conditions: [],
    },
  };
  return { autoscaler, inventory, nodes, pods, pendingCount, runningCount, machineCount: machines.length };
}

function milliCpu(template: PodTemplate): number {
  let total = 0;
  for (const c of template.containers) {
    const q = c.resources?.requests?.cpu ?? '0';
    total += q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000;
  }
  return total;
}
