import type * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import t from 'tap';
import { stringify } from 'yaml';
import type { BareMetalAutoscaler, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { FEASIBILITY_ANNOTATION, FEASIBILITY_EVENT_REASON, parseMark, PodVerdicts } from '../../controller/verdict.js';
import { MemoryCache } from '../extender/memory-cache.js';

let port = 9000;
const machine = (name: string, cpu: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  bmc: { address: `ipmi://127.0.0.1:${port++}`, credentialsSecret: 'bmc' },
  capacity: { cpu: String(cpu), memory: '64Gi' },
  ...extra,
});

const inventory = (machines: Record<string, unknown>[], rv = '1'): k8s.V1ConfigMap => ({
  metadata: { name: 'machines', namespace: 'bamel-system', resourceVersion: rv, labels: { 'autoscaling.bamel.io/inventory': 'true' } },
  data: { 'machines.yaml': stringify({ machines }) },
});

const bma = (name: string, machines: Partial<MachineStatus>[]): BareMetalAutoscaler => ({
  metadata: { name, resourceVersion: String(Math.random()) },
  spec: { inventory: { namespace: 'bamel-system', name: 'machines' } } as BareMetalAutoscaler['spec'],
  status: { machines: machines.map((m) => ({ phase: 'Off', since: '2026-01-01T00:00:00Z', name: '', ...m })) },
});

let rv = 100;
const pendingPod = (name: string, cpu: string, more: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod => ({
  metadata: { name, namespace: 'app', uid: `uid-${name}`, resourceVersion: String(rv++) },
  spec: { containers: [{ name: 'c', resources: { requests: { cpu } } }], ...more },
  status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date() }] },
});

interface Harness {
  pods: MemoryCache<k8s.V1Pod>;
  autoscalers: MemoryCache<BareMetalAutoscaler>;
  inventories: MemoryCache<k8s.V1ConfigMap>;
  writes: { pod: string; value: string | null }[];
  events: { name: string; type: string; reason: string; message: string }[];
  verdicts: PodVerdicts[];
  settle(): Promise<void>;
}

/** PodVerdicts over in-memory caches; writes land in the pod cache as the watch would bring them back. */
function harness(shards: string[][] = [['*']]): Harness {
  const pods = new MemoryCache<k8s.V1Pod>();
  const autoscalers = new MemoryCache<BareMetalAutoscaler>();
  const inventories = new MemoryCache<k8s.V1ConfigMap>();
  const writes: Harness['writes'] = [];
  const events: Harness['events'] = [];
  const verdicts: PodVerdicts[] = [];
  for (const shard of shards) {
    const v = new PodVerdicts({
      autoscalers: { list: () => autoscalers.list().filter((a) => shard.includes('*') || shard.includes(a.metadata.name)) },
      inventories,
      pods,
      writeMark: async (namespace, name, resourceVersion, value) => {
        const pod = pods.get(`${namespace}/${name}`);
        if (!pod) throw Object.assign(new Error('not found'), { code: 404 });
        if (pod.metadata?.resourceVersion !== resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
        writes.push({ pod: name, value });
        const annotations = { ...pod.metadata?.annotations };
        if (value === null) delete annotations[FEASIBILITY_ANNOTATION];
        else annotations[FEASIBILITY_ANNOTATION] = value;
        setImmediate(() => pods.put({ ...pod, metadata: { ...pod.metadata, annotations, resourceVersion: String(rv++) } }));
      },
      emit: (obj, type, reason, message) => events.push({ name: obj.name, type, reason, message }),
      logger: pino({ level: 'silent' }),
      idleMs: 5,
      maxDelayMs: 20,
      writesPerSecond: 1000,
      burst: 1000,
    });
    verdicts.push(v);
    pods.on('add', (p) => v.podChanged(p));
    pods.on('update', (p) => v.podChanged(p));
    for (const c of [autoscalers, inventories] as MemoryCache<{ metadata?: { name?: string } }>[]) {
      c.on('add', () => v.machinesChanged());
      c.on('update', () => v.machinesChanged());
    }
  }
  return {
    pods,
    autoscalers,
    inventories,
    writes,
    events,
    verdicts,
    settle: () => new Promise((r) => setTimeout(r, 150)),
  };
}

t.test('an unschedulable pod gets one mark: which powered-off machines could host it, why not the others', async (t) => {
  const h = harness();
  t.teardown(() => h.verdicts.forEach((v) => v.stop()));
  h.inventories.put(
    inventory([
      machine('m-8', 8),
      machine('m-16', 16),
      machine('m-32', 32),
      machine('gpu-1', 32, { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }),
      machine('m-on', 64),
      machine('m-bad', 64),
    ]),
  );
  h.autoscalers.put(
    bma('rack', [
      { name: 'm-8' },
      { name: 'm-16' },
      { name: 'm-32' },
      { name: 'gpu-1' },
      { name: 'm-on', phase: 'Ready' },
      { name: 'm-bad', phase: 'Failed', reason: 'JoinTimeout', retryAfter: '2026-01-01T01:00:00Z' },
    ]),
  );
  h.pods.put(pendingPod('web', '12'));
  await h.settle();
  t.equal(h.writes.length, 1, 'one write');
  const mark = parseMark(h.pods.get('app/web')?.metadata?.annotations?.[FEASIBILITY_ANNOTATION]);
  t.same(mark, {
    rack: {
      machines: 5,
      feasible: { count: 2, names: ['m-16', 'm-32'] },
      infeasible: [
        { count: 1, reasons: ['taint gpu=true:NoSchedule not tolerated'], names: ['gpu-1'] },
        { count: 1, reasons: ['insufficient cpu (needs 12, has 8 free of 8)'], names: ['m-8'] },
        { count: 1, reasons: ['quarantined until 2026-01-01T01:00:00Z (JoinTimeout)'], names: ['m-bad'] },
      ],
    },
  });
  t.equal(h.events.length, 1);
  t.same(h.events[0]?.reason, FEASIBILITY_EVENT_REASON);
  t.equal(h.events[0]?.type, 'Normal');
  t.match(h.events[0]?.message, /^rack: could run on 2 of 5 powered-off machines: m-16, m-32; not on .*gpu-1: taint gpu=true:NoSchedule not tolerated.*m-8: insufficient cpu.*; quarantined: m-bad$/);

  // The write comes back through the watch: nothing more to write.
  h.pods.put({ ...(h.pods.get('app/web') as k8s.V1Pod), metadata: { ...h.pods.get('app/web')?.metadata, resourceVersion: String(rv++) } });
  await h.settle();
  t.equal(h.writes.length, 1, 'an unchanged verdict is never written again');

  // A machine powers on: the verdict changes.
  h.autoscalers.put(bma('rack', [{ name: 'm-8' }, { name: 'm-16', phase: 'PoweringOn' }, { name: 'm-32', phase: 'PoweringOn' }, { name: 'gpu-1' }]));
  await h.settle();
  t.equal(h.writes.length, 2);
  t.same(parseMark(h.pods.get('app/web')?.metadata?.annotations?.[FEASIBILITY_ANNOTATION]).rack?.feasible, { count: 0, names: [] });
  t.equal(h.events.at(-1)?.type, 'Warning', 'no powered-off machine fits: a warning');
  t.match(h.events.at(-1)?.message, /^rack: fits none of the 2 powered-off machines; not on /);

  // Scheduled: the mark goes.
  const bound = { ...(h.pods.get('app/web') as k8s.V1Pod) };
  bound.spec = { ...bound.spec, containers: bound.spec?.containers ?? [], nodeName: 'm-16' };
  bound.status = { phase: 'Running' };
  bound.metadata = { ...bound.metadata, resourceVersion: String(rv++) };
  h.pods.put(bound);
  await h.settle();
  t.same(h.writes.at(-1), { pod: 'web', value: null });
  t.equal(h.pods.get('app/web')?.metadata?.annotations?.[FEASIBILITY_ANNOTATION], undefined);
  t.equal(h.writes.length, 3);
});

t.test('replicas are judged once; a pod that is only Pending (not tried yet) is left alone', async (t) => {
  const h = harness();
  t.teardown(() => h.verdicts.forEach((v) => v.stop()));
  h.inventories.put(inventory([machine('m-8', 8)]));
  h.autoscalers.put(bma('rack', [{ name: 'm-8' }]));
  for (let i = 0; i < 50; i++) h.pods.put(pendingPod(`r-${i}`, '2'));
  const fresh = pendingPod('fresh', '1');
  fresh.status = { phase: 'Pending' };
  h.pods.put(fresh);
  await h.settle();
  t.equal(h.writes.length, 50);
  t.notOk(h.writes.some((w) => w.pod === 'fresh'));
  t.equal(new Set(h.writes.map((w) => w.value)).size, 1, 'replicas share one verdict');
});

t.test('two shards write their own autoscalers into the same mark and never undo each other', async (t) => {
  const h = harness([['rack-a'], ['rack-b']]);
  t.teardown(() => h.verdicts.forEach((v) => v.stop()));
  h.inventories.put(inventory([machine('a-1', 8), machine('b-1', 16)]));
  h.autoscalers.put(bma('rack-a', [{ name: 'a-1' }]));
  h.autoscalers.put(bma('rack-b', [{ name: 'b-1' }]));
  h.pods.put(pendingPod('p', '12'));
  await h.settle();
  await h.settle();
  const mark = parseMark(h.pods.get('app/p')?.metadata?.annotations?.[FEASIBILITY_ANNOTATION]);
  t.same(Object.keys(mark), ['rack-a', 'rack-b']);
  t.same(mark['rack-a']?.feasible.count, 0);
  t.same(mark['rack-b']?.feasible.names, ['b-1']);
  const n = h.writes.length;
  t.ok(n <= 4, `converged after ${n} writes (a conflict costs one retry)`);
  await h.settle();
  t.equal(h.writes.length, n, 'and stays put');
});

t.test('no autoscaler: no mark', async (t) => {
  const h = harness();
  t.teardown(() => h.verdicts.forEach((v) => v.stop()));
  h.pods.put(pendingPod('p', '1'));
  await h.settle();
  t.equal(h.writes.length, 0);
});
