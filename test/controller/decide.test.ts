import t from 'tap';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { decideScaleUp, type PendingPod, type PowerOnChoice, type ScaleUpCandidate, type ScaleUpDecision, type ScaleUpInput } from '../../controller/decide.js';
import { PodIndex } from '../../controller/observe.js';
import { CandidateTable, scoreCandidates, type ResourceVector } from '../../controller/scoring.js';

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
  const cheap = decideScaleUp(input({ candidates: [machine('small-hungry', 8, 32, { powerCost: 500 }), machine('big-frugal', 32, 128, { powerCost: 200 })], belowMinimum: 1 }));
  t.same(cheap.powerOn.map((c) => c.machine), ['big-frugal'], 'minMachines keeps the lowest power draw on, before size');
});

t.test('pressure without pending pods powers on one machine for the deficit', async (t) => {
  const d = decideScaleUp(
    input({ candidates: [machine('a', 8, 32), machine('b', 32, 128)], pressureDeficit: { cpu: cpu(30) }, pressured: new Set(['cpu']) }),
  );
  t.same(d.powerOn.map((c) => [c.machine, c.reason]), [['b', 'Pressure']]);
});

// ---------------------------------------------------------------------------------------
// The fast decision against the straightforward one, on random clusters.

/**
 * The scale-up decision as first written: every remaining pod rescanned for every candidate
 * at each machine chosen, and a full sort of the candidates. Too slow at 10,000 machines,
 * but plainly right; decideScaleUp must decide exactly as it does.
 */
function referenceDecideScaleUp(input: ScaleUpInput): ScaleUpDecision {
  const fitsIn = (req: ResourceVector, free: ResourceVector): boolean => Object.entries(req).every(([r, v]) => v <= 0n || (free[r] ?? 0n) >= v);
  const subtract = (free: ResourceVector, req: ResourceVector): void => {
    for (const [r, v] of Object.entries(req)) free[r] = (free[r] ?? 0n) - v;
  };
  const scale: ResourceVector = {};
  for (const m of [...input.candidates, ...input.absorbing]) {
    for (const [r, v] of Object.entries('capacity' in m ? m.capacity : m.free)) if (v > (scale[r] ?? 0n)) scale[r] = v;
  }
  const size = (p: PendingPod): number => ['cpu', 'memory'].reduce((s, c) => s + (scale[c] ? Number(p.requests[c] ?? 0n) / Number(scale[c]) : 0), 0);
  const sortLargestFirst = (pods: PendingPod[]): PendingPod[] => [...pods].sort((a, b) => size(b) - size(a) || (a.key < b.key ? -1 : 1));

  const absorbed: PendingPod[] = [];
  let remaining: PendingPod[] = [];
  const absorbing = input.absorbing.map((m) => ({ name: m.name, free: { ...m.free } }));
  for (const pod of sortLargestFirst(input.pending)) {
    const target = absorbing.find((m) => fitsIn(pod.requests, m.free) && input.feasible(pod, m.name));
    if (target) {
      subtract(target.free, pod.requests);
      absorbed.push(pod);
    } else remaining.push(pod);
  }
  const canHost = (p: PendingPod, c: ScaleUpCandidate): boolean => fitsIn(p.requests, c.capacity) && input.feasible(p, c.name);
  const unplaceable = remaining.filter((p) => !input.candidates.some((c) => canHost(p, c)));
  remaining = remaining.filter((p) => !unplaceable.includes(p));

  const powerOn: PowerOnChoice[] = [];
  let budgetMachines = input.budget.machines;
  let budgetCpu = input.budget.cpu;
  let budgetMemory = input.budget.memory;
  let limitedBy: string | undefined;
  let candidates = [...input.candidates];
  const withinCaps = (c: ScaleUpCandidate): boolean =>
    (budgetCpu === undefined || (c.capacity.cpu ?? 0n) <= budgetCpu) && (budgetMemory === undefined || (c.capacity.memory ?? 0n) <= budgetMemory);
  const take = (c: ScaleUpCandidate): void => {
    budgetMachines--;
    if (budgetCpu !== undefined) budgetCpu -= c.capacity.cpu ?? 0n;
    if (budgetMemory !== undefined) budgetMemory -= c.capacity.memory ?? 0n;
    candidates = candidates.filter((x) => x.name !== c.name);
  };
  if (input.demandBlocked && remaining.length > 0) limitedBy = input.demandBlocked;
  while (remaining.length > 0 && !input.demandBlocked) {
    if (budgetMachines <= 0) {
      limitedBy = input.budget.reason ?? 'no more machines may be powered on now';
      break;
    }
    const deficit: ResourceVector = {};
    for (const p of remaining) for (const [r, v] of Object.entries(p.requests)) deficit[r] = (deficit[r] ?? 0n) + v;
    const usable = candidates.filter((c) => withinCaps(c) && remaining.some((p) => canHost(p, c)));
    if (usable.length === 0) {
      limitedBy = candidates.length > 0 ? 'cluster-wide cpu or memory cap reached' : 'no powered-off machine left that can host the remaining pods';
      break;
    }
    const { ranked, useful } = scoreCandidates(deficit, usable, input.weights, input.pressured);
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    const free: ResourceVector = { ...chosen.capacity };
    const placed: PendingPod[] = [];
    for (const pod of sortLargestFirst(remaining)) {
      if (canHost(pod, chosen) && fitsIn(pod.requests, free)) {
        subtract(free, pod.requests);
        placed.push(pod);
      }
    }
    take(chosen);
    if (placed.length === 0) continue;
    remaining = remaining.filter((p) => !placed.includes(p));
    powerOn.push({
      machine: chosen.name,
      reason: 'PendingPods',
      pods: placed,
      score: best.score,
      detail: `closest to the ideal machine for ${placed.length} pending pod(s) (score ${best.score.toFixed(3)}, useful: ${[...useful].join(', ') || 'none'})`,
    });
  }
  const waiting = remaining;
  if (input.pending.length === 0 && input.pressureDeficit && input.demandBlocked) {
    limitedBy ??= input.demandBlocked;
  } else if (input.pending.length === 0 && input.pressureDeficit && powerOn.length === 0 && budgetMachines > 0) {
    const usable = candidates.filter(withinCaps);
    const { ranked, useful } = scoreCandidates(input.pressureDeficit, usable, input.weights, input.pressured);
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (best && chosen) {
      take(chosen);
      powerOn.push({ machine: chosen.name, reason: 'Pressure', pods: [], score: best.score, detail: `closest to the ideal machine for the pressure in ${[...useful].join(', ')} (score ${best.score.toFixed(3)})` });
    }
  } else if (input.pending.length === 0 && input.pressureDeficit && budgetMachines <= 0) {
    limitedBy ??= input.budget.reason ?? 'no more machines may be powered on now';
  }
  let below = input.belowMinimum - powerOn.length;
  while (below > 0 && budgetMachines > 0) {
    const usable = candidates.filter(withinCaps);
    const cost = (name: string): number => usable.find((c) => c.name === name)?.powerCost ?? Number.POSITIVE_INFINITY;
    const ranked = scoreCandidates({}, usable, input.weights, new Set()).ranked;
    ranked.sort((a, b) => (cost(a.name) === cost(b.name) ? 0 : cost(a.name) < cost(b.name) ? -1 : 1));
    const best = ranked[0];
    const chosen = usable.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    take(chosen);
    powerOn.push({ machine: chosen.name, reason: 'MinMachines', pods: [], score: best.score, detail: 'to reach minMachines' });
    below--;
  }
  if (below > 0 && budgetMachines <= 0) limitedBy ??= input.budget.reason ?? 'no more machines may be powered on now';
  return { powerOn, absorbed, unplaceable, waiting, ...(limitedBy ? { limitedBy } : {}) };
}

/** mulberry32: the same clusters on every run, so a failure names a seed that reproduces it. */
function prng(seed: number): { next: () => number; int: (n: number) => number; chance: (p: number) => boolean; pick: <T>(xs: readonly T[]) => T } {
  let s = seed | 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, chance: (p) => next() < p, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T };
}

const GPU = 'example.com/gpu';

interface RandomCluster {
  input: ScaleUpInput;
  /** The workload of each pod, by uid: pods of a workload get the same feasibility everywhere. */
  workloadOf: Map<string, number>;
}

/**
 * A small cluster with what makes the decision interesting: machines of a few shapes (exact
 * score ties), workloads whose replicas are identical, feasibility per workload and machine,
 * budgets and caps that run out, machines on their way, pressure and minMachines.
 */
function randomCluster(seed: number): RandomCluster {
  const r = prng(seed);
  const shapes = Array.from({ length: 1 + r.int(4) }, () => {
    const capacity: ResourceVector = { cpu: cpu(r.pick([4, 8, 16, 32, 64])), memory: BigInt(r.pick([16, 32, 64, 128, 256])) * Gi, pods: BigInt(r.pick([4, 8, 110])) * 1000n };
    if (r.chance(0.3)) capacity[GPU] = BigInt(r.pick([1, 2, 4])) * 1000n;
    return { capacity, powerCost: r.chance(0.7) ? r.pick([100, 300, 450, 900]) : undefined };
  });
  const machineCount = r.int(25);
  const names = Array.from({ length: machineCount }, (_, i) => `m${String(i).padStart(2, '0')}`).sort(() => r.next() - 0.5);
  const candidates: ScaleUpCandidate[] = names.map((name) => {
    const shape = r.pick(shapes);
    return { name, capacity: { ...shape.capacity }, powerCyclesToday: r.int(3), ...(shape.powerCost !== undefined ? { powerCost: shape.powerCost } : {}) };
  });
  const absorbing = Array.from({ length: r.int(4) }, (_, i) => ({
    name: `joining-${i}`,
    free: { cpu: cpu(r.pick([0, 2, 8, 16])), memory: BigInt(r.pick([0, 8, 32, 64])) * Gi, pods: 110_000n },
  }));
  const workloads = Array.from({ length: 1 + r.int(8) }, () => {
    const requests: ResourceVector = { cpu: BigInt(r.pick([100, 500, 1000, 2000, 4000, 12_000, 40_000])), memory: BigInt(r.pick([1, 2, 8, 24, 100, 300])) * Gi, pods: 1000n };
    if (r.chance(0.2)) requests[GPU] = BigInt(r.pick([1, 2, 8])) * 1000n;
    if (r.chance(0.1)) requests['ephemeral-storage'] = 0n;
    const hostP = r.pick([0, 0.3, 0.8, 1]);
    const hosts = new Set([...names, ...absorbing.map((a) => a.name)].filter(() => r.chance(hostP)));
    return { requests, hosts, grouped: r.chance(0.8) };
  });
  const workloadOf = new Map<string, number>();
  const pending: PendingPod[] = Array.from({ length: r.int(40) }, (_, i) => {
    const w = r.int(workloads.length);
    const workload = workloads[w] as (typeof workloads)[number];
    const uid = `uid-${i}`;
    workloadOf.set(uid, w);
    // Some keys repeat across namespaces' sort order; sizes tie within a workload.
    return { key: `ns${r.int(3)}/pod-${String(r.int(1000)).padStart(3, '0')}-${i}`, uid, requests: { ...workload.requests }, ...(workload.grouped ? { equivalenceClass: `w${w}` } : {}) };
  });
  const pressure = pending.length === 0 && r.chance(0.5);
  const input: ScaleUpInput = {
    pending,
    absorbing,
    candidates,
    feasible: (p, m) => workloads[workloadOf.get(p.uid) ?? -1]?.hosts.has(m) ?? false,
    weights: r.pick([{ usefulWeight: 1, nonUsefulWeight: 0.25 }, { usefulWeight: 2, nonUsefulWeight: 1 }, { usefulWeight: 1, nonUsefulWeight: 1 }]),
    pressured: new Set(['cpu', 'memory', 'ephemeral-storage'].filter(() => r.chance(0.2))),
    budget: {
      machines: r.int(10),
      ...(r.chance(0.2) ? { cpu: cpu(r.pick([16, 64, 200])) } : {}),
      ...(r.chance(0.2) ? { memory: BigInt(r.pick([64, 512])) * Gi } : {}),
      ...(r.chance(0.5) ? { reason: 'maxConcurrentPowerOns (3) machines already powering on or joining' } : {}),
    },
    ...(pressure ? { pressureDeficit: { cpu: cpu(r.pick([4, 30, 100])), memory: BigInt(r.pick([0, 64])) * Gi } } : {}),
    belowMinimum: r.chance(0.3) ? r.int(4) : 0,
    ...(r.chance(0.1) ? { demandBlocked: 'scale-up cooldown until later' } : {}),
  };
  return { input, workloadOf };
}

/** The same pods without their classes (and the decision about them, by pod key). */
const classless = (pods: PendingPod[]): PendingPod[] => pods.map(({ equivalenceClass: _class, ...pod }) => pod);
const byKey = (d: ScaleUpDecision): unknown => ({
  ...d,
  powerOn: d.powerOn.map((c) => ({ ...c, pods: c.pods.map((p) => p.key) })),
  absorbed: d.absorbed.map((p) => p.key),
  unplaceable: d.unplaceable.map((p) => p.key),
  waiting: d.waiting.map((p) => p.key),
});

t.test('on random clusters the decision is the straightforward one, with and without classes', async (t) => {
  let decisions = 0;
  let powerOns = 0;
  for (let seed = 1; seed <= 600; seed++) {
    const { input } = randomCluster(seed);
    const expected = referenceDecideScaleUp(input);
    if (!t.strictSame(decideScaleUp(input), expected, `seed ${seed}: grouped`)) break;
    if (!t.strictSame(byKey(decideScaleUp({ ...input, pending: classless(input.pending) })), byKey(expected), `seed ${seed}: ungrouped`)) break;
    decisions++;
    powerOns += expected.powerOn.length;
  }
  t.ok(powerOns > 300, `the clusters power machines on (${powerOns} in ${decisions} decisions)`);
});

t.test('feasibility is asked about per class, not per pod', async (t) => {
  // 5,000 replicas of 10 workloads against 300 machines of 3 shapes, a third of them tainted.
  const r = prng(7);
  const candidates = Array.from({ length: 300 }, (_, i) => machine(`m${String(i).padStart(3, '0')}`, [16, 32, 64][i % 3] as number, [64, 128, 256][i % 3] as number));
  const tainted = new Set(candidates.filter((_, i) => i % 3 === 0).map((c) => c.name));
  const workloads = Array.from({ length: 10 }, (_, w) => ({ cores: r.pick([1, 2, 4]), memGi: r.pick([1, 4, 8]), tolerates: w < 2 }));
  const pending = Array.from({ length: 5000 }, (_, i) => {
    const w = i % workloads.length;
    const spec = workloads[w] as (typeof workloads)[number];
    return { ...pod(`ns/w${w}-${String(i).padStart(5, '0')}`, spec.cores, spec.memGi), equivalenceClass: `w${w}` };
  });
  let calls = 0;
  const feasible = (p: PendingPod, m: string): boolean => {
    calls++;
    return !tainted.has(m) || (workloads[Number(p.key.slice(4, p.key.indexOf('-')))]?.tolerates ?? false);
  };
  const grouped = decideScaleUp(input({ pending, candidates, feasible, budget: { machines: 50 } }));
  const groupedCalls = calls;
  calls = 0;
  const ungrouped = decideScaleUp(input({ pending: classless(pending), candidates, feasible, budget: { machines: 50 } }));
  t.same(grouped.powerOn.map((c) => [c.machine, c.pods.length]), ungrouped.powerOn.map((c) => [c.machine, c.pods.length]), 'the same machines for the same pods');
  t.equal(grouped.powerOn.length, 50);
  t.ok(groupedCalls <= 3 * workloads.length * candidates.length, `grouped: ${groupedCalls} feasibility calls for ${workloads.length} classes × ${candidates.length} machines`);
  t.ok(calls > 5 * groupedCalls, `ungrouped: ${calls} calls`);
});

t.test('the candidate table picks the winner of the full ranking, near-ties included', async (t) => {
  const w = { usefulWeight: 1, nonUsefulWeight: 0.25 };
  for (let seed = 1; seed <= 400; seed++) {
    const r = prng(seed);
    const all: ScaleUpCandidate[] = Array.from({ length: 1 + r.int(30) }, (_, i) => ({
      name: `m${r.int(1000)}-${i}`,
      // A memory a few bytes apart puts scores within the tie tolerance without making them equal.
      capacity: { cpu: cpu(r.pick([8, 16, 32])), memory: BigInt(r.pick([64, 128])) * Gi + BigInt(r.chance(0.3) ? r.int(3) * 1000 : 0), ...(r.chance(0.2) ? { [GPU]: 2000n } : {}) },
      powerCyclesToday: r.int(2),
      ...(r.chance(0.6) ? { powerCost: r.pick([100, 200]) } : {}),
    }));
    const subset = all.map((_, i) => i).filter(() => r.chance(0.7));
    const deficit: ResourceVector = { cpu: cpu(r.int(40)), memory: BigInt(r.int(200)) * Gi, ...(r.chance(0.3) ? { [GPU]: 1000n } : {}) };
    const pressured = new Set(r.chance(0.3) ? ['memory'] : []);
    const expected = scoreCandidates(deficit, subset.map((i) => all[i] as ScaleUpCandidate), w, pressured);
    const got = new CandidateTable(all).best(deficit, subset, w, pressured);
    if (!t.strictSame(got, { ...(expected.ranked[0] ? { best: expected.ranked[0] } : {}), useful: expected.useful }, `seed ${seed}`)) break;
  }
});

t.test('PodIndex: one signature per workload, apart wherever the feasibility engine looks', async (t) => {
  const base = (name: string, over: Partial<V1PodSpec> = {}): V1Pod => ({
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: '1', labels: { 'pod-template-hash': name } },
    spec: {
      containers: [{ name: 'app', resources: { requests: { cpu: '2', memory: '4Gi' } } }],
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      nodeSelector: { disk: 'ssd' },
      ...over,
    },
    status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(0) }] },
  });
  const index = new PodIndex();
  const signature = (p: V1Pod): string => index.compile(p).signature;
  const replica = signature(base('a'));
  t.equal(signature(base('b')), replica, 'replicas differing only in name, uid and labels share it');
  const variants: [string, Partial<V1PodSpec>][] = [
    ['requests', { containers: [{ name: 'app', resources: { requests: { cpu: '3', memory: '4Gi' } } }] }],
    ['a sidecar', { initContainers: [{ name: 'mesh', restartPolicy: 'Always', resources: { requests: { cpu: '100m' } } }] }],
    ['tolerations', { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }] }],
    ['the node selector', { nodeSelector: { disk: 'hdd' } }],
    ['required node affinity', { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } } }],
    ['nodeName', { nodeName: 'rack-a-01' }],
    ['an invalid quantity', { containers: [{ name: 'app', resources: { requests: { cpu: 'two', memory: '4Gi' } } }] }],
  ];
  const seen = new Set([replica]);
  for (const [what, over] of variants) {
    const s = signature(base(`v-${what}`, over));
    t.notOk(seen.has(s), `${what} sets it apart`);
    seen.add(s);
  }
  t.equal(signature(base('c', { affinity: { podAntiAffinity: {} } })), replica, 'what the feasibility engine does not read does not');
});

t.test('a chain of near-ties is ranked by the sort, not by a single pass', async (t) => {
  const w = { usefulWeight: 1, nonUsefulWeight: 0.25 };
  // Memory ~80 bytes apart: scores ~0.6e-9 apart, so a ties b and b ties c, but a beats c;
  // the cheaper machine wins each tie, and the three never form a ranking.
  const bytes = (n: number): bigint => 128n * Gi + BigInt(n) * 1000n;
  const all: ScaleUpCandidate[] = [
    { name: 'a', capacity: { memory: bytes(0) }, powerCost: 300, powerCyclesToday: 0 },
    { name: 'c', capacity: { memory: bytes(164) }, powerCost: 100, powerCyclesToday: 0 },
    { name: 'b', capacity: { memory: bytes(82) }, powerCost: 200, powerCyclesToday: 0 },
  ];
  const deficit = { memory: bytes(0) };
  const sorted = scoreCandidates(deficit, all, w).ranked[0]?.name;
  let single = 0;
  const scores = scoreCandidates(deficit, all, w).ranked.reduce<Record<string, number>>((m, r) => ({ ...m, [r.name]: r.score }), {});
  all.forEach((c, i) => {
    const s = scores[c.name] ?? 0;
    const b = scores[all[single]?.name ?? ''] ?? 0;
    if (Math.abs(s - b) > 1e-9 ? s < b : (c.powerCost ?? 0) < (all[single]?.powerCost ?? 0)) single = i;
  });
  t.not(all[single]?.name, sorted, 'the case matters: a single pass would pick another machine');
  t.equal(new CandidateTable(all).best(deficit, [0, 1, 2], w).best?.name, sorted, 'the table falls back to the sort');
});

t.test('pods of one class with different requests are not merged', async (t) => {
  const pending = [
    { ...pod('ns/big', 20, 8), equivalenceClass: 'same' },
    { ...pod('ns/small', 1, 1), equivalenceClass: 'same' },
  ];
  const d = decideScaleUp(input({ pending, candidates: [machine('m8', 8, 32)] }));
  t.same(d.unplaceable.map((p) => p.key), ['ns/big'], 'the 20-core pod fits no 8-core machine');
  t.same(d.powerOn.map((c) => [c.machine, c.pods.map((p) => p.key)]), [['m8', ['ns/small']]]);
});
