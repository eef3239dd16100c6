import type { V1Node, V1Pod, V1PodDisruptionBudget } from '@kubernetes/client-node';
import t from 'tap';
import type { ParsedMachine } from '../../api/inventory.js';
import { DRAINING_TAINT, type MachineStatus, type ScaleDown } from '../../api/v1alpha1/baremetalautoscaler.js';
import { budgetCovers, podBlockers } from '../../controller/blockers.js';
import { planScaleDown, utilization, type ReadyMachine, type ScaleDownInput } from '../../controller/scale-down.js';
import { labelSelectorMatches } from '../../api/selector.js';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const SD: ScaleDown = { enabled: true, utilizationThreshold: 0.5, unneededSeconds: 600, cooldownSeconds: 600, drainTimeoutSeconds: 600, maxConcurrentDrains: 1, maxPowerCyclesPerDay: 6, breakEven: { enabled: true, floorSeconds: 60 } };

function node(name: string, cpu = '8', memory = '32Gi', extra: Partial<V1Node['spec']> = {}, annotations: Record<string, string> = {}): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name }, annotations },
    spec: { ...extra },
    status: { allocatable: { cpu, memory, pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

let uid = 0;
function pod(nodeName: string, cpu: string, opts: { ns?: string; owner?: string; annotations?: Record<string, string>; labels?: Record<string, string>; volumes?: V1Pod['spec'] extends infer S ? S extends { volumes?: infer V } ? V : never : never } = {}): V1Pod {
  uid++;
  return {
    metadata: {
      name: `p${uid}`,
      namespace: opts.ns ?? 'default',
      uid: `u${uid}`,
      labels: opts.labels ?? { app: 'web' },
      annotations: opts.annotations ?? {},
      ownerReferences: opts.owner === 'none' ? [] : [{ apiVersion: 'apps/v1', kind: opts.owner ?? 'ReplicaSet', name: 'rs', uid: 'rs', controller: true }],
    },
    spec: { nodeName, containers: [{ name: 'c', resources: { requests: { cpu, memory: '1Gi' } } }], ...(opts.volumes ? { volumes: opts.volumes } : {}) },
    status: { phase: 'Running' },
  };
}

function machine(name: string, watts = 300, cpu = '8'): ParsedMachine {
  return {
    name,
    bmc: { address: `ipmi://127.0.0.1:1`, credentialsSecret: 's', insecureSkipVerify: false },
    labels: {},
    taints: [],
    capacity: { cpu: BigInt(cpu) * 1000n, memory: 32n * 1024n ** 3n * 1000n },
    power: { maxWatts: watts },
  } as unknown as ParsedMachine;
}

function ready(name: string, pods: V1Pod[], status: Partial<MachineStatus> = {}, watts = 300, n: V1Node = node(name)): ReadyMachine {
  return { machine: machine(name, watts), status: { name, phase: 'Ready', since: iso(T0 - 3_600_000), unneededSince: iso(T0 - 700_000), ...status }, node: n, pods };
}

function input(readyMachines: ReadyMachine[], others: V1Node[] = [], more: Partial<ScaleDownInput> = {}): ScaleDownInput {
  return {
    now: T0,
    scaleDown: SD,
    minMachines: 0,
    ready: readyMachines,
    nodes: [...readyMachines.map((r) => ({ node: r.node, pods: r.pods })), ...others.map((n) => ({ node: n, pods: [] }))],
    pdbs: [],
    onCount: readyMachines.length,
    inFlight: 0,
    ...more,
  };
}

t.test('utilisation: the larger of cpu and memory, DaemonSet and mirror pods ignored', async (t) => {
  const ds = pod('a', '4', { owner: 'DaemonSet' });
  const mirror = pod('a', '4', { annotations: { 'kubernetes.io/config.mirror': 'x' } });
  const web = pod('a', '2');
  const u = utilization(node('a'), [ds, mirror, web]);
  t.equal(u.value, 0.25);
  t.equal(u.of, 'cpu');
  t.equal(utilization(node('a', '8', '2Gi'), [web]).of, 'memory');
});

t.test('blockers, each in words', async (t) => {
  const msgs = (p: V1Pod, pdbs: V1PodDisruptionBudget[] = []): string[] => podBlockers(p, { pdbs }).map((b) => b.message);
  t.match(msgs(pod('a', '1', { annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } })), [/do-not-disrupt: "true"/]);
  t.match(msgs(pod('a', '1', { annotations: { 'karpenter.sh/do-not-disrupt': 'true' } })), [/karpenter.sh\/do-not-disrupt/]);
  t.match(msgs(pod('a', '1', { annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false' } })), [/safe-to-evict: "false"/]);
  t.match(msgs(pod('a', '1', { owner: 'none' })), [/has no controller/]);
  t.match(msgs(pod('a', '1', { owner: 'Job' })), [/runs a Job/]);
  t.match(msgs(pod('a', '1', { volumes: [{ name: 'scratch', emptyDir: {} }] })), [/emptyDir volume "scratch" on disk/]);
  t.same(msgs(pod('a', '1', { volumes: [{ name: 'tmp', emptyDir: { medium: 'Memory' } }] })), []);
  t.match(msgs(pod('a', '1', { volumes: [{ name: 'h', hostPath: { path: '/var/data' } }] })), [/hostPath volume "h" \(\/var\/data\)/]);
  t.match(msgs(pod('a', '1', { ns: 'kube-system' })), [/kube-system pod that is not a DaemonSet pod and has no PodDisruptionBudget/]);
  // safe-to-evict "true" lifts the soft blockers.
  t.same(msgs(pod('a', '1', { owner: 'none', ns: 'kube-system', annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true' } })), []);
  const budget = (allowed: number, computed = true): V1PodDisruptionBudget => ({
    metadata: { name: 'pdb', namespace: 'default', generation: 2 },
    spec: { selector: { matchLabels: { app: 'web' } }, minAvailable: 2 },
    status: { disruptionsAllowed: allowed, currentHealthy: 2, desiredHealthy: 2, expectedPods: 2, observedGeneration: computed ? 2 : 1 },
  });
  t.match(msgs(pod('a', '1'), [budget(0)]), [/PodDisruptionBudget default\/pdb allows no disruption now \(2 healthy, 2 required\)/]);
  t.match(msgs(pod('a', '1'), [budget(1, false)]), [/has not been computed/]);
  t.same(msgs(pod('a', '1'), [budget(1)]), []);
  t.same(podBlockers(pod('a', '1'), { pdbs: [budget(0)], ignoreBudgets: true }), []);
  // A kube-system pod with a budget is fine.
  const ks = pod('a', '1', { ns: 'kube-system' });
  t.same(msgs(ks, [{ ...budget(1), metadata: { name: 'pdb', namespace: 'kube-system', generation: 2 } }]), []);
  // DaemonSet pods and pods being deleted never block.
  t.same(msgs(pod('a', '1', { owner: 'DaemonSet', annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } })), []);
});

t.test('label selectors as policy/v1 reads them', async (t) => {
  t.ok(labelSelectorMatches({}, { a: '1' }), 'empty selects all');
  t.ok(labelSelectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '1' }));
  t.notOk(labelSelectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' }));
  t.ok(labelSelectorMatches({ matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] }, { a: '1' }));
  t.notOk(labelSelectorMatches({ matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1' }));
  t.notOk(labelSelectorMatches({ matchExpressions: [{ key: 'a', operator: 'Bogus' }] }, { a: '1' }), 'unknown operator selects nothing');
  t.notOk(budgetCovers({ metadata: { namespace: 'default' }, spec: {} }, pod('a', '1')), 'no selector covers nothing');
  t.notOk(budgetCovers({ metadata: { namespace: 'other' }, spec: { selector: {} } }, pod('a', '1')), 'other namespace');
});

t.test('an idle machine whose pods fit elsewhere is chosen Next, then drained on the next round', async (t) => {
  const a = ready('a', [pod('a', '1')]);
  const first = planScaleDown(input([a], [node('b')]));
  t.equal(first.machines.get('a')?.disruption, 'Next');
  t.same(first.drain, [], 'not drained the round it is chosen');
  const second = planScaleDown(input([{ ...a, status: { ...a.status, disruption: 'Next' } }], [node('b')]));
  t.same(second.drain, ['a']);
});

t.test('busy, not unneeded long enough, or no room elsewhere: kept on, with the reason', async (t) => {
  const busy = planScaleDown(input([ready('a', [pod('a', '5')])], [node('b')]));
  t.match(busy.machines.get('a')?.blockers[0]?.message, /utilisation 63% \(cpu\) is at or above scaleDown.utilizationThreshold 50%/);
  t.equal(busy.machines.get('a')?.disruption, undefined);

  const fresh = planScaleDown(input([ready('a', [pod('a', '1')], { unneededSince: iso(T0 - 100_000) })], [node('b')]));
  t.match(fresh.machines.get('a')?.blockers[0]?.message, /drained after scaleDown.unneededSeconds, from 2026-11-28T10:08:20/);
  t.equal(fresh.wakeAt, T0 + 500_000);

  const noRoom = planScaleDown(input([ready('a', [pod('a', '3')])], [node('b', '2')]));
  t.match(noRoom.machines.get('a')?.blockers.map((b) => b.message), [/fits on no other Ready Node \(needs cpu 3, memory 1Gi\)/]);

  const tainted = node('b', '8', '32Gi', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] });
  const taint = planScaleDown(input([ready('a', [pod('a', '1')])], [tainted]));
  t.match(taint.machines.get('a')?.blockers.map((b) => b.message), [/fits on no other Ready Node/], 'a taint the pod does not tolerate');

  const draining = node('b', '8', '32Gi', { taints: [{ key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' }] });
  t.match(planScaleDown(input([ready('a', [pod('a', '1')])], [draining])).machines.get('a')?.blockers.map((b) => b.message), [/fits on no other/], 'never onto a draining Node');

  const disabled = ready('a', [pod('a', '1')], {}, 300, node('a', '8', '32Gi', {}, { 'autoscaling.bamel.io/scale-down-disabled': 'true' }));
  t.match(planScaleDown(input([disabled], [node('b')])).machines.get('a')?.blockers.map((b) => b.message), [/scale-down-disabled: "true"/]);
});

t.test('ranking: power cost, then capacity freed, then fewest pods; one at a time', async (t) => {
  const cheap = ready('cheap', [pod('cheap', '1')], {}, 200);
  const dear = ready('dear', [pod('dear', '1'), pod('dear', '1')], {}, 500);
  const plan = planScaleDown(input([cheap, dear], [node('spare', '16')]));
  t.equal(plan.machines.get('dear')?.disruption, 'Next');
  t.equal(plan.machines.get('cheap')?.disruption, 'Candidate');
  t.match(plan.machines.get('cheap')?.blockers.map((b) => b.message), [/maxConcurrentDrains \(1\) reached/]);

  const fewer = planScaleDown(input([ready('x', [pod('x', '1'), pod('x', '1')]), ready('y', [pod('y', '1')])], [node('spare', '16')]));
  t.equal(fewer.machines.get('y')?.disruption, 'Next', 'same cost and size: fewer pods to move');

  const two = planScaleDown(input([cheap, dear], [node('spare', '16')], { scaleDown: { ...SD, maxConcurrentDrains: 2 } }));
  t.same([...two.machines.values()].map((m) => m.disruption), ['Next', 'Next']);
});

t.test('room is spent once: two machines cannot both move onto the same free space', async (t) => {
  const a = ready('a', [pod('a', '3')]);
  const b = ready('b', [pod('b', '3')]);
  // Each fits on the spare alone (4 cpu free), not both; and not onto each other (each has 5 free... of 8).
  const plan = planScaleDown(input([a, b], [node('spare', '4')], { scaleDown: { ...SD, maxConcurrentDrains: 2 } }));
  const next = [...plan.machines.values()].filter((m) => m.disruption === 'Next').map((m) => m.name);
  t.equal(next.length, 1, 'only one is chosen');
  const other = [...plan.machines.values()].find((m) => m.disruption === 'Candidate');
  t.match(other?.blockers.map((x) => x.message), [/fits on no other Ready Node once .* is drained/]);
});

t.test('minMachines and pauses hold', async (t) => {
  const machines = [ready('a', []), ready('b', []), ready('c', [])];
  const plan = planScaleDown(input(machines, [], { minMachines: 2, scaleDown: { ...SD, maxConcurrentDrains: 3 } }));
  t.equal([...plan.machines.values()].filter((m) => m.disruption === 'Next').length, 1, 'three idle, minMachines 2: one goes');
  t.match([...plan.machines.values()].filter((m) => m.disruption === 'Candidate').map((m) => m.blockers[0]?.message), [/minMachines 2 would not hold/, /minMachines 2 would not hold/]);

  const paused = planScaleDown(input(machines, [], { paused: 'cpu pressure' }));
  t.same([...paused.machines.values()].map((m) => m.disruption), ['Candidate', 'Candidate', 'Candidate']);
  t.match(paused.machines.get('a')?.blockers[0]?.message, 'cpu pressure');

  const off = planScaleDown(input(machines, [], { scaleDown: { ...SD, enabled: false } }));
  t.match(off.machines.get('a')?.blockers[0]?.message, /scale-down is disabled/);
});

t.test('deletion (force): every machine is drained regardless of load, budgets left to the Eviction API', async (t) => {
  const pdb: V1PodDisruptionBudget = {
    metadata: { name: 'pdb', namespace: 'default', generation: 1 },
    spec: { selector: { matchLabels: { app: 'web' } } },
    status: { disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 1, expectedPods: 1, observedGeneration: 1 },
  };
  const busy = ready('a', [pod('a', '7')], { disruption: 'Next' });
  const plan = planScaleDown(input([busy], [], { force: true, ignoreBudgets: true, pdbs: [pdb] }));
  t.same(plan.drain, ['a']);
  const blocked = planScaleDown(input([ready('a', [pod('a', '1', { annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } })])], [], { force: true, ignoreBudgets: true }));
  t.same(blocked.drain, [], 'do-not-disrupt still holds');
});
