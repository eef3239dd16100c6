import * as k8s from '@kubernetes/client-node';
import t from 'tap';
import { FINALIZER, type BareMetalAutoscaler, type BareMetalAutoscalerStatus, type MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { AutoscalerView } from '../../../controller/reconcile/fetch.js';
import { compactStatus } from '../../../controller/reconcile/status-compact.js';
import { kubeAutoscalerApi, StatusWriter } from '../../../controller/reconcile/status-writer.js';
import { ConflictError, type AutoscalerApi } from '../../../controller/reconcile/types.js';
import { autoscaler } from '../../webhook/fixtures.js';
import { deepFreeze, iso, node, status, store, T0 } from './fixtures.js';

type Policy = BareMetalAutoscaler['spec']['deletionPolicy'];

/** What a promise rejected with (undefined when it resolved). */
const rejection = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => undefined,
  (err: unknown) => err,
);

function bma(over: { deleting?: boolean; policy?: Policy; status?: BareMetalAutoscalerStatus } = {}): BareMetalAutoscaler {
  const a = autoscaler('a', { deletionPolicy: over.policy ?? 'Retain' });
  return deepFreeze({
    ...a,
    metadata: { name: 'a', resourceVersion: '7', finalizers: ['example.com/other', FINALIZER], ...(over.deleting ? { deletionTimestamp: new Date(T0 - 1000) } : {}) },
    ...(over.status ? { status: over.status } : {}),
  });
}

interface Recorded {
  calls: string[];
  api: AutoscalerApi;
  fail?: Error;
}

function recordingApi(): Recorded {
  const r: Recorded = {
    calls: [],
    api: {
      async replaceStatus(obj) {
        r.calls.push(`status rv=${obj.metadata.resourceVersion} ${JSON.stringify(obj.status)}`);
        if (r.fail) throw r.fail;
        return { ...obj, metadata: { ...obj.metadata, resourceVersion: '8' } };
      },
      async patchFinalizers(name, resourceVersion, finalizers) {
        r.calls.push(`finalizers ${name} rv=${resourceVersion} ${JSON.stringify(finalizers)}`);
      },
    },
  };
  return r;
}

const written = (machines: MachineStatus[]): BareMetalAutoscalerStatus => deepFreeze({ observedGeneration: 1, machines });
/** What the writer sends for a status (status-compact.ts). */
const sent = (s: BareMetalAutoscalerStatus): string => JSON.stringify(compactStatus(s, T0));

t.test('the status is replaced unless unchanged, and our own write is what we read next', async (t) => {
  const current = bma({ status: compactStatus(written([status('m1', 'Off')]), T0) });
  const autoscalers = store([current]);
  const view = new AutoscalerView(autoscalers);
  const rec = recordingApi();
  const writer = new StatusWriter(rec.api, view, store());
  await writer.write(current, written([status('m1', 'Off')]), T0);
  t.same(rec.calls, [], 'nothing changed (once compacted as it was written): nothing written');

  const next = written([status('m1', 'PoweringOn', { operation: { id: 'on-1', action: 'PowerOn', startedAt: iso(T0) } })]);
  await writer.write(current, next, T0);
  t.same(rec.calls, [`status rv=7 ${sent(next)}`]);
  t.match(rec.calls[0], /"startedAt":"2026-11-28T10:00:00Z"/, 'timestamps at second precision');
  const latest = view.latest('a');
  t.equal(latest?.metadata.resourceVersion, '8', 'the informer has not caught up: our write is newer');
  t.same(latest?.status, compactStatus(next, T0));
  t.same([latest?.apiVersion, latest?.kind], ['autoscaling.bamel.io/v1alpha1', 'BareMetalAutoscaler']);
});

t.test('a status over the safe size is sent trimmed (intents kept), not refused', async (t) => {
  const current = bma();
  const rec = recordingApi();
  const machines = Array.from({ length: 40 }, (_, i) =>
    status(`m${i}`, i === 7 ? 'PoweringOn' : 'Ready', {
      power: { watts: 200, observedAt: iso(T0), source: 'redfish-power' },
      ...(i === 7 ? { operation: { id: 'on-7', action: 'PowerOn' as const, startedAt: iso(T0) } } : {}),
    }),
  );
  const writer = new StatusWriter(rec.api, new AutoscalerView(store([current])), store(), 6_000);
  const trimmed = await writer.write(current, written(machines), T0);
  t.same(trimmed, ['machines[].power (see the metric bamel_machine_power_watts)']);
  t.equal(rec.calls.length, 1, 'written');
  const body = JSON.parse((rec.calls[0] ?? '').replace(/^status rv=7 /, '')) as BareMetalAutoscalerStatus;
  t.equal(body.machines?.length, 40);
  t.same(body.machines?.find((m) => m.operation)?.operation?.id, 'on-7');
  t.equal(body.conditions?.find((c) => c.type === 'StatusTrimmed')?.status, 'True');
  t.ok(Buffer.byteLength(JSON.stringify({ metadata: current.metadata, spec: current.spec, status: body })) <= 6_100, 'the object as a whole within the safe size');
});

t.test('a conflict is thrown as it is, and the view keeps what the informer has', async (t) => {
  const current = bma();
  const view = new AutoscalerView(store([current]));
  const rec = recordingApi();
  rec.fail = new ConflictError('status update conflicted');
  const writer = new StatusWriter(rec.api, view, store());
  const err = await rejection(writer.write(current, written([status('m1', 'Off')])));
  t.ok(err instanceof ConflictError, 'the reconciler tells a conflict by its class');
  t.equal(view.latest('a'), current);
});

t.test('the finalizer is added to those there are, with the resourceVersion read', async (t) => {
  const rec = recordingApi();
  const current = bma();
  await new StatusWriter(rec.api, new AutoscalerView(store([current])), store()).addFinalizer({ ...current, metadata: { ...current.metadata, finalizers: ['example.com/other'] } });
  t.same(rec.calls, [`finalizers a rv=7 ["example.com/other","${FINALIZER}"]`]);
});

t.test('a deletion removes the finalizer once nothing is in flight, no taint is left and, for PowerOff, every machine is off', async (t) => {
  const cases: [string, Policy, MachineStatus[], k8s.V1Node[], boolean][] = [
    ['Retain, machines left as they are', 'Retain', [status('m1', 'Ready'), status('m2', 'Joining'), status('m3', 'Off')], [node('m1')], true],
    ['an operation in flight', 'Retain', [status('m1', 'PoweringOn', { operation: { id: 'on-1', action: 'PowerOn', startedAt: iso(T0) } })], [], false],
    ['a drain in flight', 'Retain', [status('m1', 'Draining')], [node('m1', { draining: true })], false],
    ['a draining taint left behind', 'Retain', [status('m1', 'Ready')], [node('m1', { draining: true })], false],
    ['PowerOff, a machine still on', 'PowerOff', [status('m1', 'Off'), status('m2', 'Ready')], [], false],
    ['PowerOff, a machine still joining', 'PowerOff', [status('m1', 'Joining')], [], false],
    ['PowerOff, every machine off, failed or unknown', 'PowerOff', [status('m1', 'Off'), status('m2', 'Failed'), status('m3', 'Unknown')], [], true],
  ];
  for (const [what, policy, machines, nodes, removed] of cases) {
    const rec = recordingApi();
    const current = bma({ deleting: true, policy });
    const s = written(machines);
    await new StatusWriter(rec.api, new AutoscalerView(store([current])), store(deepFreeze(nodes))).write(current, s, T0);
    t.same(rec.calls, removed ? ['finalizers a rv=7 ["example.com/other"]'] : [`status rv=7 ${sent(s)}`], what);
  }
});

t.test('the API: a 409 is a ConflictError, a 404 on the finalizers is done, anything else says what failed', async (t) => {
  const seen: unknown[] = [];
  let answer: k8s.ApiException<unknown> | undefined;
  const custom = {
    async replaceClusterCustomObjectStatus(req: unknown): Promise<unknown> {
      seen.push(req);
      if (answer) throw answer;
      return { metadata: { name: 'a', resourceVersion: '9' } };
    },
    async patchClusterCustomObject(req: unknown): Promise<unknown> {
      seen.push(req);
      if (answer) throw answer;
      return {};
    },
  } as unknown as k8s.CustomObjectsApi;
  const api = kubeAutoscalerApi(custom);
  const current = bma();
  t.equal((await api.replaceStatus(current)).metadata.resourceVersion, '9');
  t.same(seen[0], { group: 'autoscaling.bamel.io', version: 'v1alpha1', plural: 'baremetalautoscalers', name: 'a', body: current });
  await api.patchFinalizers('a', '7', []);
  t.same(seen[1], { group: 'autoscaling.bamel.io', version: 'v1alpha1', plural: 'baremetalautoscalers', name: 'a', body: { metadata: { finalizers: [], resourceVersion: '7' } } });

  answer = new k8s.ApiException(409, 'Conflict', JSON.stringify({ message: 'the object has been modified' }), {});
  const statusConflict = await rejection(api.replaceStatus(current));
  t.ok(statusConflict instanceof ConflictError);
  t.equal((statusConflict as Error).message, 'status update conflicted');
  const finalizerConflict = await rejection(api.patchFinalizers('a', '7', []));
  t.ok(finalizerConflict instanceof ConflictError);
  t.equal((finalizerConflict as Error).message, 'finalizer update conflicted');
  answer = new k8s.ApiException(404, 'Not Found', JSON.stringify({ message: 'not found' }), {});
  await t.resolves(api.patchFinalizers('a', '7', []), 'the autoscaler is gone: nothing to remove');
  answer = new k8s.ApiException(500, 'Internal', JSON.stringify({ message: 'etcdserver: request timed out' }), {});
  await t.rejects(api.replaceStatus(current), { message: 'writing the status of a: HTTP 500: etcdserver: request timed out' });
  await t.rejects(api.patchFinalizers('a', '7', []), { message: 'updating the finalizers of a: HTTP 500: etcdserver: request timed out' });
  t.notOk((await rejection(api.replaceStatus(current))) instanceof ConflictError, 'only a 409 is a conflict');
});
