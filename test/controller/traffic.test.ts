import t from 'tap';
import type { V1Node, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { PodTraffic, TrafficReport } from '../../api/v1alpha1/trafficreport.js';
import { decideScaleUp } from '../../controller/decide.js';
import { PodIndex, toVector } from '../../controller/observe.js';
import { aggregateWorkloads, networkReading, replicaDemand, TrafficDemand, TrafficTracker, workloadOf, type WorkloadTraffic } from '../../controller/traffic.js';
import { candidateFromMachine, compileCandidate, fits } from '../../scheduling/index.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function pod(name: string, opts: { uid?: string; node?: string; owner?: { kind: string; name: string }; hash?: string; cpu?: string; tolerations?: V1Toleration[] } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'shop',
      uid: opts.uid ?? `uid-${name}`,
      resourceVersion: '7',
      labels: { app: 'web', ...(opts.hash ? { 'pod-template-hash': opts.hash } : {}) },
      ...(opts.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: opts.owner.kind, name: opts.owner.name, uid: 'o', controller: true }] } : {}),
    },
    spec: {
      ...(opts.node ? { nodeName: opts.node } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
      containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: opts.cpu ?? '2', memory: '1Gi' } } }],
    },
    status: { phase: 'Running' },
  };
}

function traffic(uid: string, rps: number, bps = 0): PodTraffic {
  return { uid, requestsPerSecond: rps, http2RequestsPerSecond: 0, bytesPerSecond: bps, rxBytesPerSecond: bps, connectionsPerSecond: 0, packetsPerSecond: 0 };
}

function report(node: string, at: number, pods: PodTraffic[]): TrafficReport {
  return { metadata: { name: node }, spec: { nodeName: node, observedAt: new Date(at).toISOString(), intervalSeconds: 1, pods } };
}

function machine(name: string, cores: number, taints: ParsedMachine['taints'] = []): ParsedMachine {
  return {
    index: 0,
    name,
    bmc: { address: 'ipmi://x', parsedAddress: {} as ParsedMachine['bmc']['parsedAddress'], credentialsSecret: 's', insecureSkipVerify: false },
    labels: { pool: 'p' },
    taints,
    capacity: { cpu: BigInt(cores) * 1000n, memory: 64n * 1024n ** 3n * 1000n, pods: 110_000n },
    capacityText: {},
  };
}

function node(name: string, cores: number): V1Node {
  return {
    metadata: { name, labels: { pool: 'p' } },
    status: { allocatable: { cpu: String(cores), memory: '64Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function spec(network: { requestsPerSecondRate?: number; bytesPerSecondRate?: number }, windowSeconds = 60): BareMetalAutoscalerSpec {
  return {
    pressure: { windowSeconds, network: { requestsPerSecondRate: 0, bytesPerSecondRate: 0, ...network } },
    scaleUp: { joinTimeoutSeconds: 600 },
  } as unknown as BareMetalAutoscalerSpec;
}

t.test('the workload of a pod: Deployment through its ReplicaSet, other controllers, bare pods', async (t) => {
  t.same(workloadOf(pod('web-6d8f-x', { owner: { kind: 'ReplicaSet', name: 'web-6d8f' }, hash: '6d8f' })), { namespace: 'shop', kind: 'Deployment', name: 'web' });
  t.same(workloadOf(pod('rs-x', { owner: { kind: 'ReplicaSet', name: 'plain-rs' } })), { namespace: 'shop', kind: 'ReplicaSet', name: 'plain-rs' });
  t.same(workloadOf(pod('db-0', { owner: { kind: 'StatefulSet', name: 'db' } })), { namespace: 'shop', kind: 'StatefulSet', name: 'db' });
  t.same(workloadOf(pod('lonely')), { namespace: 'shop', kind: 'Pod', name: 'lonely' });
});

t.test('reports become per-workload rates; stale reports and unknown pods are left out', async (t) => {
  const owner = { kind: 'ReplicaSet', name: 'web-6d8f' };
  const pods = [pod('web-1', { owner, hash: '6d8f' }), pod('web-2', { owner, hash: '6d8f' }), pod('db-0', { owner: { kind: 'StatefulSet', name: 'db' } })];
  const byUid = new Map(pods.map((p) => [p.metadata?.uid ?? '', p]));
  const reports = [
    report('n1', T0, [traffic('uid-web-1', 10, 1000), traffic('uid-db-0', 2, 50)]),
    report('n2', T0 - 1000, [traffic('uid-web-2', 15, 3000), traffic('uid-gone', 99)]),
    report('n3', T0 - 11 * 60_000, [traffic('uid-web-1', 1000)]),
  ];
  const w = aggregateWorkloads(reports, (u) => byUid.get(u), T0, 10 * 60_000);
  t.same(
    w.map((x) => [x.key, x.requestsPerSecond, x.bytesPerSecond, x.pods]),
    [
      ['shop/Deployment/web', 25, 4000, ['uid-web-1', 'uid-web-2']],
      ['shop/StatefulSet/db', 2, 50, ['uid-db-0']],
    ],
  );
});

t.test('a surge is a rate of change at or above the threshold, over the pressure window', async (t) => {
  const tr = new TrafficTracker();
  const w = (rps: number, bps = 0): WorkloadTraffic => ({ key: 'shop/Deployment/web', namespace: 'shop', kind: 'Deployment', name: 'web', requestsPerSecond: rps, bytesPerSecond: bps, pods: ['a'] });
  const thresholds = { requestsPerSecondRate: 100, bytesPerSecondRate: 0 };
  // Steady at 50 requests/s: no surge.
  for (let i = 0; i < 6; i++) t.notOk(tr.observe('a', 60_000, [w(50)], thresholds, T0 + i * 5000)[0]?.surge);
  // +20 requests/s every 5 s = 240 per minute.
  let last;
  for (let i = 6; i < 12; i++) last = tr.observe('a', 60_000, [w(50 + (i - 5) * 20)], thresholds, T0 + i * 5000)[0];
  t.match(last?.surge, /shop\/Deployment\/web requests\/s rising \d+(\.\d+)?\/min \(now 170\), at or above 100\/min/);
  t.ok((last?.requestsRatePerMinute ?? 0) >= 100);
  const reading = networkReading(last ? [last] : []);
  t.equal(reading.category, 'network');
  t.equal(reading.pressured, true);
  t.equal(reading.level, 170);
  // A threshold of 0 turns the signal off.
  const off = new TrafficTracker();
  for (let i = 0; i < 12; i++) last = off.observe('a', 60_000, [w(i * 100)], { requestsPerSecondRate: 0, bytesPerSecondRate: 0 }, T0 + i * 5000)[0];
  t.notOk(last?.surge);
  // bytes/s too.
  const bytes = new TrafficTracker();
  for (let i = 0; i < 12; i++) last = bytes.observe('a', 60_000, [w(1, i * 1e6)], { requestsPerSecondRate: 0, bytesPerSecondRate: 1e6 }, T0 + i * 5000)[0];
  t.match(last?.surge, /bytes\/s rising/);
});

t.test('a surging workload asks for one more replica, on a machine it tolerates, once', async (t) => {
  const toleration = [{ key: 'traffic', operator: 'Equal', value: 'edge', effect: 'NoSchedule' }];
  const owner = { kind: 'ReplicaSet', name: 'web-6d8f' };
  // The running replicas fill node n1 (4 cores, 2 × 2).
  const pods = [
    pod('web-1', { owner, hash: '6d8f', node: 'n1', tolerations: toleration }),
    pod('web-2', { owner, hash: '6d8f', node: 'n1', tolerations: toleration }),
  ];
  const nodes = [node('n1', 4)];
  let reports: TrafficReport[] = [];
  const surges: string[] = [];
  const demand = new TrafficDemand({ reports: { list: () => reports }, pods: { list: () => pods }, nodes: { list: () => nodes } }, { onSurge: (a, s) => surges.push(`${a}: ${s}`) });
  // Machines: `other` is bigger and cheaper but tainted for someone else; `edge` has the taint the pods tolerate.
  const other = machine('other', 8, [{ key: 'team', value: 'db', effect: 'NoSchedule' }]);
  const edge = machine('edge', 16, [{ key: 'traffic', value: 'edge', effect: 'NoSchedule' }]);
  const s = spec({ requestsPerSecondRate: 60 }, 60);

  let obs = demand.observe('rack', s, [other, edge], T0);
  t.same(obs.demand, [], 'no report, no demand');
  t.same(obs.reading, { category: 'network', level: 0, ratePerMinute: 0, pressured: false });
  for (let i = 0; i <= 6; i++) {
    const now = T0 + i * 5000;
    reports = [report('n1', now, [traffic('uid-web-1', 10 + i * 10), traffic('uid-web-2', 10 + i * 10)])];
    obs = demand.observe('rack', s, [other, edge], now);
  }
  t.equal(obs.reading.pressured, true, 'network is under pressure');
  t.match(obs.reading.reason, /shop\/Deployment\/web requests\/s rising/);
  t.equal(obs.demand.length, 1, 'one replica of demand');
  const replica = obs.demand[0] as V1Pod;
  t.equal(replica.spec?.nodeName, undefined, 'not bound');
  t.same(replica.spec?.tolerations, toleration, "the workload's tolerations");
  t.equal(replica.metadata?.uid, 'traffic-surge/shop/Deployment/web');
  t.equal(surges.length, 1, 'announced once');
  obs = demand.observe('rack', s, [other, edge], T0 + 31_000);
  t.equal(surges.length, 1, 'still announced once while the surge lasts');

  // Fed to the scale-up decision like a pending pod: the tolerated machine wins, though
  // `other` is closer to the replica's size.
  const index = new PodIndex();
  const compiled = index.compile(replica);
  const byName = new Map([other, edge].map((m) => [m.name, compileCandidate(candidateFromMachine(m))]));
  const decision = decideScaleUp({
    pending: [{ key: 'shop/web-traffic-surge', uid: replica.metadata?.uid ?? '', requests: toVector(compiled.requests), equivalenceClass: compiled.signature }],
    absorbing: [],
    candidates: [other, edge].map((m) => ({ name: m.name, capacity: m.capacity, powerCyclesToday: 0 })),
    feasible: (_p, m) => fits(compiled.pod, byName.get(m)!),
    weights: { usefulWeight: 1, nonUsefulWeight: 0.25 },
    pressured: new Set(['network']),
    budget: { machines: 5 },
    belowMinimum: 0,
  });
  t.same(decision.powerOn.map((c) => c.machine), ['edge']);

  // Another autoscaler does not get the same surge while this one holds it.
  const b = demand.observe('rack-b', s, [edge], T0 + 32_000);
  t.same(b.demand, [], 'claimed by rack');

  // A machine of its kind is up with room: no more demand.
  nodes.push({ ...node('edge', 16), spec: { taints: [{ key: 'traffic', value: 'edge', effect: 'NoSchedule' }] } });
  obs = demand.observe('rack', s, [other, edge], T0 + 33_000);
  t.same(obs.demand, [], 'a Ready node has room for the next replica');
  t.equal(obs.reading.pressured, true, 'the category still reads pressured');
});

t.test('workloads no machine of the autoscaler can host are not its concern', async (t) => {
  const pods = [pod('web-1', { node: 'n1', cpu: '3' })];
  const reports = [report('n1', T0, [traffic('uid-web-1', 100)])];
  const demand = new TrafficDemand({ reports: { list: () => reports }, pods: { list: () => pods }, nodes: { list: () => [node('n1', 4)] } });
  const tainted = machine('gpu', 32, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]);
  const obs = demand.observe('gpu-rack', spec({ requestsPerSecondRate: 1 }), [tainted], T0);
  t.same(obs.demand, []);
  t.equal(obs.reading.level, 0, 'not counted in its network level');
});

t.test('the replica copies the pod but not its binding', async (t) => {
  const p = pod('web-1', { node: 'n1' });
  const r = replicaDemand({ namespace: 'shop', kind: 'Deployment', name: 'web' }, p);
  t.equal(r.metadata?.name, 'web-traffic-surge');
  t.equal(r.spec?.containers[0]?.resources?.requests?.cpu, '2');
  t.equal(p.spec?.nodeName, 'n1', 'the template is not modified');
});
