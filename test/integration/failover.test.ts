import t, { type Test } from 'tap';
import { waitFor } from './helpers/cluster.js';
import { Replicas } from './helpers/replicas.js';
import { startScene, waitForPhase, type Scene } from './helpers/scene.js';

// Leader failures on the real control plane and the simulated BMCs, with the replicas kept
// at two as a Deployment would (a replica that exits is replaced):
// - the leader SIGKILLed right after it writes a power-on intent: the new leader settles
//   the intent from the BMC before doing anything, so each machine is powered on once;
// - the leader SIGSTOPped with a power-on in flight to a slow BMC and resumed after another
//   replica took over: it makes no BMC call afterwards and steps down (fencing), and the
//   new leader counts the intent as in flight until it lands or cannot any more;
// - SIGTERM with a power operation in flight: the replica stops within its grace period
//   and the next leader settles the intent.

const REPEATS = Number(process.env.BAMEL_FAILOVER_REPEATS ?? 20);
const TRIALS = Number(process.env.BAMEL_FENCE_TRIALS ?? 30);
// Short leases, and an operation timeout short enough that an intent that never reached its
// BMC is decided again 5.5 s after the new leader first saw it.
const LEASE = ['--leader-elect', '--lease-duration', '2', '--renew-deadline', '1.5', '--retry-period', '0.25', '--bmc-operation-timeout', '5', '--settle-grace', '0.5'];

const pad = (i: number): string => String(i).padStart(2, '0');

function machinesOf(n: number): { name: string; cpu: number; memory: string; maxWatts: number; bootSeconds: number }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `m${pad(i)}`, cpu: 8, memory: '32Gi', maxWatts: 100 + i, bootSeconds: 1 }));
}

async function intentFor(scene: Scene, bma: string, what: string): Promise<{ machine: string; holder: string; id: string }> {
  return waitFor(`intent for ${what}`, 30_000, async () => {
    const a = await scene.autoscaler(bma);
    const m = a.status?.machines?.find((x) => x.phase === 'PoweringOn' && x.operation);
    return m?.operation ? { machine: m.name, holder: m.operation.holder ?? '', id: m.operation.id } : false;
  }, 10);
}

async function bound(scene: Scene, pod: string, machine: string): Promise<void> {
  await waitFor(`pod ${pod} bound to ${machine}`, 60_000, async () => {
    const p = await scene.core.readNamespacedPod({ name: pod, namespace: scene.ns });
    return p.spec?.nodeName === machine;
  });
}

/** Kills the writer of each power-on intent at once, `repeats` times: each machine powered on once. */
async function killTrack(t: Test, repeats: number): Promise<void> {
  const scene = await startScene(t, 'fo', machinesOf(repeats));
  const bma = `fo-${scene.ns.slice(-12)}`;
  await scene.createAutoscaler(bma, { maxMachines: repeats, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 2 }, scaleDown: { enabled: false } });
  const replicas = new Replicas((id) => scene.startManager([...LEASE, '--identity', id]), 2);
  t.teardown(() => replicas.stop());
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 90_000);

  for (let i = 0; i < repeats; i++) {
    const machine = scene.names[`m${pad(i)}`] as string;
    await scene.createPod(`p${i}`, { cpu: '6' });
    // Watch for the intent, then kill its writer at once.
    const intent = await intentFor(scene, bma, `pod p${i}`);
    t.equal(intent.machine, machine, `kill round ${i}: the cheapest free machine was chosen`);
    t.ok(replicas.get(intent.holder), `kill round ${i}: the intent names its writer (${intent.holder})`);
    await replicas.kill(intent.holder);
    await waitForPhase(scene, bma, machine, 'Ready', 60_000);
    await bound(scene, `p${i}`, machine);
    t.equal(scene.sim.powerEvents(machine).filter((e) => e.action === 'on').length, 1, `kill round ${i}: ${machine} powered on exactly once`);
  }
  const ons = scene.sim.powerEvents().filter((e) => e.action === 'on');
  t.equal(ons.length, repeats, `${repeats} power-on requests in all, one per machine`);
  t.equal(new Set(ons.map((e) => e.machine)).size, repeats);
}

/** One leader and its replicas over their own machines: `trials` pauses, one after the other. */
async function fencingTrack(t: Test, track: string, trials: number): Promise<{ ons: number; calls: number; refused: number; steppedDown: number }> {
  const scene = await startScene(t, `fn${track}`, machinesOf(trials));
  const bma = `fn${track}-${scene.ns.slice(-12)}`;
  // Every BMC answers (and carries out) each request 0.4 s after it arrived.
  for (const m of Object.values(scene.names)) await scene.sim.setFaults(m, { slowMs: 400 });
  await scene.createAutoscaler(bma, { maxMachines: trials, scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: trials }, scaleDown: { enabled: false } });
  const replicas = new Replicas((id) => scene.startManager([...LEASE, '--identity', id]), 2, `fence${track}`);
  t.teardown(() => replicas.stop());
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 120_000);
  const holder = async (): Promise<string> => {
    const leases = (await scene.custom.listNamespacedCustomObject({ group: 'coordination.k8s.io', version: 'v1', namespace: scene.ns, plural: 'leases' })) as { items?: { spec?: { holderIdentity?: string } }[] };
    return leases.items?.[0]?.spec?.holderIdentity ?? '';
  };

  let calls = 0;
  let refused = 0;
  let steppedDown = 0;
  for (let i = 0; i < trials; i++) {
    const round = `track ${track} round ${i}`;
    await scene.createPod(`p${i}`, { cpu: '6' });
    const intent = await intentFor(scene, bma, `pod p${i}`);
    const paused = replicas.get(intent.holder);
    if (!paused) throw new Error(`${round}: the intent's writer ${intent.holder} is not running`);
    // Half the trials pause at once (the BMC call may not have gone out yet), half a moment
    // later (the power-on is on its way to the slow BMC, or waiting for its answer).
    if (i % 2 === 1) await new Promise((r) => setTimeout(r, 150));
    replicas.pause(intent.holder);
    await waitFor(`${round}: another replica holds the lease`, 30_000, async () => {
      const h = await holder();
      return h !== '' && h !== intent.holder;
    }, 100);
    const resumedAt = Date.now();
    replicas.resume(intent.holder);
    const code = await Promise.race([paused.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000))]);
    t.not(code, 'running', `${round}: the resumed replica stepped down and exited`);
    if (code !== 'running') steppedDown++;
    const after = paused.logs.filter((l) => Number(l.time) >= resumedAt);
    const made = after.filter((l) => ['power operation sent to the BMC', 'power operation done', 'power command accepted'].includes(String(l.msg)));
    calls += made.length;
    refused += after.filter((l) => String(l.msg).startsWith('BMC call refused')).length;
    t.same(made.map((l) => l.msg), [], `${round}: no BMC call from ${intent.holder} after it resumed`);
    await waitForPhase(scene, bma, intent.machine, 'Ready', 60_000);
    await bound(scene, `p${i}`, intent.machine);
    const ons = scene.sim.powerEvents().filter((e) => e.action === 'on' && e.result !== 'refused');
    t.equal(ons.length, i + 1, `${round}: ${i + 1} machine(s) powered on for ${i + 1} pod(s)`);
  }
  // Nothing lands late: the count holds after every operation timeout has passed.
  await new Promise((r) => setTimeout(r, 5000));
  const ons = scene.sim.powerEvents().filter((e) => e.action === 'on' && e.result !== 'refused');
  t.equal(new Set(ons.map((e) => e.machine)).size, trials, `track ${track}: ${trials} machines powered on for ${trials} pods, none twice`);
  t.equal(ons.length, trials, `track ${track}: ${trials} power-ons in all`);
  return { ons: ons.length, calls, refused, steppedDown };
}

t.test(`leader failures side by side: killed right after its intent (${REPEATS} times), paused with a power-on in flight and resumed after the takeover (${TRIALS} times)`, async (t) => {
  // Three independent leaders (their own machines, BMCs and lease) take the rounds at once.
  const half = Math.ceil(TRIALS / 2);
  const [, ...results] = await Promise.all([killTrack(t, REPEATS), fencingTrack(t, 'a', half), fencingTrack(t, 'b', TRIALS - half)]);
  const sum = (k: 'ons' | 'calls' | 'refused' | 'steppedDown'): number => results.reduce((n, r) => n + r[k], 0);
  t.equal(sum('ons'), TRIALS, `fencing: ${TRIALS} machines powered on for ${TRIALS} pods`);
  t.equal(sum('calls'), 0, 'fencing: no BMC call from a resumed replica in any trial');
  t.equal(sum('steppedDown'), TRIALS, 'fencing: every resumed replica stepped down');
  t.comment(`fencing: ${TRIALS} trials, ${sum('ons')} power-ons, ${sum('calls')} BMC calls after resume, ${sum('refused')} refused by the fence`);
});

t.test('SIGTERM with a power operation in flight: the replica stops in its grace period, the next leader settles the intent', async (t) => {
  const scene = await startScene(t, 'term', machinesOf(2));
  const bma = `term-${scene.ns.slice(-12)}`;
  for (const m of Object.values(scene.names)) await scene.sim.setFaults(m, { slowMs: 2000 });
  await scene.createAutoscaler(bma, { maxMachines: 2, scaleUp: { cooldownSeconds: 0 }, scaleDown: { enabled: false } });
  const replicas = new Replicas((id) => scene.startManager([...LEASE, '--identity', id]), 2, 'term');
  t.teardown(() => replicas.stop());
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off', 90_000);
  await scene.createPod('p0', { cpu: '6' });
  const intent = await intentFor(scene, bma, 'pod p0');
  const leader = replicas.get(intent.holder);
  if (!leader) throw new Error(`the intent's writer ${intent.holder} is not running`);
  await leader.waitForLog((l) => l.msg === 'power operation sent to the BMC', 10_000);
  const started = Date.now();
  const code = await leader.stop();
  const ms = Date.now() - started;
  t.ok(ms < 15_000, `stopped in ${ms} ms, well inside a 30 s grace period`);
  t.equal(code, 0, 'a clean exit');
  await waitForPhase(scene, bma, intent.machine, 'Ready', 60_000);
  await bound(scene, 'p0', intent.machine);
  await new Promise((r) => setTimeout(r, 5000));
  const ons = scene.sim.powerEvents().filter((e) => e.action === 'on' && e.result !== 'refused');
  t.equal(ons.length, 1, 'one machine powered on, once');
});
