import t from 'tap';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { MAX_REPORT_PODS, MAX_REPORT_PODS_BYTES, TrafficReportSpecSchema, type PodTraffic } from '../../api/v1alpha1/trafficreport.js';
import { capReportPods } from '../../bpf/report-size.js';

/** The TrafficReport size cap: what the agent writes always fits the schema and etcd. */

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

function pod(i: number, extra: Partial<PodTraffic> = {}): PodTraffic {
  const hex = i.toString(16).padStart(12, '0');
  return {
    uid: `00000000-0000-4000-8000-${hex}`,
    namespace: 'shop',
    name: `web-${i}`,
    ownerKind: 'ReplicaSet',
    ownerName: 'web-5d4f8',
    requestsPerSecond: i,
    http2RequestsPerSecond: 0,
    bytesPerSecond: 1000 * i,
    rxBytesPerSecond: 500 * i,
    connectionsPerSecond: 1,
    packetsPerSecond: 10,
    retransmitsPerSecond: 0,
    ...extra,
  };
}

const spec = (pods: PodTraffic[], omittedPods?: number) => ({
  nodeName: 'n1',
  observedAt: '2026-12-07T15:00:00.000Z',
  intervalSeconds: 5,
  agent: 'bamel-agent 0.1.0 on n1',
  pods,
  ...(omittedPods ? { omittedPods } : {}),
});

t.test('under the cap: every pod, unchanged', async (t) => {
  const pods = Array.from({ length: 110 }, (_, i) => pod(i));
  const capped = capReportPods(pods);
  t.same(capped.pods, pods);
  t.equal(capped.omitted, 0);
});

t.test(`more pods than ${MAX_REPORT_PODS}: the busiest kept, in their order, the rest counted`, async (t) => {
  const pods = Array.from({ length: MAX_REPORT_PODS + 200 }, (_, i) => pod(i));
  const capped = capReportPods(pods);
  t.equal(capped.pods.length, MAX_REPORT_PODS);
  t.equal(capped.omitted, 200);
  t.equal(Math.min(...capped.pods.map((p) => p.requestsPerSecond)), 200, 'the 200 quietest are the ones left out');
  t.same(capped.pods.map((p) => p.uid), pods.slice(200).map((p) => p.uid), 'in the order given');
  t.ok(Value.Check(TrafficReportSpecSchema, spec(capped.pods, capped.omitted)), 'valid against the API schema (maxItems)');
  t.notOk(Value.Check(TrafficReportSpecSchema, spec(pods)), 'the uncapped list is not');
});

t.test('ties on requests are broken by bytes, then by UID', async (t) => {
  const pods = [pod(1, { requestsPerSecond: 5, bytesPerSecond: 10 }), pod(2, { requestsPerSecond: 5, bytesPerSecond: 30 }), pod(3, { requestsPerSecond: 5, bytesPerSecond: 20 })];
  t.same(capReportPods(pods, { maxPods: 2, maxBytes: 1e6 }).pods.map((p) => p.name), ['web-2', 'web-3']);
});

t.test(`the byte cap: the longest names and largest rates still fit in ${MAX_REPORT_PODS_BYTES} bytes`, async (t) => {
  const long = (c: string, n: number) => c.repeat(n);
  const pods = Array.from({ length: MAX_REPORT_PODS }, (_, i) =>
    pod(i, {
      namespace: long('n', 63),
      name: `${long('p', 243)}-${String(i).padStart(9, '0')}`,
      ownerKind: long('K', 63),
      ownerName: long('o', 253),
      requestsPerSecond: 1.234567890123e300 + i,
      bytesPerSecond: 1.234567890123e300,
      rxBytesPerSecond: 1.234567890123e300,
      connectionsPerSecond: 1.234567890123e300,
      packetsPerSecond: 1.234567890123e300,
      http2RequestsPerSecond: 1.234567890123e300,
      retransmitsPerSecond: 1.234567890123e300,
    }),
  );
  const capped = capReportPods(pods);
  const bytes = Buffer.byteLength(JSON.stringify(capped.pods));
  t.ok(bytes <= MAX_REPORT_PODS_BYTES, `${bytes} bytes of pods`);
  t.ok(capped.pods.length < MAX_REPORT_PODS && capped.pods.length > 300, `${capped.pods.length} pods kept`);
  t.equal(capped.pods.length + capped.omitted, MAX_REPORT_PODS, 'every pod kept or counted');
  t.ok(Value.Check(TrafficReportSpecSchema, spec(capped.pods, capped.omitted)), 'valid against the API schema');
  // The whole object with its managedFields (every pod key listed again) stays well under etcd's 1.5 MiB.
  const managedFields = capped.pods.map((p) => `"k:{\\"uid\\":\\"${p.uid}\\"}":{".":{},"f:uid":{},"f:namespace":{},"f:name":{},"f:ownerKind":{},"f:ownerName":{},"f:requestsPerSecond":{},"f:http2RequestsPerSecond":{},"f:bytesPerSecond":{},"f:rxBytesPerSecond":{},"f:connectionsPerSecond":{},"f:packetsPerSecond":{},"f:retransmitsPerSecond":{}}`).join(',');
  t.ok(bytes + managedFields.length < 1024 * 1024, `with managedFields: ${bytes + managedFields.length} bytes`);
});

t.test('strings longer than the schema allows: never cut, left out', async (t) => {
  const pods = [
    pod(1, { uid: 'u'.repeat(65) }),
    pod(2, { namespace: 'n'.repeat(64) }),
    pod(3, { ownerKind: 'K'.repeat(64) }),
    pod(4),
  ];
  const capped = capReportPods(pods);
  t.equal(capped.omitted, 1, 'a pod whose UID is not one is left out, and counted');
  t.same(capped.pods.map((p) => p.uid), [pods[1]?.uid, pods[2]?.uid, pods[3]?.uid]);
  t.notOk(capped.pods[0]?.namespace ?? capped.pods[0]?.name, 'a namespace too long: reported by UID only');
  t.equal(capped.pods[1]?.name, 'web-3', 'an owner too long: the pod keeps its name');
  t.notOk(capped.pods[1]?.ownerKind ?? capped.pods[1]?.ownerName, 'without the owner');
  t.same(capped.pods[2], pods[3]);
  t.ok(Value.Check(TrafficReportSpecSchema, spec(capped.pods, capped.omitted)));
});
