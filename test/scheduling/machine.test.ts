import t from 'tap';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { parseInventoryText } from '../../api/inventory.js';
import { candidateFromMachine, candidateFromNode, predictedNodeLabels, UNSCHEDULABLE_TAINT } from '../../scheduling/machine.js';
import { GI, machine, requesting } from './fixtures/builders.js';

t.test('a machine that is off is the Node it will register as', async (t) => {
  const candidate = candidateFromMachine(machine('rack-a-01', { cpu: '32', memory: '256Gi' }, { rack: 'a' }, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]));
  t.equal(candidate.name, 'rack-a-01');
  t.same(candidate.labels, { 'kubernetes.io/hostname': 'rack-a-01', 'kubernetes.io/os': 'linux', rack: 'a' });
  t.same(candidate.taints, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]);
  t.same(Object.fromEntries(candidate.allocatable), { pods: 110_000n, cpu: 32_000n, memory: 256n * GI });
  t.equal(candidate.used, undefined, 'nothing runs on it');
});

t.test('the inventory’s own hostname and os labels win', async (t) => {
  t.same(predictedNodeLabels('rack-a-01', { 'kubernetes.io/hostname': 'a01', 'kubernetes.io/os': 'windows' }), {
    'kubernetes.io/hostname': 'a01',
    'kubernetes.io/os': 'windows',
  });
});

t.test('from an inventory document', async (t) => {
  const result = parseInventoryText(`
machines:
  - name: rack-b-01
    bmc: {address: "ipmi://10.0.0.12", credentialsSecret: bmc-rack-b-01}
    labels: {topology.kubernetes.io/zone: b}
    capacity: {cpu: 16, memory: 64Gi, nvidia.com/gpu: 4}
`);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const [parsed] = result.inventory.machines;
  if (parsed === undefined) throw new Error('no machine');
  const candidate = candidateFromMachine(parsed);
  t.equal(candidate.allocatable.get('cpu'), 16_000n);
  t.equal(candidate.allocatable.get('memory'), 64n * GI);
  t.equal(candidate.allocatable.get('nvidia.com/gpu'), 4000n);
  t.equal(candidate.allocatable.get('pods'), 110_000n, 'pods defaulted by the inventory');
  t.equal(candidate.labels['topology.kubernetes.io/zone'], 'b');
});

function node(extra: { unschedulable?: boolean; taints?: NonNullable<V1Node['spec']>['taints']; allocatable?: Record<string, string> | undefined; capacity?: Record<string, string> } = {}): V1Node {
  return {
    metadata: { name: 'rack-a-02', labels: { 'kubernetes.io/hostname': 'rack-a-02', rack: 'a' } },
    spec: { ...(extra.unschedulable === undefined ? {} : { unschedulable: extra.unschedulable }), ...(extra.taints === undefined ? {} : { taints: extra.taints }) },
    status: {
      ...(extra.capacity === undefined ? {} : { capacity: extra.capacity }),
      ...('allocatable' in extra ? (extra.allocatable === undefined ? {} : { allocatable: extra.allocatable }) : { allocatable: { cpu: '7800m', memory: '30Gi', pods: '110' } }),
    },
  };
}

function withPhase(pod: V1Pod, phase: string): V1Pod {
  return { ...pod, status: { phase } };
}

t.test('a Node: allocatable from its status, used from its pods that still run', async (t) => {
  const pods = [
    withPhase(requesting({ cpu: '1', memory: '2Gi' }), 'Running'),
    withPhase(requesting({ cpu: '500m' }), 'Pending'),
    withPhase(requesting({ cpu: '4' }), 'Succeeded'),
    withPhase(requesting({ cpu: '4' }), 'Failed'),
    requesting({ memory: '1Gi' }),
  ];
  const candidate = candidateFromNode(node(), pods);
  t.equal(candidate.name, 'rack-a-02');
  t.same(candidate.labels, { 'kubernetes.io/hostname': 'rack-a-02', rack: 'a' }, 'labels as the Node has them');
  t.same(Object.fromEntries(candidate.allocatable), { cpu: 7800n, memory: 30n * GI, pods: 110_000n });
  t.same(Object.fromEntries(candidate.used ?? []), { cpu: 1500n, memory: 3n * GI, pods: 3000n }, 'terminated pods hold nothing');
  t.same(Object.fromEntries(candidateFromNode(node()).used ?? []), {}, 'no pods');
});

t.test('a Node without allocatable falls back to capacity', async (t) => {
  const candidate = candidateFromNode(node({ allocatable: undefined, capacity: { cpu: '8', pods: '10' } }));
  t.same(Object.fromEntries(candidate.allocatable), { cpu: 8000n, pods: 10_000n });
  t.same(Object.fromEntries(candidateFromNode(node({ allocatable: { cpu: 'lots', pods: '10' } })).allocatable), { cpu: 0n, pods: 10_000n }, 'an unparsable figure offers nothing');
});

t.test('a cordoned Node carries the unschedulable taint once', async (t) => {
  t.same(candidateFromNode(node({ unschedulable: true })).taints, [UNSCHEDULABLE_TAINT]);
  const tainted = candidateFromNode(node({ unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }));
  t.equal(tainted.taints.length, 1, 'not twice when the lifecycle controller already added it');
  t.same(candidateFromNode(node({ taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] })).taints, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]);
});
