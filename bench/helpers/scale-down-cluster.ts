import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { ScaleDown } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { ReadyMachine, ScaleDownInput } from '../../controller/scale-down.js';

/**
 * The clusters bench/scale-down.bench.ts plans over: Ready machines of 32 cpu and 128Gi,
 * labelled with one of three zones, one in ten tainted gpu=true:NoSchedule, each running
 * `podsPer` pods of one controller (a quarter of them selecting their zone).
 */

export const BENCH_SCALE_DOWN: ScaleDown = {
  enabled: true,
  utilizationThreshold: 0.5,
  unneededSeconds: 600,
  cooldownSeconds: 600,
  drainTimeoutSeconds: 600,
  maxConcurrentDrains: 3,
  maxPowerCyclesPerDay: 6,
  breakEven: { enabled: true, floorSeconds: 60 },
};
export const BENCH_NOW = Date.parse('2026-11-28T12:00:00Z');

export interface MachineShape {
  pods: number;
  cpuPerPod: number;
  /** Labels beside hostname and zone. */
  labels?: Record<string, string>;
  /** One more pod that selects these labels (placed after the others). */
  selecting?: Record<string, string>;
}

/** One Ready machine, its Node and its pods. */
export function benchMachine(i: number, shape: MachineShape): ReadyMachine {
  const name = `m-${String(i).padStart(5, '0')}`;
  const node: V1Node = {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, zone: `z${i % 3}`, ...shape.labels } },
    spec: i % 10 === 0 ? { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] } : {},
    status: { allocatable: { cpu: '32', memory: '128Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const pods: V1Pod[] = [];
  const total = shape.pods + (shape.selecting ? 1 : 0);
  for (let j = 0; j < total; j++) {
    const selector = j === shape.pods ? shape.selecting : j % 4 === 0 ? { zone: `z${i % 3}` } : undefined;
    pods.push({
      metadata: {
        name: `${name}-p${j}`,
        namespace: `ns${j % 7}`,
        uid: `${name}-${j}`,
        labels: { app: `app${j % 20}` },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs', controller: true }],
      },
      spec: {
        nodeName: name,
        ...(selector ? { nodeSelector: selector } : {}),
        containers: [{ name: 'c', resources: { requests: { cpu: String(shape.cpuPerPod), memory: `${shape.cpuPerPod * 2}Gi` } } }],
      },
      status: { phase: 'Running' },
    });
  }
  const machine = {
    name,
    bmc: { address: 'ipmi://127.0.0.1:1', credentialsSecret: 's', insecureSkipVerify: false },
    labels: {},
    taints: [],
    capacity: { cpu: 32_000n, memory: 128n * 1024n ** 3n * 1000n },
    power: { maxWatts: 300 + (i % 7) * 50 },
  } as unknown as ParsedMachine;
  const at = (ago: number): string => new Date(BENCH_NOW - ago).toISOString();
  return { machine, node, pods, status: { name, phase: 'Ready', since: at(7_200_000), unneededSince: at(3_600_000) } };
}

/** Every machine with the same shape: 8 pods of 1 cpu is 25 % (unneeded), of 3 cpu 75 % (busy). */
export function uniformCluster(machines: number, podsPer: number, cpuPerPod: number): ReadyMachine[] {
  return Array.from({ length: machines }, (_, i) => benchMachine(i, { pods: podsPer, cpuPerPod }));
}

/**
 * Half the machines full (8 pods of 4 cpu, labelled disk=ssd): fullest first, they come
 * first in the order pods are placed in. The other half unneeded (8 pods of 1 cpu); one in
 * ten of those also runs a pod that selects disk=ssd and so fits nowhere.
 */
export function mixedCluster(machines: number): ReadyMachine[] {
  return Array.from({ length: machines }, (_, i) =>
    i % 2 === 0
      ? benchMachine(i, { pods: 8, cpuPerPod: 4, labels: { disk: 'ssd' } })
      : benchMachine(i, { pods: 8, cpuPerPod: 1, ...(i % 20 === 1 ? { selecting: { disk: 'ssd' } } : {}) }),
  );
}

export function benchInput(ready: ReadyMachine[]): ScaleDownInput {
  return { now: BENCH_NOW, scaleDown: BENCH_SCALE_DOWN, minMachines: 0, ready, nodes: ready.map((r) => ({ node: r.node, pods: r.pods })), pdbs: [], onCount: ready.length, inFlight: 0 };
}
