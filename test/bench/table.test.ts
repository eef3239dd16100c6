import t from 'tap';
import { GOALS, goalTable } from '../../bench/table.js';

const results = {
  extender: { bench: 'extender', sizes: [{ nodes: 1000, ratio: 0.96 }, { nodes: 5000, ratio: 0.81 }], filterP99Ms: 3 },
  traffic: { bench: 'traffic', ingressNsPerPacket: 109, egressNsPerPacket: 87, l7IngressNsPerPacket: 394, vethRatio: 1.037, agentRssMiB: 115 },
  'status-size': { bench: 'status-size', machines: 10000, sentMiB: 0.974 },
  decision: {
    bench: 'decision',
    e2eP99Ms: 512,
    recorded: [
      { machines: 1000, pods: 11333, reconcileP50Ms: 80, firstReconcileMs: 300, rssMiB: 90 },
      { machines: 10000, pods: 19578, reconcileP50Ms: 450, firstReconcileMs: 1900, rssMiB: 380 },
      { machines: 1000, pods: 30000, reconcileP50Ms: 150, firstReconcileMs: 900, rssMiB: 140 },
    ],
  },
};

t.test('each goal row reads its figure and says whether the goal is met', async (t) => {
  const table = goalTable(results);
  const row = (measure: string) => table.split('\n').find((l) => l.startsWith(`| ${measure} |`));
  t.equal(row('kube-scheduler pods/s with the extender ÷ without, 5,000 kwok Nodes'), '| kube-scheduler pods/s with the extender ÷ without, 5,000 kwok Nodes | 0.81 | ≥ 0.90 | no |');
  t.equal(row('the same, 1,000 kwok Nodes'), '| the same, 1,000 kwok Nodes | 0.96 | ≥ 0.95 | yes |');
  t.equal(row('eBPF ns per packet: bulk ingress'), '| eBPF ns per packet: bulk ingress | 109.0 ns | ≤ 150 ns | yes |');
  t.equal(row('eBPF ns per packet: ingress with HTTP parsing'), '| eBPF ns per packet: ingress with HTTP parsing | 394.0 ns | ≤ 300 ns | no |');
  // The plain 1,000-machine entry is not the one with 30,000 running pods, and the reverse.
  t.equal(row('reconcile p50, recorded state, 10,000 pending pods, 1,000 machines'), '| reconcile p50, recorded state, 10,000 pending pods, 1,000 machines | 80.0 ms | ≤ 100 ms | yes |');
  t.equal(row('manager RSS: 1,000 machines + 30,000 pods'), '| manager RSS: 1,000 machines + 30,000 pods | 140.0 MiB | ≤ 150 MiB | yes |');
  t.equal(row('first reconcile at 10,000 machines'), '| first reconcile at 10,000 machines | 1900 ms | ≤ 2000 ms | yes |');
  t.equal(row('the same, 10,000 machines'), '| the same, 10,000 machines | 450.0 ms | ≤ 400 ms | no |');
  // Not measured in this run (no webhook or scale-down results): a dash, not a pass.
  t.equal(row('webhook handler p99: autoscaler'), '| webhook handler p99: autoscaler | – | ≤ 5 ms | – |');
  t.equal(row('scale-down plan, 2,000 unneeded machines'), '| scale-down plan, 2,000 unneeded machines | – | ≤ 100 ms | – |');
  t.equal(row('status of 10,000 machines after a week, as written (etcd takes at most 1.5 MiB)'), '| status of 10,000 machines after a week, as written (etcd takes at most 1.5 MiB) | 0.97 MiB | ≤ 1.5 MiB | yes |');
  t.equal(table.split('\n').length, GOALS.length + 2);
});

t.test('a failed bench or a figure of the wrong type counts as not measured', async (t) => {
  const table = goalTable({ traffic: { bench: 'traffic', failed: true }, webhook: { bench: 'webhook', autoscalerP99Ms: 'fast', inventoryP99Ms: null } });
  t.match(table, /\| eBPF ns per packet: egress \| – \| ≤ 100 ns \| – \|/);
  t.match(table, /\| webhook handler p99: autoscaler \| – \| ≤ 5 ms \| – \|/);
  t.match(table, /\| webhook handler p99: inventory of 100 machines \| – \| ≤ 10 ms \| – \|/);
});
