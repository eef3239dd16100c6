import t from 'tap';
import { DRAINING_TAINT } from '../../api/v1alpha1/baremetalautoscaler.js';
import { kubectl, localCluster, waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase, type Scene } from './helpers/scene.js';
import { createBudget, createDeployment, readyPods, watchBudgets } from './helpers/workload.js';

/**
 * Scale-down on the local control plane: kube-controller-manager computes the budgets and
 * recreates evicted pods, kube-scheduler binds them, the simulated BMCs power machines off.
 * Every autoscaler starts with scale-down off, so that no machine goes before the test's
 * workload is in place, and the test turns it on.
 */

const FAST = { utilizationThreshold: 0.5, unneededSeconds: 2, cooldownSeconds: 0, drainTimeoutSeconds: 60 };

async function bootAll(scene: Scene, bma: string, short: string[]): Promise<void> {
  for (const s of short) await scene.sim.pressPower(scene.names[s] as string, 'on');
  for (const s of short) await waitForPhase(scene, bma, scene.names[s] as string, 'Ready', 60_000);
}

async function enableScaleDown(bma: string, scaleDown: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await kubectl(['patch', 'bma', bma, '--type', 'merge', '-p', JSON.stringify({ spec: { scaleDown: { enabled: true, ...scaleDown }, ...extra } })]);
  if (r.code !== 0) throw new Error(`kubectl patch: ${r.stderr}`);
}

/** Power-offs the BMC carried out (graceful, or forced after a graceful one timed out). */
// The simulator reports a request, and a graceful shutdown once more when the OS has halted.
const request = (e: { detail?: unknown }): boolean => !(typeof e.detail === 'string' && e.detail.startsWith('completed'));
const isOff = (e: { action?: string; result?: string; detail?: unknown }): boolean => (e.action === 'graceful-off' || e.action === 'force-off') && e.result === 'ok' && request(e);
const isOn = (e: { action?: string; result?: string; detail?: unknown }): boolean => e.action === 'on' && e.result === 'ok' && request(e);

function offEvents(scene: Scene, short: string): number {
  return scene.sim.powerEvents(scene.names[short]).filter(isOff).length;
}

t.test('an idle machine is drained and powered off; its pods are recreated and bound elsewhere; no budget is broken', async (t) => {
  const scene = await startScene(t, 'sd', [
    { name: 'a', cpu: 8, memory: '32Gi', maxWatts: 500 },
    { name: 'b', cpu: 8, memory: '32Gi', maxWatts: 300 },
  ]);
  const bma = `sd-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 0, maxMachines: 2, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  await bootAll(scene, bma, ['a', 'b']);
  const [a, b] = [scene.names.a as string, scene.names.b as string];

  await createDeployment(scene.ns, 'web', { replicas: 4, cpu: '1', nodeSelector: scene.poolLabel });
  await createBudget(scene.ns, 'web', 'web', 3);
  const placed = await waitFor('4 web pods Ready', 60_000, async () => {
    const pods = await readyPods(scene.ns, 'web');
    return pods.length === 4 ? pods : false;
  });
  t.ok(placed.some((p) => p.spec?.nodeName === a), 'the scheduler put some pods on the machine that will be drained');
  await waitFor('the budget computed', 30_000, async () => {
    const { policy } = await localCluster();
    const pdb = await policy.readNamespacedPodDisruptionBudget({ name: 'web', namespace: scene.ns });
    return pdb.status?.disruptionsAllowed === 1;
  });
  const watch = await watchBudgets(scene.ns, [{ app: 'web', minAvailable: 3 }]);
  t.teardown(() => watch.stop());

  await enableScaleDown(bma, FAST);
  // The more power-hungry machine goes; its pods fit on the other.
  const draining = await waitForPhase(scene, bma, a, 'Draining', 30_000);
  const ds = draining.status?.machines?.find((m) => m.name === a);
  t.match(ds?.message, /draining: unneeded since .* pod\(s\) to move/);
  t.ok(ds?.drain?.deadline, 'the drain records its deadline');
  const off = await waitForPhase(scene, bma, a, 'Off', 90_000);
  const movedPods = await waitFor('4 web pods Ready again', 60_000, async () => {
    const pods = await readyPods(scene.ns, 'web');
    return pods.length === 4 ? pods : false;
  });
  t.same(
    movedPods.map((p) => p.spec?.nodeName),
    [b, b, b, b],
    'every pod runs on the remaining machine, recreated by the ReplicaSet and bound by kube-scheduler',
  );
  watch.stop();
  t.same(watch.violations, [], 'no PodDisruptionBudget was broken at any moment');
  t.ok(watch.seen > 4, `the watch saw the run (${watch.seen} events)`);
  t.equal(watch.minReady.get('web'), 3, 'at the lowest, exactly minAvailable pods were Ready');

  t.equal(offEvents(scene, 'a'), 1, 'one power-off for the drained machine');
  t.equal(offEvents(scene, 'b'), 0, 'none for the other');
  t.equal(off.status?.lastScaleEvent?.direction, 'Down');
  t.equal(off.status?.lastScaleEvent?.machine, a);
  const bStatus = await waitFor('b Ready and not a candidate', 30_000, async () => {
    const s = (await scene.autoscaler(bma)).status?.machines?.find((m) => m.name === b);
    return s?.phase === 'Ready' && s.blockers?.some((x) => /utilisation 50% \(cpu\) is at or above/.test(x)) ? s : false;
  });
  t.equal(bStatus.disruption, undefined, 'the remaining machine, now half full, is not a candidate');
  await waitFor(`Node ${a} removed`, 30_000, async () => {
    try {
      await scene.core.readNode({ name: a });
      return false;
    } catch {
      return true;
    }
  });
  const events = await scene.autoscalerEvents(bma);
  for (const reason of ['DrainStarted', 'PowerOff', 'MachinePoweredOff']) {
    t.ok(events.some((e) => e.reason === reason && e.message?.includes(a)), `event ${reason}`);
  }
  const podEvents = (await scene.core.listNamespacedEvent({ namespace: scene.ns, fieldSelector: 'reason=Evicted' })).items;
  t.ok(podEvents.some((e) => e.message?.includes(`to drain ${a}`)), 'evicted pods carry an event naming the machine');
});

t.test('a budget that allows no disruption keeps its machine on; a forced drain against it times out and is undone', async (t) => {
  const scene = await startScene(t, 'sdpdb', [
    { name: 'a', cpu: 8, memory: '32Gi', maxWatts: 500 },
    { name: 'b', cpu: 8, memory: '32Gi', maxWatts: 300 },
  ]);
  const bma = `sdpdb-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 2, maxMachines: 2, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  await bootAll(scene, bma, ['a', 'b']);
  const a = scene.names.a as string;
  await createDeployment(scene.ns, 'db', { replicas: 2, cpu: '1', nodeName: a });
  await createBudget(scene.ns, 'db', 'db', 2);
  await waitFor('2 db pods Ready', 60_000, async () => (await readyPods(scene.ns, 'db')).length === 2);
  await enableScaleDown(bma, { ...FAST, cooldownSeconds: 600, drainTimeoutSeconds: 10 });

  const blocked = await waitFor('the budget named in status', 30_000, async () => {
    const s = (await scene.autoscaler(bma)).status?.machines?.find((m) => m.name === a);
    return s?.blockers?.some((x) => /PodDisruptionBudget .*\/db allows no disruption now \(2 healthy, 2 required\)/.test(x)) ? s : false;
  });
  t.equal(blocked.phase, 'Ready');
  const ev = await waitFor('ScaleDownBlocked event', 30_000, async () => (await scene.autoscalerEvents(bma)).find((e) => e.reason === 'ScaleDownBlocked' && e.message?.includes(a)) ?? false);
  t.match(ev.message, /allows no disruption now/);

  // Deleting with deletionPolicy PowerOff drains regardless; the Eviction API holds the budget.
  await kubectl(['patch', 'bma', bma, '--type', 'merge', '-p', JSON.stringify({ spec: { deletionPolicy: 'PowerOff' } })]);
  await kubectl(['delete', 'bma', bma, '--wait=false']);
  await waitForPhase(scene, bma, a, 'Draining', 30_000);
  const tainted = await scene.core.readNode({ name: a });
  t.ok(tainted.spec?.taints?.some((x) => x.key === DRAINING_TAINT && x.effect === 'NoSchedule'), 'the Node is tainted while it drains');
  const aborted = await waitFor('the drain timed out', 40_000, async () => {
    const s = (await scene.autoscaler(bma)).status?.machines?.find((m) => m.name === a);
    return s?.phase === 'Ready' && s.reason === 'DrainTimedOut' ? s : false;
  });
  t.match(aborted.message, /drain aborted, the machine stays on: the drain did not finish within scaleDown.drainTimeoutSeconds \(10s\): 2 pod\(s\) left/);
  t.match(aborted.message, /last refusal: .*disruption budget/i);
  await waitFor('taint removed', 20_000, async () => !(await scene.core.readNode({ name: a })).spec?.taints?.some((x) => x.key === DRAINING_TAINT));
  t.equal((await readyPods(scene.ns, 'db')).length, 2, 'both pods still run');
  t.equal(offEvents(scene, 'a'), 0, 'the machine stayed on');
  const status = (await scene.autoscaler(bma)).status;
  t.match(status?.lastScaleDownFailure?.reason, /drain aborted/);
  t.match(status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'DeletionBlocked');
  const events = await scene.autoscalerEvents(bma);
  t.ok(events.some((e) => e.reason === 'DrainTimedOut' && e.message?.includes(a)), 'a DrainTimedOut event');
});

t.test('deleting with deletionPolicy Retain during a drain: the drain is undone before the autoscaler goes', async (t) => {
  const scene = await startScene(t, 'sdret', [
    { name: 'a', cpu: 8, memory: '32Gi', maxWatts: 500 },
    { name: 'b', cpu: 8, memory: '32Gi', maxWatts: 300 },
  ]);
  const bma = `sdret-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 0, maxMachines: 2, deletionPolicy: 'PowerOff', scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false, drainTimeoutSeconds: 600 } });
  scene.startManager();
  await bootAll(scene, bma, ['a', 'b']);
  const a = scene.names.a as string;
  await createDeployment(scene.ns, 'db', { replicas: 2, cpu: '1', nodeName: a });
  await createBudget(scene.ns, 'db', 'db', 2);
  await waitFor('2 db pods Ready', 60_000, async () => (await readyPods(scene.ns, 'db')).length === 2);
  // Deleting with PowerOff drains a; the budget holds its pods, so the drain lasts.
  await kubectl(['delete', 'bma', bma, '--wait=false']);
  await waitForPhase(scene, bma, a, 'Draining', 30_000);
  await waitFor('tainted', 10_000, async () => (await scene.core.readNode({ name: a })).spec?.taints?.some((x) => x.key === DRAINING_TAINT) ?? false);
  // The operator changes their mind: leave the machines as they are.
  const r = await kubectl(['patch', 'bma', bma, '--type', 'merge', '-p', JSON.stringify({ spec: { deletionPolicy: 'Retain' } })]);
  t.equal(r.code, 0, r.stderr);
  await waitFor('the autoscaler gone', 30_000, async () => (await kubectl(['get', 'bma', bma])).code !== 0);
  const node = await scene.core.readNode({ name: a });
  t.notOk(node.spec?.taints?.some((x) => x.key === DRAINING_TAINT), 'no draining taint is left on a machine nobody manages');
  t.equal((await readyPods(scene.ns, 'db')).length, 2, 'its pods still run');
  t.equal(scene.sim.powerEvents().filter(isOff).length, 0, 'nothing was powered off');
});

t.test('every blocker keeps its machine on, with its reason in status and in an event', async (t) => {
  const kinds = ['dnd', 'karp', 'ca', 'bare', 'disk', 'host', 'job', 'ks', 'pdb', 'pinned'] as const;
  const scene = await startScene(t, 'sdb', [...kinds.map((k) => ({ name: k, cpu: 4, memory: '16Gi' })), { name: 'spare', cpu: 32, memory: '128Gi' }]);
  const bma = `sdb-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 0, maxMachines: 20, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  await bootAll(scene, bma, [...kinds, 'spare']);
  const n = (k: string): string => scene.names[k] as string;
  const { core, apps } = await localCluster();
  const ann = await kubectl(['annotate', 'node', n('spare'), 'autoscaling.bamel.io/scale-down-disabled=true']);
  t.equal(ann.code, 0, ann.stderr);

  await createDeployment(scene.ns, 'dnd', { replicas: 1, cpu: '1', nodeName: n('dnd'), annotations: { 'autoscaling.bamel.io/do-not-disrupt': 'true' } });
  await createDeployment(scene.ns, 'karp', { replicas: 1, cpu: '1', nodeName: n('karp'), annotations: { 'karpenter.sh/do-not-disrupt': 'true' } });
  await createDeployment(scene.ns, 'ca', { replicas: 1, cpu: '1', nodeName: n('ca'), annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false' } });
  await core.createNamespacedPod({
    namespace: scene.ns,
    body: { metadata: { name: 'bare', labels: { app: 'bare' } }, spec: { nodeName: n('bare'), containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: '1' } } }] } },
  });
  await createDeployment(scene.ns, 'disk', { replicas: 1, cpu: '1', nodeName: n('disk'), volumes: [{ name: 'scratch', emptyDir: {} }] });
  await createDeployment(scene.ns, 'host', { replicas: 1, cpu: '1', nodeName: n('host'), volumes: [{ name: 'logs', hostPath: { path: '/var/log' } }] });
  const { kc } = await localCluster();
  const batch = kc.makeApiClient((await import('@kubernetes/client-node')).BatchV1Api);
  await batch.createNamespacedJob({
    namespace: scene.ns,
    body: {
      metadata: { name: 'job' },
      spec: {
        template: {
          // kwok completes Job pods after a second unless told how long they run.
          metadata: { labels: { app: 'job' }, annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '1h' } },
          spec: { nodeName: n('job'), restartPolicy: 'Never', containers: [{ name: 'c', image: 'registry.invalid/batch:1', resources: { requests: { cpu: '1' } } }] },
        },
      },
    },
  });
  const ksName = `bamel-${scene.ns.slice(-12)}`;
  await apps.createNamespacedDeployment({
    namespace: 'kube-system',
    body: {
      metadata: { name: ksName },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: ksName } },
        template: {
          metadata: { labels: { app: ksName } },
          spec: { nodeName: n('ks'), terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: '1' } } }] },
        },
      },
    },
  });
  t.teardown(async () => {
    await apps.deleteNamespacedDeployment({ name: ksName, namespace: 'kube-system' }).catch(() => undefined);
  });
  await createDeployment(scene.ns, 'pdb', { replicas: 1, cpu: '1', nodeName: n('pdb') });
  await createBudget(scene.ns, 'pdb', 'pdb', 1);
  await createDeployment(scene.ns, 'pinned', { replicas: 1, cpu: '1', nodeSelector: { 'kubernetes.io/hostname': n('pinned') } });

  await enableScaleDown(bma, { ...FAST, maxConcurrentDrains: 20 });
  const expected: Record<(typeof kinds)[number], RegExp> = {
    dnd: /annotated autoscaling.bamel.io\/do-not-disrupt: "true"/,
    karp: /annotated karpenter.sh\/do-not-disrupt: "true"/,
    ca: /annotated cluster-autoscaler.kubernetes.io\/safe-to-evict: "false"/,
    bare: /pod .*\/bare has no controller/,
    disk: /uses local storage \(emptyDir volume "scratch" on disk\)/,
    host: /uses local storage \(hostPath volume "logs" \(\/var\/log\)\)/,
    job: /runs a Job \(job\)/,
    ks: /is a kube-system pod that is not a DaemonSet pod and has no PodDisruptionBudget/,
    pdb: /PodDisruptionBudget .*\/pdb allows no disruption now/,
    pinned: /fits on no other Ready Node/,
  };
  const status = await waitFor('every blocker in status', 60_000, async () => {
    const s = (await scene.autoscaler(bma)).status;
    const ok = kinds.every((k) => s?.machines?.find((m) => m.name === n(k))?.blockers?.some((x) => expected[k].test(x)));
    const spare = s?.machines?.find((m) => m.name === n('spare'))?.blockers?.some((x) => /scale-down-disabled: "true"/.test(x));
    return ok && spare ? s : false;
  }, 500);
  for (const k of kinds) {
    const m = status.machines?.find((x) => x.name === n(k));
    t.equal(m?.phase, 'Ready', `${k} stays Ready`);
    t.ok(m?.blockers?.some((x) => expected[k].test(x)), `${k}: ${m?.blockers?.join(' | ')}`);
  }
  const events = await waitFor('a ScaleDownBlocked event per machine', 30_000, async () => {
    const ev = (await scene.autoscalerEvents(bma)).filter((e) => e.reason === 'ScaleDownBlocked');
    return [...kinds, 'spare'].every((k) => ev.some((e) => e.message?.startsWith(`${n(k)} stays on: `))) ? ev : false;
  });
  for (const k of kinds) t.ok(events.some((e) => e.message?.startsWith(`${n(k)} stays on: `) && expected[k].test(e.message)), `event for ${k}`);
  // Past the unneeded time, still nothing drained.
  await new Promise((r) => setTimeout(r, 4000));
  const after = (await scene.autoscaler(bma)).status;
  t.same(after?.machines?.filter((m) => m.phase !== 'Ready').map((m) => m.name), [], 'every machine is still Ready');
  t.equal(scene.sim.powerEvents().filter(isOff).length, 0, 'no power-off');
});

t.test('minMachines 2 with three idle machines: exactly one is powered off', async (t) => {
  const scene = await startScene(t, 'sdmin', [
    { name: 'a', cpu: 8, memory: '32Gi' },
    { name: 'b', cpu: 8, memory: '32Gi' },
    { name: 'c', cpu: 8, memory: '32Gi' },
  ]);
  const bma = `sdmin-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 2, maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  await bootAll(scene, bma, ['a', 'b', 'c']);
  await enableScaleDown(bma, { ...FAST, maxConcurrentDrains: 3 });
  await waitFor('one machine off', 60_000, async () => (await scene.autoscaler(bma)).status?.offMachines === 1);
  await new Promise((r) => setTimeout(r, 5000));
  const s = (await scene.autoscaler(bma)).status;
  t.equal(s?.offMachines, 1, 'one off');
  t.equal(s?.readyMachines, 2, 'two Ready');
  t.equal(scene.sim.powerEvents().filter(isOff).length, 1, `one power-off in all: ${JSON.stringify(scene.sim.powerEvents())}`);
  for (const m of s?.machines?.filter((x) => x.phase === 'Ready') ?? []) {
    t.ok(m.blockers?.some((x) => /minMachines 2 would not hold/.test(x)), `${m.name} says why it stays`);
  }
});

t.test('a constant load does not make scale-up and scale-down oscillate', async (t) => {
  const scene = await startScene(t, 'sdosc', [
    { name: 'a', cpu: 8, memory: '32Gi', maxWatts: 400 },
    { name: 'b', cpu: 8, memory: '32Gi', maxWatts: 300 },
    { name: 'c', cpu: 8, memory: '32Gi', maxWatts: 200 },
  ]);
  const bma = `sdosc-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { minMachines: 0, maxMachines: 3, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  scene.startManager();
  await bootAll(scene, bma, ['a', 'b']);
  await createDeployment(scene.ns, 'steady', { replicas: 6, cpu: '1', nodeSelector: scene.poolLabel });
  await waitFor('6 pods Ready', 60_000, async () => (await readyPods(scene.ns, 'steady')).length === 6);
  const before = scene.sim.powerEvents().length;
  await enableScaleDown(bma, { ...FAST, cooldownSeconds: 3 });
  // 24 s of the same load, with windows of 2-3 s: eight chances to flap.
  await new Promise((r) => setTimeout(r, 24_000));
  const ops = scene.sim.powerEvents().slice(before);
  const ons = ops.filter(isOn).length;
  const offs = ops.filter(isOff).length;
  t.equal(offs, 1, 'one machine powered off: its 3 pods fit on the other');
  t.equal(ons, 0, 'nothing powered on again');
  t.equal((await readyPods(scene.ns, 'steady')).length, 6, 'the load still runs');
  const s = (await scene.autoscaler(bma)).status;
  t.equal(s?.readyMachines, 1);
  const pending = (await scene.core.listNamespacedPod({ namespace: scene.ns })).items.filter((p) => !p.spec?.nodeName);
  t.same(pending.map((p) => p.metadata?.name), [], 'no pod of the load waits');
});
