import type { V1Node, V1NodeSelectorTerm, V1Pod, V1PodDisruptionBudget, V1Taint, V1Toleration } from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import { DRAINING_TAINT, type ScaleDown } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { MachineEnergy, ReadyMachine, ScaleDownInput } from '../../controller/scale-down.js';
import { seededRandom, type Random } from '../../bench/helpers/random.js';

/**
 * Seeded random scale-down inputs for the differential test: Nodes of mixed shapes (some
 * full, overcommitted, cordoned, not Ready or draining), taints of every effect, zone, rack,
 * disk and unique labels, pods with nodeSelectors, required node affinity (on labels, on the
 * hostname, on the Node's name), tolerations, extended resources, ephemeral storage, invalid
 * quantities; DaemonSet, mirror, finished, deleting, controller-less, Job, kube-system and
 * annotated pods; PodDisruptionBudgets in every state; energy holds, wear limits, pauses,
 * forced drains and tight drain slots.
 */

export const T0 = Date.parse('2026-11-28T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const ZONES = ['a', 'b', 'c'];
const TAINTS: V1Taint[] = [
  { key: 'gpu', value: 'true', effect: 'NoSchedule' },
  { key: 'dedicated', value: 'batch', effect: 'NoExecute' },
  { key: 'soft', effect: 'PreferNoSchedule' },
  { key: 'level', value: '5', effect: 'NoSchedule' },
];
const TOLERATIONS: V1Toleration[] = [
  { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'dedicated', operator: 'Equal', value: 'batch' },
  { operator: 'Exists' },
  { key: 'level', operator: 'Gt', value: '3', effect: 'NoSchedule' },
  { key: 'gpu', value: 'false', effect: 'NoSchedule' },
];

interface Shape {
  cpu: number;
  memGi: number;
  pods: number;
  gpus?: number;
}
const SHAPES: Shape[] = [
  { cpu: 4, memGi: 16, pods: 110 },
  { cpu: 8, memGi: 32, pods: 110 },
  { cpu: 16, memGi: 64, pods: 20 },
  { cpu: 32, memGi: 128, pods: 110, gpus: 4 },
  { cpu: 64, memGi: 256, pods: 6 },
];

function randomTerm(rng: Random, names: readonly string[]): V1NodeSelectorTerm {
  switch (rng.int(7)) {
    case 0:
      return { matchExpressions: [{ key: 'zone', operator: 'In', values: [rng.pick(ZONES), rng.pick(ZONES)] }] };
    case 1:
      return { matchExpressions: [{ key: 'disk', operator: 'NotIn', values: ['hdd'] }] };
    case 2:
      return { matchExpressions: [{ key: 'rack', operator: 'Gt', values: [String(rng.int(6))] }] };
    case 3:
      return { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [rng.pick(names), rng.pick(names)] }] };
    case 4:
      return { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: [rng.pick(names)] }] };
    case 5:
      return { matchExpressions: [{ key: 'disk', operator: 'Exists' }, { key: 'zone', operator: 'DoesNotExist' }] };
    default:
      return { matchExpressions: [{ key: 'zone', operator: 'Bogus', values: ['a'] }] };
  }
}

/** `plain`: a ReplicaSet's pod outside kube-system, which nothing but its budget blocks. */
function randomPod(rng: Random, node: string, names: readonly string[], i: number, plain: boolean): V1Pod {
  const owner = plain ? 'ReplicaSet' : rng.pick(['ReplicaSet', 'ReplicaSet', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'none']);
  const ns = plain ? rng.pick(['default', 'web']) : rng.pick(['default', 'default', 'web', 'batch', 'kube-system']);
  const annotations: Record<string, string> = {};
  if (!plain && rng.chance(0.03)) annotations['kubernetes.io/config.mirror'] = 'x';
  if (!plain && rng.chance(0.03)) annotations['autoscaling.bamel.io/do-not-disrupt'] = 'true';
  if (!plain && rng.chance(0.05)) annotations['cluster-autoscaler.kubernetes.io/safe-to-evict'] = rng.pick(['true', 'false']);
  const requests: Record<string, string> = {};
  if (rng.chance(0.9)) requests.cpu = rng.pick(['100m', '250m', '500m', '1', '2', '3', '6', '12']);
  if (rng.chance(0.9)) requests.memory = rng.pick(['128Mi', '512Mi', '1Gi', '4Gi', '8Gi', '24Gi', '100Gi']);
  if (rng.chance(0.05)) requests['ephemeral-storage'] = rng.pick(['1Gi', '500Gi']);
  if (rng.chance(0.05)) requests['nvidia.com/gpu'] = String(1 + rng.int(2));
  if (rng.chance(0.01)) requests.cpu = 'lots';
  const spec: V1Pod['spec'] = { nodeName: node, containers: [{ name: 'c', resources: { requests } }] };
  if (rng.chance(0.25)) spec.nodeSelector = rng.chance(0.15) ? { 'kubernetes.io/hostname': rng.pick(names) } : { zone: rng.pick(ZONES) };
  if (rng.chance(0.2)) spec.tolerations = [rng.pick(TOLERATIONS), ...(rng.chance(0.3) ? [rng.pick(TOLERATIONS)] : [])];
  if (rng.chance(0.2)) {
    const terms = [randomTerm(rng, names), ...(rng.chance(0.3) ? [randomTerm(rng, names)] : [])];
    spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } };
  }
  if (!plain && rng.chance(0.04)) spec.volumes = [{ name: 'scratch', emptyDir: {} }];
  const phase = rng.chance(0.05) ? rng.pick(['Succeeded', 'Failed', 'Pending']) : 'Running';
  return {
    metadata: {
      name: `${node}-p${i}`,
      namespace: ns,
      uid: `${node}-${i}`,
      labels: { app: rng.pick(['web', 'api', 'db']) },
      annotations,
      ...(rng.chance(0.03) ? { deletionTimestamp: new Date(T0) } : {}),
      ownerReferences: owner === 'none' ? [] : [{ apiVersion: 'apps/v1', kind: owner, name: `${owner.toLowerCase()}-1`, uid: 'o', controller: true }],
    },
    spec,
    status: { phase },
  };
}

function replica(template: V1Pod, node: string, i: number): V1Pod {
  return { ...template, metadata: { ...template.metadata, name: `${node}-r${i}`, uid: `${node}-r${i}` }, spec: { ...template.spec, containers: template.spec?.containers ?? [], nodeName: node } };
}

function randomNode(rng: Random, name: string, uniqueLabels: boolean): V1Node {
  const shape = rng.pick(SHAPES);
  const labels: Record<string, string> = { 'kubernetes.io/hostname': name, rack: String(rng.int(8)) };
  if (rng.chance(0.9)) labels.zone = rng.pick(ZONES);
  if (rng.chance(0.5)) labels.disk = rng.pick(['ssd', 'hdd']);
  if (uniqueLabels) labels['example.com/serial'] = `${name}-sn`;
  const taints = rng.chance(0.3) ? [rng.pick(TAINTS)] : [];
  if (rng.chance(0.03)) taints.push({ key: DRAINING_TAINT, effect: 'NoSchedule' });
  const allocatable: Record<string, string> = { cpu: String(shape.cpu), memory: `${shape.memGi}Gi`, pods: String(shape.pods), 'ephemeral-storage': '100Gi' };
  if (shape.gpus) allocatable['nvidia.com/gpu'] = String(shape.gpus);
  return {
    metadata: { name, labels, annotations: rng.chance(0.03) ? { 'autoscaling.bamel.io/scale-down-disabled': 'true' } : {} },
    spec: { taints, ...(rng.chance(0.05) ? { unschedulable: true } : {}) },
    status: { allocatable, conditions: [{ type: 'Ready', status: rng.chance(0.05) ? 'False' : 'True' }] },
  };
}

function randomBudget(rng: Random, i: number): V1PodDisruptionBudget {
  const allowed = rng.int(3);
  return {
    metadata: { name: `pdb${i}`, namespace: rng.pick(['default', 'web', 'kube-system']), generation: 2 },
    spec: { selector: rng.chance(0.1) ? {} : { matchLabels: { app: rng.pick(['web', 'api', 'db']) } } },
    ...(rng.chance(0.1) ? {} : { status: { disruptionsAllowed: allowed, currentHealthy: 3, desiredHealthy: 3 - allowed, expectedPods: 3, observedGeneration: rng.chance(0.9) ? 2 : 1 } }),
  };
}

function machineOf(rng: Random, name: string, node: V1Node): ParsedMachine {
  const alloc = node.status?.allocatable ?? {};
  return {
    name,
    bmc: { address: 'ipmi://127.0.0.1:1', credentialsSecret: 's', insecureSkipVerify: false },
    labels: {},
    taints: [],
    capacity: { cpu: BigInt(alloc.cpu ?? '0') * 1000n, memory: BigInt((alloc.memory ?? '0Gi').replace('Gi', '')) * 1024n ** 3n * 1000n },
    ...(rng.chance(0.8) ? { power: { maxWatts: rng.pick([200, 300, 300, 450]) } } : {}),
  } as unknown as ParsedMachine;
}

/**
 * One random planner input; `size` Nodes, most of them this autoscaler's Ready machines.
 * `tight`: every machine a candidate and drain slots for all, so that the room runs out as
 * machines are chosen one after the other.
 */
export function randomScaleDownInput(seed: number, size: number, tight = false): ScaleDownInput {
  const rng = seededRandom(seed);
  const uniqueLabels = rng.chance(0.2);
  // Replicas: every Node runs the first few of the same pods, so that many machines' pods are alike.
  const templates = rng.chance(0.3) ? Array.from({ length: 1 + rng.int(6) }, (_, i) => randomPod(rng, 'template', [`n${seed}-000`], i, rng.chance(0.8))) : undefined;
  const names = Array.from({ length: size }, (_, i) => `n${seed}-${String(i).padStart(3, '0')}`);
  const ready: ReadyMachine[] = [];
  const nodes: ScaleDownInput['nodes'] = [];
  const energies = new Map<string, MachineEnergy>();
  // Light, middling and full Nodes: the fit of moved pods depends on who is full.
  const load = rng.pick([0.2, 0.5, 0.9]);
  for (const name of names) {
    const node = randomNode(rng, name, uniqueLabels);
    const podCount = rng.int(Math.max(1, Math.round(12 * load))) + (rng.chance(load) ? rng.int(10) : 0);
    const pods = templates
      ? templates.slice(0, rng.int(templates.length + 1)).map((p, i) => replica(p, name, i))
      : Array.from({ length: podCount }, (_, i) => randomPod(rng, name, names, i, tight && rng.chance(0.95)));
    nodes.push({ node, pods });
    if (rng.chance(0.15)) continue; // a Node that is not this autoscaler's
    const since = rng.pick([T0 - 3_600_000, T0 - 300_000, T0, NaN]);
    ready.push({
      machine: machineOf(rng, name, node),
      node,
      pods,
      status: {
        name,
        phase: 'Ready',
        since: iso(T0 - 7_200_000),
        ...(Number.isNaN(since) ? {} : { unneededSince: iso(since) }),
        ...(rng.chance(0.3) ? { disruption: 'Next' as const } : {}),
      },
    });
    if (rng.chance(0.3)) {
      const hold = rng.pick([0, 0, 200_000, 3_600_000]);
      energies.set(name, {
        holdMs: hold,
        ...(hold > 0 ? { holdWhy: 'boots slowly' } : {}),
        ...(rng.chance(0.1) ? { wear: { blocker: { kind: 'WearLimit' as const, message: `${name} cycled 6 times today` }, until: T0 + 3_600_000 } } : {}),
        cycles: rng.int(4),
      });
    }
  }
  // Shuffle the readies so the planner's order does not follow the Nodes'.
  for (let i = ready.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ready[i], ready[j]] = [ready[j] as ReadyMachine, ready[i] as ReadyMachine];
  }
  const scaleDown: ScaleDown = {
    enabled: tight || rng.chance(0.95),
    utilizationThreshold: tight ? 10 : rng.pick([0.3, 0.5, 0.8, 1]),
    unneededSeconds: tight ? 0 : rng.pick([0, 600, 7200]),
    cooldownSeconds: 600,
    drainTimeoutSeconds: 600,
    maxConcurrentDrains: tight ? 1000 : rng.pick([1, 2, 3, 10, 50]),
    maxPowerCyclesPerDay: 6,
    breakEven: { enabled: true, floorSeconds: 60 },
  };
  const force = !tight && rng.chance(0.05);
  return {
    now: T0,
    scaleDown,
    minMachines: tight ? 0 : rng.pick([0, 0, 1, Math.floor(size / 2)]),
    ready,
    nodes,
    pdbs: Array.from({ length: rng.int(5) }, (_, i) => randomBudget(rng, i)),
    onCount: ready.length + rng.int(3),
    inFlight: tight ? 0 : rng.int(3),
    ...(!tight && rng.chance(0.05) ? { paused: 'pods are pending' } : {}),
    ...(force || rng.chance(0.05) ? { ignoreBudgets: true } : {}),
    ...(force ? { force: true } : {}),
    ...(energies.size > 0 ? { energy: (m: string) => energies.get(m) } : {}),
  };
}
