import t from 'tap';
import type { ExtenderFilterResult } from '../../extender/protocol.js';
import { fixture, fixtureText, rig } from './fixtures.js';

/**
 * 10,000 malformed or random requests, each built to be wrong in one way kube-scheduler never
 * is: every one must be answered 400 with a message saying what is wrong, and the server must
 * answer a good request afterwards.
 */

const COUNT = 10_000;

// mulberry32: a seeded generator, so that a failure can be replayed.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.env.BAMEL_FUZZ_SEED ?? 20260601);
const rand = prng(seed);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const FIXTURES = ['filter-names-web', 'filter-nodes-web', 'filter-names-deployment', 'filter-nodes-deployment', 'prioritize-names-web', 'prioritize-nodes-web'];
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const clone = (name: string): Record<string, Json> => JSON.parse(fixtureText(name)) as Record<string, Json>;

function randomString(max = 12): string {
  let s = '';
  for (let i = int(max) + 1; i > 0; i--) s += String.fromCharCode(32 + int(95));
  return s;
}

function randomJson(depth = 0): Json {
  switch (int(depth > 2 ? 4 : 6)) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return rand() < 0.5 ? int(1e6) - 5e5 : rand() * 1e9;
    case 3:
      return randomString();
    case 4:
      return Array.from({ length: int(4) }, () => randomJson(depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: int(4) }, () => [randomString(6), randomJson(depth + 1)]));
  }
}

/** A value of any type but `keep` (and never one that would be accepted). */
function wrongType(...accepted: ('object' | 'array' | 'string' | 'null')[]): Json {
  for (;;) {
    const v = randomJson(1);
    const kind = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    if (!accepted.includes(kind as 'object')) return v;
  }
}

type Mutation = (body: Record<string, Json>, nodesMode: boolean) => void;

const pod = (b: Record<string, Json>): Record<string, Json> => b.Pod as Record<string, Json>;
const spec = (b: Record<string, Json>): Record<string, Json> => pod(b).spec as Record<string, Json>;
const meta = (b: Record<string, Json>): Record<string, Json> => pod(b).metadata as Record<string, Json>;

const MUTATIONS: Mutation[] = [
  (b) => delete b.Pod,
  (b) => (b.Pod = wrongType('object')),
  (b) => delete pod(b).metadata,
  (b) => (pod(b).metadata = wrongType('object')),
  (b) => delete meta(b).name,
  (b) => (meta(b).name = rand() < 0.3 ? '' : wrongType('string')),
  (b) => delete pod(b).spec,
  (b) => (pod(b).spec = wrongType('object')),
  (b) => delete spec(b).containers,
  (b) => (spec(b).containers = rand() < 0.3 ? [] : wrongType('array')),
  (b) => (spec(b).containers = [wrongType('object')]),
  (b) => (spec(b).initContainers = wrongType('array', 'null')),
  // Quantities that do not parse.
  (b) => {
    const c = (spec(b).containers as Record<string, Json>[])[0] as Record<string, Json>;
    c.resources = { requests: { [pick(['cpu', 'memory', 'ephemeral-storage', 'example.com/gpu'])]: pick(['lots', '1.2.3', '--1', '5Qi', '', 'NaN', '1e400']) } };
  },
  // Nodes / NodeNames: neither, both, wrong types, bad entries.
  (b) => {
    b.Nodes = null;
    b.NodeNames = null;
  },
  (b) => {
    delete b.Nodes;
    delete b.NodeNames;
  },
  (b) => {
    b.Nodes = { items: [] };
    b.NodeNames = ['cap-a'];
  },
  (b, nodes) => (nodes ? (b.Nodes = wrongType('object', 'null')) : (b.NodeNames = wrongType('array', 'null'))),
  (b, nodes) => {
    if (nodes) ((b.Nodes as Record<string, Json>).items = wrongType('array', 'null'));
    else b.NodeNames = [...(b.NodeNames as string[]), rand() < 0.3 ? '' : wrongType('string')];
  },
  (b, nodes) => {
    if (!nodes) {
      b.NodeNames = ['cap-a', wrongType('string')];
      return;
    }
    const items = (b.Nodes as Record<string, Json>).items as Record<string, Json>[];
    const victim = items[int(items.length)] as Record<string, Json>;
    if (rand() < 0.5) delete victim.metadata;
    else (victim.metadata as Record<string, Json>).name = wrongType('string');
  },
];

interface Case {
  payload: string | Buffer;
  contentType?: string;
}

function nextCase(): Case {
  const contentType = pick([undefined, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', randomString(8)]);
  const withType = (payload: string | Buffer): Case => (contentType === undefined ? { payload } : { payload, contentType });
  const kind = int(10);
  if (kind === 0) {
    // Not JSON: random bytes, or text.
    const bytes = Buffer.from(Array.from({ length: int(200) + 1 }, () => int(256)));
    if (bytes[0] === 0x7b || bytes[0] === 0x5b || bytes[0] === 0x22) bytes[0] = 0x3c; // not { [ "
    return withType(rand() < 0.5 ? bytes : `<${randomString(40)}`);
  }
  if (kind === 1) {
    // Truncated JSON: cut before the closing brace.
    const text = fixtureText(pick(FIXTURES));
    return withType(text.slice(0, int(text.lastIndexOf('}'))));
  }
  if (kind === 2) {
    // JSON, but not an object.
    return withType(JSON.stringify(pick([null, true, 42, 'filter', [], [fixture('filter-names-web')], randomString()])));
  }
  if (kind === 3) {
    // A random object: no Pod.
    const o = randomJson(3);
    const obj = o !== null && typeof o === 'object' && !Array.isArray(o) ? o : {};
    delete obj.Pod;
    return withType(JSON.stringify(obj));
  }
  const name = pick(FIXTURES);
  const body = clone(name);
  const times = 1 + int(3);
  for (let i = 0; i < times; i++) {
    try {
      pick(MUTATIONS)(body, name.includes('nodes'));
    } catch (err) {
      // An earlier mutation took away what this one changes: the body is wrong already.
      if (i === 0) throw err;
    }
  }
  return withType(JSON.stringify(body));
}

t.test(`${COUNT} malformed requests: each answered 400 with a message, the server keeps answering`, async (t) => {
  const r = rig();
  const failures: string[] = [];
  const started = Date.now();
  for (let i = 0; i < COUNT; i++) {
    const c = nextCase();
    const verb = rand() < 0.5 ? 'filter' : 'prioritize';
    const res = await r.app.inject({
      method: 'POST',
      url: `/extender/${verb}`,
      payload: c.payload,
      headers: c.contentType === undefined ? {} : { 'content-type': c.contentType },
    });
    let message = '';
    try {
      const body = res.json<{ Error?: string; message?: string }>();
      message = body.Error === body.message ? (body.message ?? '') : '';
    } catch {
      message = '';
    }
    if (res.statusCode !== 400 || message.length < 10) {
      failures.push(`#${i} (${verb}, ${String(c.contentType)}): ${res.statusCode} ${res.body.slice(0, 200)} ← ${String(c.payload).slice(0, 300)}`);
      if (failures.length >= 5) break;
    }
  }
  t.same(failures, [], `every request answered 400 with a message (seed ${seed})`);
  t.comment(`${COUNT} requests in ${Date.now() - started} ms`);

  const ok = await r.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText('filter-names-web') });
  t.equal(ok.statusCode, 200, 'a good request after them is answered');
  t.same(ok.json<ExtenderFilterResult>().NodeNames?.length, 2);
  const metrics = await r.registry.metrics();
  t.match(metrics, /bamel_extender_requests_total\{verb="(filter|prioritize)",code="400"\} \d{4}/, 'each counted as a 400');
});

t.test('messages say what is wrong and where', async (t) => {
  const r = rig();
  const ask = async (payload: string): Promise<string> => {
    const res = await r.app.inject({ method: 'POST', url: '/extender/filter', payload, headers: { 'content-type': 'application/json' } });
    t.equal(res.statusCode, 400, payload.slice(0, 60));
    return res.json<{ message: string }>().message;
  };
  const body = clone('filter-names-web');
  t.match(await ask('{"Pod": '), /not valid JSON|Unexpected end/i);
  t.match(await ask(JSON.stringify({ ...body, NodeNames: 'cap-a' })), /NodeNames must be array/);
  t.match(await ask(JSON.stringify({ ...body, NodeNames: null })), /neither Nodes nor NodeNames/);
  t.match(await ask(JSON.stringify({ ...body, Nodes: { items: [] } })), /both Nodes and NodeNames/);
  const noName = clone('filter-names-web');
  delete meta(noName).name;
  t.match(await ask(JSON.stringify(noName)), /Pod\/metadata must have required property 'name'/);
  const badCpu = clone('filter-names-web');
  ((spec(badCpu).containers as Record<string, Json>[])[0] as Record<string, Json>).resources = { requests: { cpu: 'lots' } };
  t.match(await ask(JSON.stringify(badCpu)), /body\/Pod: invalid pod: .*cpu.*lots/);
  const big = rig({ bodyLimit: 1024 });
  const res = await big.app.inject({ method: 'POST', url: '/extender/filter', payload: fixtureText('filter-nodes-web') });
  t.equal(res.statusCode, 413, 'a body over the limit: 413');
  t.match(res.json<{ Error: string }>().Error, /too large/i);
});
