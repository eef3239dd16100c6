import type { V1Node } from '@kubernetes/client-node';
import t from 'tap';
import { DRAINING_TAINT, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { ExtenderArgs } from '../../extender/protocol.js';
import { baseAmounts, baseFullness, fullness, score } from '../../extender/score.js';
import { refusal, Standings } from '../../extender/standings.js';
import { candidateFromNode, isTerminated, podRequests, type ResourceList } from '../../scheduling/index.js';
import { autoscaler, boundPod, fixture, fixtureText, rig } from './fixtures.js';

/** A small deterministic generator (mulberry32): the same sequence on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** cpu 0 makes a Node of 40Pi memory: more bytes than a number holds exactly (scored over bigints). */
function node(name: string, tainted: boolean, cpu: number): V1Node {
  return {
    metadata: { name, resourceVersion: String(Math.random()) },
    spec: tainted ? { taints: [{ key: DRAINING_TAINT, value: 'true', effect: 'NoSchedule' }] } : {},
    status: { allocatable: { cpu: String(cpu), memory: cpu === 0 ? '40Pi' : `${cpu * 4}Gi`, pods: '110', ...(cpu >= 16 ? { 'example.com/gpu': '2' } : {}) } },
  };
}

const PHASES: MachineStatus['phase'][] = ['Ready', 'Draining', 'PoweringOff', 'Failed', 'Joining', 'Off'];

t.test('the answers kept per Node equal the answers worked out from the caches at request time, through every kind of change', async (t) => {
  const rand = random(18);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const names = Array.from({ length: 40 }, (_, i) => `n-${i}`);
  const r = rig({ nodes: names.slice(0, 30).map((n, i) => node(n, i % 9 === 0, 8 + (i % 3) * 8)) });
  // The oracle: the former per-request reading of the caches (standings.ts refusal over the Node object).
  const standings = new Standings(r.autoscalers);
  // The captured pod (cpu and memory: scored over numbers) and one asking for a GPU too.
  const plain = fixture('filter-names-deployment').Pod;
  const gpu = fixture('filter-names-deployment').Pod;
  const container = gpu.spec?.containers[0];
  if (container) container.resources = { requests: { cpu: '2', memory: '1Gi', 'example.com/gpu': '1' } };
  let pod = plain;
  let requests = podRequests(pod);
  const expected = (asked: string[]): { passed: string[]; failed: Record<string, string>; scores: number[] } => {
    const failed: Record<string, string> = {};
    const passed: string[] = [];
    const scores: number[] = [];
    for (const name of asked) {
      const n = r.nodes.get(name);
      const refused = refusal(standings.get(name), n);
      if (refused === undefined) passed.push(name);
      else failed[name] = refused.message;
      const used: ResourceList = new Map();
      for (const p of r.pods.list()) {
        if (p.spec?.nodeName !== name || isTerminated(p)) continue;
        for (const [res, v] of podRequests(p, { useStatusResources: true })) used.set(res, (used.get(res) ?? 0n) + v);
      }
      const full = n === undefined ? 0 : fullness(candidateFromNode(n).allocatable, used, requests);
      scores.push(score(full, standings.get(name), refused !== undefined));
    }
    return { passed, failed, scores };
  };
  for (let step = 0; step < 300; step++) {
    const change = rand();
    const name = pick(names);
    if (change < 0.3) r.nodes.put(node(name, rand() < 0.3, pick([0, 4, 8, 16, 32])));
    else if (change < 0.4) {
      const n = r.nodes.get(name);
      if (n) r.nodes.remove(n);
    } else if (change < 0.7) {
      const machines = names.filter(() => rand() < 0.3).map((m) => ({
        name: m,
        phase: pick(PHASES),
        ...(rand() < 0.3 ? { disruption: pick(['Next', 'Candidate'] as const) } : {}),
        ...(rand() < 0.5 ? { reason: pick(['Unneeded', 'JoinTimeout']) } : {}),
      }));
      const a = pick(['a', 'b', 'c']);
      if (rand() < 0.15) r.autoscalers.remove(autoscaler(a, []));
      else r.autoscalers.put(autoscaler(a, machines));
    } else if (change < 0.9) r.pods.put(boundPod(`p-${Math.floor(rand() * 60)}`, name, pick(['500m', '1', '3']), pick(['1Gi', '3Gi'])));
    else r.pods.remove(boundPod(`p-${Math.floor(rand() * 60)}`, name, '1', '1Gi'));

    pod = rand() < 0.5 ? plain : gpu;
    requests = podRequests(pod);
    const asked = names.filter(() => rand() < 0.6);
    const args: ExtenderArgs = { Pod: pod, NodeNames: asked };
    const want = expected(asked);
    const got = r.extender.filter(args);
    if (JSON.stringify(got.NodeNames) !== JSON.stringify(want.passed) || JSON.stringify(got.FailedAndUnresolvableNodes) !== JSON.stringify(want.failed)) {
      t.same({ passed: got.NodeNames, failed: got.FailedAndUnresolvableNodes }, { passed: want.passed, failed: want.failed }, `filter at step ${step}`);
      return;
    }
    const scores = r.extender.prioritize(args).map((h) => h.Score);
    if (JSON.stringify(scores) !== JSON.stringify(want.scores)) {
      t.same(scores, want.scores, `prioritize at step ${step}`);
      return;
    }
    // The JSON the server sends is JSON.stringify of the object answers, byte for byte.
    if (r.extender.filterJson(args) !== JSON.stringify(got) || r.extender.prioritizeJson(args) !== JSON.stringify(r.extender.prioritize(args))) {
      t.fail(`JSON answers differ from the objects at step ${step}`);
      return;
    }
  }
  t.pass('300 changes, every answer the same');
});

t.test('cpu and memory over numbers: the fullness of the bigints, and no answer where a number is not exact', async (t) => {
  const list = (cpu: bigint, memory: bigint): Map<string, bigint> => new Map([['cpu', cpu], ['memory', memory]]);
  const cases: [bigint, bigint, bigint, bigint, bigint, bigint][] = [
    [32000n, 128n * 2n ** 30n, 300n, 2n ** 28n, 100n, 2n ** 27n],
    [0n, 2n ** 30n, 0n, 0n, 0n, 1n],
    [3n, 7n, 1n, 5n, 1n, 3n],
    [1000n, 1000n, 999n, 0n, 5n, 0n],
    [2n ** 53n - 1n, 2n ** 53n - 1n, 2n ** 52n, 3n, 2n ** 52n + 7n, 1n],
  ];
  for (const [ac, am, uc, um, rc, rm] of cases) {
    const want = fullness(list(ac, am), list(uc, um), list(rc, rm));
    t.equal(baseFullness(baseAmounts(list(ac, am)), baseAmounts(list(uc, um)), baseAmounts(list(rc, rm))), want, `${ac} ${am} ${uc} ${um} ${rc} ${rm}`);
  }
  t.equal(baseFullness(baseAmounts(list(8n, 2n ** 60n)), baseAmounts(list(0n, 0n)), baseAmounts(list(1n, 1n))), undefined, 'more than 2^53 bytes: no number');
});

t.test('captured requests: the bytes sent are JSON.stringify of the answers, in both modes', async (t) => {
  const r = rig({ autoscalers: [autoscaler('rack', [{ name: 'cap-a', disruption: 'Candidate' }, { name: 'cap-c', phase: 'Draining', reason: 'Unneeded' }])] });
  for (const name of ['filter-names-web', 'filter-names-deployment', 'filter-nodes-web', 'filter-nodes-deployment', 'prioritize-names-web', 'prioritize-nodes-web']) {
    const verb = name.startsWith('filter') ? 'filter' : 'prioritize';
    const res = await r.app.inject({ method: 'POST', url: `/extender/${verb}`, payload: fixtureText(name) });
    t.equal(res.statusCode, 200, name);
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`);
    const answer = verb === 'filter' ? r.extender.filter(fixture(name)) : r.extender.prioritize(fixture(name));
    t.equal(res.body, JSON.stringify(answer), `${name}: the same bytes`);
  }
});

t.test('a Node losing and regaining the draining taint, and a Node no autoscaler lists, are seen on the next request', async (t) => {
  const r = rig({ nodes: [node('x', false, 8), node('y', true, 8)], autoscalers: [autoscaler('a', [{ name: 'z', phase: 'Failed' }])] });
  const pod = fixture('filter-names-web').Pod;
  const ask = (): unknown => r.extender.filter({ Pod: pod, NodeNames: ['x', 'y', 'z', 'w'] }).NodeNames;
  t.same(ask(), ['x', 'w'], 'y tainted, z quarantined though it has no Node, w unknown passes');
  r.nodes.put(node('x', true, 8));
  r.nodes.put(node('y', false, 8));
  t.same(ask(), ['y', 'w']);
  r.nodes.remove(node('x', true, 8));
  r.autoscalers.put(autoscaler('a', []));
  t.same(ask(), ['x', 'y', 'z', 'w'], 'a deleted Node keeps no taint; a machine no longer listed passes');
  const prior = r.extender.prioritize({ Pod: pod, NodeNames: ['x', 'y'] });
  t.same(prior, [{ Host: 'x', Score: 5 }, { Host: 'y', Score: 6 }], 'no Node: fullness 0; y: mean(2/8, 1/32) → 5 + round(5 × 0.14) = 6');
});

