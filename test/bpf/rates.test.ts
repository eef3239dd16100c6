import t from 'tap';
import type { PodTraffic } from '../../api/v1alpha1/trafficreport.js';
import { zeroCounters, type TrafficCounters } from '../../bpf/counters.js';
import { CgroupRates, podRates, significantChange } from '../../bpf/rates.js';

const c = (o: Partial<TrafficCounters>): TrafficCounters => ({ ...zeroCounters(), ...o });

t.test('rates per pod from per-cgroup totals', async (t) => {
  const r = new CgroupRates();
  const first = r.update(new Map([[1n, c({ httpRequests: 100, rxBytes: 1000 })]]), 0);
  t.equal(first.seconds, 0, 'the first poll is a baseline');
  t.equal(first.deltas.size, 0);
  const second = r.update(
    new Map([
      [1n, c({ httpRequests: 150, http2Requests: 10, rxBytes: 3000, txBytes: 1000, syns: 2 })],
      [2n, c({ httpRequests: 5 })], // a new container of the same pod
      [3n, c({ rxBytes: 500 })], // not a pod
    ]),
    2000,
  );
  t.equal(second.seconds, 2);
  const pods = podRates(second.deltas, second.seconds, (id) => (id === 3n ? undefined : 'uid-a'), () => ({ namespace: 'ns', name: 'web-1', ownerKind: 'ReplicaSet', ownerName: 'web-6d8f' }));
  t.same(pods, [
    {
      uid: 'uid-a',
      namespace: 'ns',
      name: 'web-1',
      ownerKind: 'ReplicaSet',
      ownerName: 'web-6d8f',
      requestsPerSecond: 32.5,
      http2RequestsPerSecond: 5,
      bytesPerSecond: 1500,
      rxBytesPerSecond: 1000,
      connectionsPerSecond: 1,
      packetsPerSecond: 0,
      retransmitsPerSecond: 0,
    },
  ]);
  // Cgroup 1 removed and its id's entry gone; a counter that fell is counted from zero.
  const third = r.update(new Map([[2n, c({ httpRequests: 3 })]]), 3000);
  t.same(third.deltas.get(2n)?.httpRequests, 3, 'a counter below its previous value restarted');
  t.notOk(third.deltas.has(1n));
});

t.test('a report is written on a significant change only', async (t) => {
  const p = (uid: string, rps: number, bps = 0, name = uid): PodTraffic => ({
    uid, namespace: 'ns', name, requestsPerSecond: rps, http2RequestsPerSecond: 0, bytesPerSecond: bps, rxBytesPerSecond: bps, connectionsPerSecond: 0, packetsPerSecond: 0,
  });
  t.equal(significantChange(undefined, []), 'first report');
  t.equal(significantChange([p('a', 100)], [p('a', 110)]), undefined, '10 % is noise');
  t.match(significantChange([p('a', 100)], [p('a', 130)]), /requests\/s 100 → 130/);
  t.equal(significantChange([p('a', 0.2)], [p('a', 0.9)]), undefined, 'below 1 request/s of change');
  t.match(significantChange([p('a', 0, 1_000_000)], [p('a', 0, 2_000_000)]), /bytes\/s/);
  t.match(significantChange([], [p('b', 5)]), /pod ns\/b has traffic/);
  t.equal(significantChange([], [p('b', 0.1, 10)]), undefined, 'a quiet new pod is not news');
  t.match(significantChange([p('b', 5)], []), /went quiet/);
});
