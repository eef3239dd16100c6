import t from 'tap';
import { decideScaleUp, type PendingPod, type ScaleUpCandidate, type ScaleUpInput } from '../../controller/decide.js';
import { scoreCandidates } from '../../controller/scoring.js';

const Gi = 1024n ** 3n * 1000n;
const cpu = (n: number): bigint => BigInt(n) * 1000n;

function machine(name: string, cores: number, memGi: number, extra: Partial<ScaleUpCandidate> = {}): ScaleUpCandidate {
  return { name, capacity: { cpu: cpu(cores), memory: BigInt(memGi) * Gi, pods: 110_000n }, powerCyclesToday: 0, ...extra };
}

function pod(key: string, cores: number, memGi: number): PendingPod {
  return { key, uid: key, requests: { cpu: cpu(cores), memory: BigInt(memGi) * Gi, pods: 1000n } };
}

function input(over: Partial<ScaleUpInput>): ScaleUpInput {
  return {
    pending: [],
    absorbing: [],
    candidates: [],
    feasible: () => true,
    weights: { usefulWeight: 1, nonUsefulWeight: 0.25 },
    pressured: new Set(),
    budget: { machines: 10 },
    belowMinimum: 0,
    ...over,
  };
}

t.test('scoring picks the machine closest to the ideal one', async (t) => {
  const w = { usefulWeight: 1, nonUsefulWeight: 0.25 };
  // An 8-core pod: the 16-core machine beats 32 and 64 cores.
  const cpuOnly = scoreCandidates({ cpu: cpu(8) }, [machine('big', 64, 256), machine('gpu', 16, 64), machine('mid', 32, 128)], w);
  t.same(cpuOnly.ranked.map((r) => r.name), ['gpu', 'mid', 'big']);
  t.same([...cpuOnly.useful], ['cpu']);

  // Case 1: a memory-heavy deficit (2 cores, 200Gi) takes the memory-closest machine even though it has the most cores.
  const memHeavy = [machine('cpu-box', 64, 64), machine('balanced', 32, 128), machine('mem-box', 16, 256)];
  const r1 = scoreCandidates({ cpu: cpu(2), memory: 200n * Gi }, memHeavy, w);
  t.equal(r1.ranked[0]?.name, 'mem-box', 'memory-heavy: mem-box');
  t.same([...r1.useful], ['memory'], 'memory is the useful category');

  // Case 2: a cpu-heavy deficit (60 cores, 8Gi) takes the cpu box.
  const r2 = scoreCandidates({ cpu: cpu(60), memory: 8n * Gi }, memHeavy, w);
  t.equal(r2.ranked[0]?.name, 'cpu-box', 'cpu-heavy: cpu-box');

  // Case 3: a balanced deficit (30 cores, 120Gi) takes the balanced machine.
  const r3 = scoreCandidates({ cpu: cpu(30), memory: 120n * Gi }, memHeavy, w);
  t.equal(r3.ranked[0]?.name, 'balanced', 'balanced: balanced');
  t.same([...r3.useful].sort(), ['cpu', 'memory']);
});

t.test('ties go to the lower power cost, then fewer power cycles today, then the name', async (t) => {
  const w = { usefulWeight: 1, nonUsefulWeight: 0.25 };
  const same = (name: string, extra: Partial<ScaleUpCandidate>): ScaleUpCandidate => machine(name, 16, 64, extra);
  t.equal(scoreCandidates({ cpu: cpu(4) }, [same('b', { powerCost: 300 }), same('a', { powerCost: 400 })], w).ranked[0]?.name, 'b', 'cheaper');
  t.equal(scoreCandidates({ cpu: cpu(4) }, [same('a', {}), same('b', { powerCost: 400 })], w).ranked[0]?.name, 'b', 'unknown cost last');
  t.equal(
    scoreCandidates({ cpu: cpu(4) }, [same('a', { powerCost: 300, powerCyclesToday: 3 }), same('b', { powerCost: 300, powerCyclesToday: 1 })], w).ranked[0]?.name,
    'b',
    'fewer cycles',
  );
  t.equal(scoreCandidates({ cpu: cpu(4) }, [same('b', {}), same('a', {})], w).ranked[0]?.name, 'a', 'name');
});

t.test('the worked example of the README', async (t) => {
  // Deficit 8 cores / 16Gi; machines gpu 16c/64Gi, a 32c/128Gi, b 64c/256Gi.
  const r = scoreCandidates({ cpu: cpu(8), memory: 16n * Gi }, [machine('gpu', 16, 64), machine('a', 32, 128), machine('b', 64, 256)], {
    usefulWeight: 1,
    nonUsefulWeight: 0.25,
  });
  const byName = Object.fromEntries(r.ranked.map((x) => [x.name, Math.round(x.score * 1000) / 1000]));
  t.same(byName, { gpu: 0.313, a: 0.813, b: 1.813 });
});

t.test('20 pending pods: exactly as many machines as needed, no overshoot', async (t) => {
  const pending = Array.from({ length: 20 }, (_, i) => pod(`ns/p${String(i).padStart(2, '0')}`, 4, 8));
  const candidates = Array.from({ length: 10 }, (_, i) => machine(`m${i}`, 16, 64));
  const d = decideScaleUp(input({ pending, candidates }));
  t.equal(d.powerOn.length, 5, '20 × 4 cores on 16-core machines: 5 machines');
  t.equal(d.powerOn.flatMap((c) => c.pods).length, 20, 'every pod placed once');
  t.same(d.waiting, []);

  // The same pods again while those 5 are joining: nothing new.
  const absorbing = d.powerOn.map((c) => ({ name: c.machine, free: { cpu: cpu(16), memory: 64n * Gi, pods: 110_000n } }));
  const again = decideScaleUp(input({ pending, candidates: candidates.slice(5), absorbing }));
  t.equal(again.powerOn.length, 0, 'pods that joining machines will take do not count again');
  t.equal(again.absorbed.length, 20);
});

t.test('limits: budget, demand blocked, minMachines, infeasible pods', async (t) => {
  const pending = Array.from({ length: 6 }, (_, i) => pod(`ns/p${i}`, 16, 8));
  const candidates = Array.from({ length: 6 }, (_, i) => machine(`m${i}`, 16, 64));
  const limited = decideScaleUp(input({ pending, candidates, budget: { machines: 2, reason: 'maxConcurrentPowerOns (2)' } }));
  t.equal(limited.powerOn.length, 2);
  t.equal(limited.waiting.length, 4);
  t.equal(limited.limitedBy, 'maxConcurrentPowerOns (2)');

  const cooled = decideScaleUp(input({ pending, candidates, demandBlocked: 'scale-up cooldown until later', belowMinimum: 1 }));
  t.same(cooled.powerOn.map((c) => c.reason), ['MinMachines'], 'minMachines is not held back by the cooldown');
  t.equal(cooled.limitedBy, 'scale-up cooldown until later');

  const nothing = decideScaleUp(input({ pending: [pod('ns/huge', 128, 8)], candidates }));
  t.equal(nothing.powerOn.length, 0);
  t.same(nothing.unplaceable.map((p) => p.key), ['ns/huge']);

  const tainted = decideScaleUp(
    input({ pending: [pod('ns/plain', 1, 1)], candidates: [machine('gpu', 16, 64), machine('cpu', 64, 256)], feasible: (_p, m) => m !== 'gpu' }),
  );
  t.same(tainted.powerOn.map((c) => c.machine), ['cpu'], 'a pod that does not tolerate the gpu machine never powers it on');

  const floor = decideScaleUp(input({ candidates: [machine('big', 64, 256, { powerCost: 600 }), machine('small', 8, 32, { powerCost: 100 })], belowMinimum: 1 }));
  t.same(floor.powerOn.map((c) => c.machine), ['small'], 'minMachines takes the smallest machine');
});

t.test('pressure without pending pods powers on one machine for the deficit', async (t) => {
  const d = decideScaleUp(
    input({ candidates: [machine('a', 8, 32), machine('b', 32, 128)], pressureDeficit: { cpu: cpu(30) }, pressured: new Set(['cpu']) }),
  );
  t.same(d.powerOn.map((c) => [c.machine, c.reason]), [['b', 'Pressure']]);
});
