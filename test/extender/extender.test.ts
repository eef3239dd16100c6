import t from 'tap';
import { DRAINING_TAINT } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { ExtenderFilterResult, HostPriority } from '../../extender/protocol.js';
import { autoscaler, boundPod, capturedNodes, fixture, fixtureText, rig } from './fixtures.js';

const TAINT_MESSAGE = `bamel: Node has the ${DRAINING_TAINT} taint, it is being drained`;

t.test('captured requests, nodeCacheCapable true: names in, names out; the draining Node fails unresolvably', async (t) => {
  const r = rig({ autoscalers: [autoscaler('rack', [{ name: 'cap-a', disruption: 'Candidate' }, { name: 'cap-c' }])] });
  const res = await r.app.inject({ method: 'POST', url: '/extender/filter', headers: { 'content-type': 'application/json' }, payload: fixtureText('filter-names-web') });
  t.equal(res.statusCode, 200);
  const body = res.json<ExtenderFilterResult>();
  t.same(body.NodeNames, ['cap-a', 'cap-c'], 'a subset of the names sent, in their order');
  t.same(body.FailedAndUnresolvableNodes, { 'cap-b': TAINT_MESSAGE });
  t.same(body.FailedNodes, {});
  t.equal(body.Error, '');
  t.notOk('Nodes' in body, 'no Nodes in names mode');

  const pr = await r.app.inject({ method: 'POST', url: '/extender/prioritize', payload: fixtureText('prioritize-names-web') });
  t.equal(pr.statusCode, 200);
  // web requests 2 cpu, 1Gi. cap-a (candidate): mean(2/8, 1/32) = 0.14 → round(4 × 0.14) = 1;
  // cap-c: mean(2/4, 1/16) = 0.28 → 5 + round(5 × 0.28) = 6; cap-b is refused → 0.
  t.same(pr.json<HostPriority[]>(), [
    { Host: 'cap-a', Score: 1 },
    { Host: 'cap-b', Score: 0 },
    { Host: 'cap-c', Score: 6 },
  ]);
});

t.test('captured requests, nodeCacheCapable false: Nodes in, the passing Node objects out unchanged', async (t) => {
  const r = rig({ nodes: [] }); // nothing in the cache: the request's Node objects are what counts
  const sent = fixture('filter-nodes-web').Nodes?.items ?? [];
  const res = await r.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText('filter-nodes-web') });
  t.equal(res.statusCode, 200);
  const body = res.json<ExtenderFilterResult>();
  t.notOk('NodeNames' in body, 'no NodeNames in nodes mode');
  t.same(body.Nodes?.items, sent.filter((n) => n.metadata?.name !== 'cap-b'), 'the Node objects as sent, minus the failed one');
  t.same(body.FailedAndUnresolvableNodes, { 'cap-b': TAINT_MESSAGE });

  const pr = await r.app.inject({ method: 'POST', url: '/extender/prioritize', payload: fixtureText('prioritize-nodes-web') });
  t.same(pr.json<HostPriority[]>(), [
    { Host: 'cap-a', Score: 6 }, // mean(2/8, 1/32) = 0.14 → 5 + 1
    { Host: 'cap-b', Score: 0 },
    { Host: 'cap-c', Score: 6 },
  ]);
});

t.test('captured deployment pod: one Node left by the scheduler, refused when chosen to be drained next', async (t) => {
  for (const name of ['filter-names-deployment', 'filter-nodes-deployment']) {
    const r = rig({ autoscalers: [autoscaler('rack-a', [{ name: 'cap-a', disruption: 'Next', reason: 'Unneeded' }])] });
    const res = await r.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText(name) });
    const body = res.json<ExtenderFilterResult>();
    t.same(body.FailedAndUnresolvableNodes, { 'cap-a': 'bamel: machine is chosen to be drained next (autoscaler rack-a: Unneeded)' }, name);
    if (name.includes('names')) t.same(body.NodeNames, [], 'no Node passes: an empty list, not an absent one');
    else t.same(body.Nodes?.items, []);
  }
});

t.test('every refusing standing, with its reason; candidates and other phases pass', async (t) => {
  const nodes = ['n-drain', 'n-off', 'n-failed', 'n-next', 'n-cand', 'n-ready', 'n-join', 'n-free'].map((name) => ({
    metadata: { name },
    status: { allocatable: { cpu: '8', memory: '8Gi' } },
  }));
  const r = rig({
    nodes,
    autoscalers: [
      autoscaler('a', [
        { name: 'n-drain', phase: 'Draining', reason: 'Unneeded' },
        { name: 'n-off', phase: 'PoweringOff' },
        { name: 'n-failed', phase: 'Failed', reason: 'JoinTimeout' },
        { name: 'n-next', disruption: 'Next' },
        { name: 'n-cand', disruption: 'Candidate' },
        { name: 'n-ready' },
        { name: 'n-join', phase: 'Joining' },
      ]),
    ],
  });
  const pod = fixture('filter-names-web').Pod;
  const out = r.extender.filter({ Pod: pod, NodeNames: nodes.map((n) => n.metadata.name) });
  t.same(out.NodeNames, ['n-cand', 'n-ready', 'n-join', 'n-free']);
  t.same(out.FailedAndUnresolvableNodes, {
    'n-drain': 'bamel: machine is being drained (autoscaler a: Unneeded)',
    'n-off': 'bamel: machine is being powered off (autoscaler a)',
    'n-failed': 'bamel: machine is quarantined after a failure (autoscaler a: JoinTimeout)',
    'n-next': 'bamel: machine is chosen to be drained next (autoscaler a)',
  });
  const metrics = await r.registry.getSingleMetricAsString('bamel_extender_refused_nodes_total');
  t.match(metrics, /reason="Draining"\} 1/);
  t.match(metrics, /reason="DrainNext"\} 1/);

  // An overlapping second autoscaler cannot make a refused machine acceptable.
  r.autoscalers.put(autoscaler('b', [{ name: 'n-drain' }, { name: 'n-ready', phase: 'PoweringOff' }]));
  const again = r.extender.filter({ Pod: pod, NodeNames: ['n-drain', 'n-ready'] });
  t.same(again.NodeNames, []);
  t.match(again.FailedAndUnresolvableNodes['n-ready'], /autoscaler b/);

  // Status changes are seen on the next request.
  r.autoscalers.put(autoscaler('a', [{ name: 'n-drain' }]));
  r.autoscalers.put(autoscaler('b', []));
  t.same(r.extender.filter({ Pod: pod, NodeNames: ['n-drain', 'n-ready'] }).NodeNames, ['n-drain', 'n-ready']);
});

t.test('DaemonSet pods are not kept off draining machines (they leave with the Node)', async (t) => {
  const r = rig({ autoscalers: [autoscaler('a', [{ name: 'cap-a', phase: 'Draining' }])] });
  const pod = fixture('filter-names-web').Pod;
  pod.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'x', controller: true }];
  const out = r.extender.filter({ Pod: pod, NodeNames: ['cap-a', 'cap-b', 'cap-c'] });
  t.same(out.NodeNames, ['cap-a', 'cap-b', 'cap-c']);
});

t.test('prioritize: fuller machines first, after the pods bound to them; candidates below every machine that stays on', async (t) => {
  const nodes = capturedNodes();
  const r = rig({ nodes, autoscalers: [autoscaler('a', [{ name: 'cap-b', disruption: 'Candidate' }])] });
  // cap-b loses its taint here (a new object, as the informer delivers it), so that it is only a candidate.
  const capB = nodes.find((n) => n.metadata?.name === 'cap-b');
  if (capB) r.nodes.put({ ...capB, spec: { ...capB.spec, taints: [] } });
  const pod = fixture('filter-names-deployment').Pod; // 1 cpu, 2Gi
  const scores = (): Record<string, number> =>
    Object.fromEntries(r.extender.prioritize({ Pod: pod, NodeNames: ['cap-a', 'cap-b', 'cap-c'] }).map((h) => [h.Host, h.Score]));
  // cap-a: mean(1/8, 2/32) = 0.09 → 5; cap-c: mean(1/4, 2/16) = 0.19 → 6; cap-b candidate: mean(1/16, 2/64) → 0.
  t.same(scores(), { 'cap-a': 5, 'cap-b': 0, 'cap-c': 6 });
  r.pods.put(boundPod('big', 'cap-a', '6', '24Gi'));
  // cap-a now: mean(7/8, 26/32) = 0.84 → 9.
  t.same(scores(), { 'cap-a': 9, 'cap-b': 0, 'cap-c': 6 });
  r.pods.put(boundPod('fill-b', 'cap-b', '15', '62Gi'));
  t.same(scores(), { 'cap-a': 9, 'cap-b': 4, 'cap-c': 6 }, 'a full candidate still scores below an emptier machine that stays on');
  r.pods.remove(boundPod('big', 'cap-a', '6', '24Gi'));
  t.same(scores()['cap-a'], 5, 'a deleted pod frees its room');
  r.pods.put({ ...boundPod('fill-b', 'cap-b', '15', '62Gi'), status: { phase: 'Succeeded' } });
  t.same(scores()['cap-b'], 0, 'a finished pod frees its room');
});

t.test('not synced yet: 503 with Error (kube-scheduler goes on without an ignorable extender)', async (t) => {
  const r = rig();
  r.pods.synced = false;
  const res = await r.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText('filter-names-web') });
  t.equal(res.statusCode, 503);
  t.match(res.json<{ Error: string }>().Error, /caches not synced yet \(pods\)/);
});

t.test('metrics: requests and latency per verb', async (t) => {
  const r = rig();
  await r.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText('filter-names-web') });
  await r.app.inject({ method: 'POST', url: '/extender/prioritize', payload: fixtureText('prioritize-names-web') });
  await r.app.inject({ method: 'POST', url: '/extender/filter', payload: '{' });
  const text = await r.registry.metrics();
  t.match(text, /bamel_extender_requests_total\{verb="filter",code="200"\} 1/);
  t.match(text, /bamel_extender_requests_total\{verb="filter",code="400"\} 1/);
  t.match(text, /bamel_extender_requests_total\{verb="prioritize",code="200"\} 1/);
  t.match(text, /bamel_extender_request_duration_seconds_count\{verb="filter"\} 2/);
  t.match(text, /bamel_extender_request_duration_seconds_bucket\{le="0.0005",verb="prioritize"\}/);
});
