import type { V1Node, V1Pod } from '@kubernetes/client-node';
import t from 'tap';
import { FreeRoom } from '../../controller/free-room.js';
import { moving } from '../../controller/placement.js';
import { candidateFromNode, compileCandidate, type CompiledCandidate } from '../../scheduling/index.js';

function room(name: string, cpu: string, labels: Record<string, string> = {}, taint?: string): CompiledCandidate {
  const node: V1Node = {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: taint ? { taints: [{ key: taint, effect: 'NoSchedule' }] } : {},
    status: { allocatable: { cpu, memory: '64Gi', pods: '110' } },
  };
  return compileCandidate(candidateFromNode(node));
}

let n = 0;
function pod(cpu: string, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  n++;
  return {
    metadata: { name: `p${n}`, namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs', controller: true }] },
    spec: { nodeName: 'src', containers: [{ name: 'c', resources: { requests: { cpu } } }], ...spec },
    status: { phase: 'Running' },
  };
}

const names = (pods: V1Pod[]): string[] => pods.map((p) => p.metadata?.name ?? '');

t.test('first fit in order, room spent pod after pod, given back unless kept', async (t) => {
  const index = new FreeRoom([room('a', '2'), room('b', '4'), room('c', '8')]);
  const m = moving([pod('3'), pod('3'), pod('3'), pod('3')]);
  // 3 cpu: a is too small; b takes one, c two, the fourth fits nowhere.
  t.same(names(index.place(m.largestFirst, () => false, false)), [names(m.pods)[3]]);
  t.same(names(index.place(m.largestFirst, (x) => x === 'c', false)), names(m.pods).slice(1), 'c excluded: only b takes one');
  t.same(index.place(moving([pod('2')]).largestFirst, () => false, true), [], 'a takes 2 cpu, kept');
  t.same(names(index.place(moving([pod('1')]).largestFirst, (x) => x !== 'a', false)).length, 1, 'a has no room left');
});

t.test('taints and labels by class; a pod that reads the hostname is checked Node by Node', async (t) => {
  const index = new FreeRoom([room('a', '8', { zone: 'x' }, 'gpu'), room('b', '8', { zone: 'x' }), room('c', '8', { zone: 'y' }), room('d', '8', { zone: 'y' })]);
  const zoneY = pod('1', { nodeSelector: { zone: 'y' } });
  const tolerant = pod('1', { tolerations: [{ key: 'gpu', operator: 'Exists' }] });
  const onD = pod('1', { nodeSelector: { 'kubernetes.io/hostname': 'd' } });
  const m = moving([zoneY, tolerant, onD]);
  t.same(index.place(m.largestFirst, () => false, true), []);
  // Everything fits: the tolerant pod on a (first), zone y on c, the hostname one on d only.
  const nothingLeftOn = (node: string): boolean => index.place(moving([pod('8')]).largestFirst, (x) => x !== node, false).length === 1;
  t.ok(nothingLeftOn('a') && nothingLeftOn('c') && nothingLeftOn('d'), 'a, c and d each lost a cpu');
  t.notOk(nothingLeftOn('b'), 'b kept all its room');
});

t.test('a trial is shared by pods alike, redone when the shared one landed on the machine itself, forgotten once room is kept', async (t) => {
  const index = new FreeRoom([room('a', '4'), room('b', '4')]);
  const first = moving([pod('3')]);
  const alike = moving([pod('3')]);
  t.equal(first.signature, alike.signature, 'same shape and requests: same signature');
  t.same(index.trial(first.largestFirst, first.signature, 'x'), [], 'fits on a');
  t.same(index.trial(alike.largestFirst, alike.signature, 'a'), [], 'a is itself: placed again, fits on b');
  index.place(moving([pod('2')]).largestFirst, () => false, true); // a keeps 2 of 4
  index.place(moving([pod('2')]).largestFirst, (x) => x === 'a', true); // b keeps 2 of 4
  t.same(names(index.trial(alike.largestFirst, alike.signature, 'x')), names(alike.pods), 'no Node has 3 cpu left: the old trial is not reused');
});
