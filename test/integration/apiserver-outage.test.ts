import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot, waitFor } from './helpers/cluster.js';
import type { RunningManager } from './helpers/manager.js';
import { Replicas } from './helpers/replicas.js';
import { startScene, waitForPhase } from './helpers/scene.js';

// kube-apiserver stopped for 60 s under two running replicas, then started again. During
// the outage /healthz tells the truth (the processes are alive and no reconcile is stuck)
// and /readyz does not claim fresh caches; replicas that lose their lease exit and are
// replaced as a Deployment would. After it, a pod made pending has its machine powered on
// within 30 s, once.

const execFileP = promisify(execFile);
const OUTAGE_MS = Number(process.env.BAMEL_OUTAGE_SECONDS ?? 60) * 1000;
const cluster = (...args: string[]): Promise<unknown> => execFileP(join(repoRoot, 'hack', 'cluster.sh'), args, { cwd: repoRoot, timeout: 300_000 });

async function probe(m: RunningManager, path: '/healthz' | '/readyz'): Promise<number | 'down'> {
  const started = m.logs.find((l) => l.msg === 'manager started');
  const health = (started?.addresses as string[] | undefined)?.[1];
  if (!health) return 'down';
  try {
    return (await fetch(`http://${health}${path}`, { signal: AbortSignal.timeout(3000) })).status;
  } catch {
    return 'down';
  }
}

t.test('kube-apiserver stopped for a minute, then started: health tells the truth, the replicas recover and act once', async (t) => {
  const scene = await startScene(t, 'outage', [
    { name: 'm0', cpu: 8, memory: '32Gi', maxWatts: 100, bootSeconds: 1 },
    { name: 'm1', cpu: 8, memory: '32Gi', maxWatts: 200, bootSeconds: 1 },
  ]);
  const bma = `outage-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: 2, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  const flags = ['--leader-elect', '--lease-duration', '4', '--renew-deadline', '3', '--retry-period', '0.5', '--watch-stale-after', '5', '--bmc-operation-timeout', '10', '--settle-grace', '2'];
  const replicas = new Replicas((id) => scene.startManager([...flags, '--identity', id]), 2, 'outage');
  t.teardown(() => replicas.stop());
  t.teardown(() => cluster('up'));
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 90_000);
  for (const id of replicas.identities()) {
    const m = replicas.get(id) as RunningManager;
    await waitFor(`${id} ready`, 30_000, async () => (await probe(m, '/readyz')) === 200);
  }

  await cluster('stop', 'kube-apiserver');
  const outageEnd = Date.now() + OUTAGE_MS;
  let healthy = 0;
  let unhealthy = 0;
  let notReady = 0;
  let readyDuringOutage = 0;
  const graceEnd = Date.now() + 10_000;
  while (Date.now() < outageEnd) {
    for (const id of replicas.identities()) {
      const m = replicas.get(id);
      if (!m) continue;
      const h = await probe(m, '/healthz');
      const r = await probe(m, '/readyz');
      if (h === 200) healthy++;
      else if (h !== 'down') unhealthy++;
      if (r === 503) notReady++;
      // Watches are allowed 5 s (--watch-stale-after) before readiness goes.
      if (r === 200 && Date.now() > graceEnd) readyDuringOutage++;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  t.ok(healthy > 0, `/healthz answered 200 while the processes were alive and not stuck (${healthy} times)`);
  t.equal(unhealthy, 0, 'and never said unhealthy: no reconcile was stuck (every API call has a deadline)');
  t.ok(notReady > 0, `/readyz said not ready during the outage (${notReady} times)`);
  t.equal(readyDuringOutage, 0, '/readyz never claimed fresh caches once the watches had been down 5 s');
  const exitedDuring = replicas.exits.size;
  t.comment(`${exitedDuring} replica(s) exited during the outage and were replaced`);

  await cluster('up');
  await waitFor('a ready replica', 90_000, async () => {
    for (const id of replicas.identities()) {
      const m = replicas.get(id);
      if (m && (await probe(m, '/readyz')) === 200) return true;
    }
    return false;
  });
  const before = scene.sim.powerEvents().length;
  await scene.createPod('after', { cpu: '6' });
  // kube-scheduler recovers from the outage at its own pace; the pod is pending once it says so.
  const pendingAt = await waitFor('pod "after" marked Unschedulable', 180_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: 'after', namespace: scene.ns });
    const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
    return c?.status === 'False' && c.reason === 'Unschedulable' ? Date.now() : false;
  }, 100);
  await scene.sim.waitForEvent((e) => e.event === 'power' && e.action === 'on' && e.result !== 'refused' && scene.sim.powerEvents().indexOf(e) >= before, 30_000);
  const ms = Date.now() - pendingAt;
  t.ok(ms <= 30_000, `the machine was powered on ${ms} ms after the pod was pending`);
  await new Promise((r) => setTimeout(r, 5000));
  const ons = scene.sim.powerEvents().slice(before).filter((e) => e.action === 'on' && e.result !== 'refused');
  t.equal(ons.length, 1, 'one power-on, no duplicate');
});
