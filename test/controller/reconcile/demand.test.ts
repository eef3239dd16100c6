import type * as k8s from '@kubernetes/client-node';
import t from 'tap';
import type { PendingPod, ScaleUpDecision } from '../../../controller/decide.js';
import { PodIndex } from '../../../controller/observe.js';
import { CandidateCache, ClaimBook, demandStep } from '../../../controller/reconcile/demand.js';
import { SelectionMemo } from '../../../controller/reconcile/candidates.js';
import { deepFreeze, GiB, iso, machines, node, pendingPod, runningPod, states, status, store, T0 } from './fixtures.js';

const names = (pods: readonly k8s.V1Pod[]): string[] => pods.map((p) => p.metadata?.name ?? '');
const asPending = (p: k8s.V1Pod): PendingPod => ({ key: `default/${p.metadata?.name}`, uid: p.metadata?.uid ?? '', requests: {} });
const decision = (powerOn: k8s.V1Pod[], absorbed: k8s.V1Pod[] = []): ScaleUpDecision => ({
  powerOn: powerOn.length > 0 ? [{ machine: 'm1', reason: 'PendingPods', pods: powerOn.map(asPending), score: 0, detail: '' }] : [],
  absorbed: absorbed.map(asPending),
  unplaceable: [],
  waiting: [],
});

t.test('a pod counted by autoscaler A is kept from autoscaler B until the claim expires', async (t) => {
  const book = new ClaimBook();
  const pods = deepFreeze([pendingPod('1', { name: 'c1' }), pendingPod('1', { name: 'c2' }), pendingPod('1', { name: 'c3' })]);
  t.same(book.claim('A', decision([pods[0] as k8s.V1Pod], [pods[1] as k8s.V1Pod]), 600_000, T0), ['uid-c1'], 'the pods placed on a machine, not the absorbed ones');
  t.same(names(book.pendingFor('B', pods, T0 + 1)), ['c3'], 'placed and absorbed pods are both claimed');
  t.same(names(book.pendingFor('A', pods, T0 + 1)), ['c1', 'c2', 'c3'], "A's own claims do not hide pods from A");
  t.same(names(book.pendingFor('B', pods, T0 + 600_000)), ['c3'], 'claimed up to and including its end');
  t.same(names(book.pendingFor('B', pods, T0 + 600_001)), ['c1', 'c2', 'c3'], 'then free for anyone');
});

t.test("absorbing a pod does not take over another autoscaler's live claim, only an expired one", async (t) => {
  const book = new ClaimBook();
  const p = deepFreeze([pendingPod('1', { name: 'd1' })]);
  book.claim('A', decision(p), 600_000, T0);
  t.same(book.claim('B', decision([], p), 600_000, T0 + 1000), [], 'absorbing places nothing');
  t.same(names(book.pendingFor('B', p, T0 + 2000)), [], "still A's");
  t.same(names(book.pendingFor('A', p, T0 + 2000)), ['d1']);
  book.claim('B', decision([], p), 600_000, T0 + 700_000);
  t.same(names(book.pendingFor('A', p, T0 + 700_001)), [], "B's once A's had expired");
  t.same(names(book.pendingFor('B', p, T0 + 700_001)), ['d1']);
});

t.test("forgetting an autoscaler drops its claims, and only its", async (t) => {
  const book = new ClaimBook();
  const p = deepFreeze([pendingPod('1', { name: 'f1' }), pendingPod('1', { name: 'f2' })]);
  book.claim('A', decision([p[0] as k8s.V1Pod]), 600_000, T0);
  book.claim('C', decision([p[1] as k8s.V1Pod]), 600_000, T0);
  book.forget('A');
  t.same(names(book.pendingFor('B', p, T0 + 1)), ['f1']);
});

t.test('empty machines are compiled once per inventory version', async (t) => {
  const cache = new CandidateCache();
  const [m1, m2] = deepFreeze(machines('m1', 'm2'));
  if (!m1 || !m2) throw new Error('fixture');
  const first = cache.empty('1', m1);
  t.equal(cache.empty('1', m1), first, 'the same version: the same compiled machine');
  t.not(cache.empty('2', m1), first, 'a new inventory version compiles again');
  t.not(cache.empty('2', m2), cache.empty('2', m1), 'one per machine');
  t.equal(first.free.get('cpu'), 16_000n);
});

t.test('demand: the pending pods compiled, where they could go, and the machines already coming', async (t) => {
  const selected = deepFreeze(
    machines(
      'm1',
      { name: 'm2', cpu: 8, taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] },
      'joining',
      'fresh',
      'settled',
      'booting',
      'edge',
    ),
  );
  const machineStates = states(
    status('m1', 'Off'),
    status('m2', 'Off'),
    status('joining', 'Joining'),
    status('fresh', 'Ready', { since: iso(T0 - 30_000) }),
    status('settled', 'Ready', { since: iso(T0 - 120_000) }),
    status('booting', 'PoweringOn'),
    status('edge', 'Ready', { since: iso(T0 - 60_000) }),
  );
  const small = pendingPod('2', { name: 'small', since: T0 - 45_000 });
  const large = pendingPod('12', { name: 'large' });
  const huge = pendingPod('32', { name: 'huge' });
  const onFresh = runningPod('fresh', '4');
  deepFreeze([small, large, huge, onFresh]);
  const index = new PodIndex();
  index.rebuild([small, large, huge, onFresh]);
  const cache = new CandidateCache();
  const d = demandStep({
    demand: [small, large, huge],
    selected,
    machines: machineStates,
    nodes: store([deepFreeze(node('fresh')), deepFreeze(node('settled')), deepFreeze(node('edge'))]),
    pods: index,
    emptyCandidate: (m) => cache.empty('1', m),
    readyAbsorbMs: 60_000,
    now: T0,
  });

  t.same(d.pending[0], {
    key: 'default/small',
    uid: 'uid-small',
    requests: { cpu: 2000n, memory: GiB * 1000n, pods: 1000n },
    equivalenceClass: index.compile(small).signature,
    unschedulableSince: T0 - 45_000,
  });
  t.not(d.pending[0]?.equivalenceClass, d.pending[1]?.equivalenceClass, 'other requests, another class');
  t.same(
    d.pods.map((p) => p.pod),
    [small, large, huge],
  );

  const [ps, pl, ph] = d.pending as [PendingPod, PendingPod, PendingPod];
  t.ok(d.feasible(ps, 'm1'), 'fits the empty machine');
  t.notOk(d.feasible(ps, 'm2'), 'a taint it does not tolerate');
  t.notOk(d.feasible(pl, 'm2'), 'too big for 8 cpu');
  t.notOk(d.feasible(ph, 'm1'), 'too big for any machine');
  t.notOk(d.feasible(ps, 'elsewhere'), 'not a machine of this autoscaler');

  t.same(
    d.absorbing.map((a) => a.name),
    ['joining', 'fresh', 'booting'],
    'powering on, joining, and Ready for less than readyAbsorbMs',
  );
  t.same(d.absorbing[0]?.free, { cpu: 16_000n, memory: 64n * GiB * 1000n, pods: 110_000n }, 'without a Node: the empty machine');
  t.same(d.absorbing[1]?.free, { cpu: 12_000n, memory: 63n * GiB * 1000n, pods: 109_000n }, 'with a Node: what its pods leave');

  t.equal(d.relevant.length, 2, 'the demand one of these machines could host');
  t.equal(d.relevant[0], d.pods[0]?.compiled);
  t.equal(d.relevant[1], d.pods[1]?.compiled);
});

t.test('whether any machine can host a signature is asked once per signature, and kept per selection', async (t) => {
  const selected = deepFreeze(machines('m1', { name: 'm2', cpu: 8 }));
  const small = [pendingPod('2', { name: 's1' }), pendingPod('2', { name: 's2' }), pendingPod('2', { name: 's3' })];
  const huge = [pendingPod('64', { name: 'h1' }), pendingPod('64', { name: 'h2' })];
  const all = deepFreeze([...small, ...huge]);
  const index = new PodIndex();
  index.rebuild(all);
  const cache = new CandidateCache();
  const memo = new SelectionMemo<boolean>();
  let asked = 0;
  const scoped = (selection: string): ((signature: string, compute: () => boolean) => boolean) => {
    const inner = memo.scope(selection);
    return (signature, compute) =>
      inner(signature, () => {
        asked++;
        return compute();
      });
  };
  const run = (selection: string): ReturnType<typeof demandStep> =>
    demandStep({ demand: all, selected, machines: states(), nodes: store(), pods: index, emptyCandidate: cache.forInventory('1'), hostable: scoped(selection), readyAbsorbMs: 60_000, now: T0 });
  const first = run('1/{}');
  t.same(
    first.relevant.map((c) => c.requests.get('cpu')),
    [2000n, 2000n, 2000n],
    'the pods one machine could host, in order',
  );
  t.equal(asked, 2, 'two signatures, two questions');
  t.equal(index.compile(small[0] as k8s.V1Pod).pod, index.compile(small[2] as k8s.V1Pod).pod, 'replicas share one compiled form');
  t.equal(first.pending[0]?.requests, first.pending[1]?.requests, 'and one requests vector');
  run('1/{}');
  t.equal(asked, 2, 'the same selection: nothing asked again');
  run('2/{}');
  t.equal(asked, 4, 'another inventory version or selector: asked again');
  t.equal(cache.forInventory('1')(selected[0] as (typeof selected)[number]), cache.empty('1', selected[0] as (typeof selected)[number]), 'forInventory and empty share the compiled machine');
});
