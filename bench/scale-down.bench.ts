// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/scale-down.bench.ts [--json]
//
// What one reconcile's scale-down planning costs (controller/scale-down.ts: utilisation,
// blockers, the fit of every candidate's pods on the other Nodes, ranking) for 100, 1,000
// and 2,000 Ready machines, every one unneeded (the worst case: each one's pods are placed
// on all the others), side by side with the same cluster where every machine is busy (only
// utilisation is computed). Printed: ms per plan and the ratio.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';
import type { ScaleDown } from '../api/v1alpha1/baremetalautoscaler.js';
import { planScaleDown, type ReadyMachine } from '../controller/scale-down.js';

const SD: ScaleDown = { enabled: true, utilizationThreshold: 0.5, unneededSeconds: 600, cooldownSeconds: 600, drainTimeoutSeconds: 600, maxConcurrentDrains: 3, maxPowerCyclesPerDay: 6, breakEven: { enabled: true, floorSeconds: 60 } };
const NOW = Date.parse('2026-11-28T12:00:00Z');

function cluster(machines: number, podsPer: number, cpuPerPod: number): ReadyMachine[] {
  const out: ReadyMachine[] = [];
  for (let i = 0; i < machines; i++) {
    const name = `m-${String(i).padStart(5, '0')}`;
    const node: V1Node = {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, zone: `z${i % 3}` } },
      spec: i % 10 === 0 ? { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] } : {},
      status: { allocatable: { cpu: '32', memory: '128Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
    };
    const pods: V1Pod[] = [];
    for (let j = 0; j < podsPer; j++) {
      pods.push({
        metadata: { name: `${name}-p${j}`, namespace: `ns${j % 7}`, uid: `${name}-${j}`, labels: { app: `app${j % 20}` }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs', controller: true }] },
        spec: {
          nodeName: name,
          ...(j % 4 === 0 ? { nodeSelector: { zone: `z${i % 3}` } } : {}),
          containers: [{ name: 'c', resources: { requests: { cpu: String(cpuPerPod), memory: `${cpuPerPod * 2}Gi` } } }],
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
    out.push({ machine, node, pods, status: { name, phase: 'Ready', since: new Date(NOW - 7_200_000).toISOString(), unneededSince: new Date(NOW - 3_600_000).toISOString() } });
  }
  return out;
}

function time(ready: ReadyMachine[]): { ms: number; next: number } {
  const input = { now: NOW, scaleDown: SD, minMachines: 0, ready, nodes: ready.map((r) => ({ node: r.node, pods: r.pods })), pdbs: [], onCount: ready.length, inFlight: 0 };
  planScaleDown(input); // warm-up
  const runs = ready.length >= 1000 ? 3 : 10;
  const start = performance.now();
  let next = 0;
  for (let i = 0; i < runs; i++) next = [...planScaleDown(input).machines.values()].filter((m) => m.disruption === 'Next').length;
  return { ms: (performance.now() - start) / runs, next };
}

console.log('machines  pods/machine  all unneeded (ms/plan)  all busy (ms/plan)  ratio   chosen');
const sizes: { machines: number; allUnneededMs: number; allBusyMs: number }[] = [];
for (const n of [100, 1000, 2000]) {
  const idle = time(cluster(n, 8, 1)); // 8 of 32 cpu: 25 %, unneeded
  const busy = time(cluster(n, 8, 3)); // 24 of 32 cpu: 75 %, busy
  console.log(
    `${String(n).padStart(8)}  ${'8'.padStart(12)}  ${idle.ms.toFixed(1).padStart(22)}  ${busy.ms.toFixed(1).padStart(18)}  ${(idle.ms / busy.ms).toFixed(1).padStart(5)}x  ${idle.next}`,
  );
  sizes.push({ machines: n, allUnneededMs: round(idle.ms), allBusyMs: round(busy.ms) });
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ bench: 'scale-down', sizes }));

function round(ms: number): number {
  return Number(ms.toFixed(3));
}
