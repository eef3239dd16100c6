import t from 'tap';
import { buildRecordedCluster } from '../../bench/helpers/recorded-cluster.js';
import { recordedReconciler } from '../../bench/helpers/recorded-reconciler.js';

// The decision benchmark's recorded state must keep exercising the decision: a schema or
// reconciler change that made the inventory invalid, or the state decide nothing, would
// leave the benchmark timing an early return.

t.test('the recorded state drives the real reconciler to a scale-up', async (t) => {
  const now = Date.parse('2026-03-02T10:00:00Z');
  const state = buildRecordedCluster({ machines: 200, pendingPods: 600, now });
  t.equal(state.nodes.length, 20, 'a tenth of the machines are Ready Nodes');
  t.equal(state.pods.length - state.runningCount, 600, 'the pending pods are there');

  const harness = await recordedReconciler(state, () => now + 1000);
  const first = await harness.run();
  const status = harness.lastWritten()?.status;
  t.equal(status?.conditions?.find((c) => c.type === 'InventoryValid')?.status, 'True', 'the inventory is valid');
  t.equal(status?.unschedulablePods, 600, 'every pending pod is considered');
  t.ok(first.powerOns > 0, `machines are powered on (${first.powerOns})`);
  t.equal(first.powerOns, status?.machines?.filter((m) => m.phase === 'PoweringOn').length, 'each intent reached a BMC driver');
  t.ok(first.firstPowerOnMs !== undefined && first.firstPowerOnMs <= first.totalMs + 50, 'the power-on requests are timed');
  t.ok(first.events.some((e) => e.includes(' TriggeredPowerOn: ')), 'pods are told which machine comes for them');
  t.ok(first.events.some((e) => e.includes(' NoFeasibleMachine: ')), 'the pods no machine can host are explained');

  const onFirst = status?.machines?.filter((m) => m.phase === 'PoweringOn').map((m) => m.name);
  harness.podsChanged();
  const again = await harness.run();
  t.equal(again.powerOns, first.powerOns, 'a later reconcile starts from the same recorded state');
  t.same(harness.lastWritten()?.status?.machines?.filter((m) => m.phase === 'PoweringOn').map((m) => m.name), onFirst, 'and decides the same');
});

t.test('the recorded state is the same for the same seed', async (t) => {
  const now = Date.parse('2026-03-02T10:00:00Z');
  const a = buildRecordedCluster({ machines: 50, pendingPods: 100, now });
  const b = buildRecordedCluster({ machines: 50, pendingPods: 100, now });
  t.equal(JSON.stringify(a), JSON.stringify(b));
  t.not(JSON.stringify(buildRecordedCluster({ machines: 50, pendingPods: 100, now, seed: 7 })), JSON.stringify(a), 'another seed, another cluster');
});
