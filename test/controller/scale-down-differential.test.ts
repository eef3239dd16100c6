import t, { type Test } from 'tap';
import { moving } from '../../controller/placement.js';
import { planScaleDown, type ScaleDownPlan } from '../../controller/scale-down.js';
import { planScaleDownReference } from './scale-down-reference.js';
import { randomScaleDownInput } from './scale-down-random.js';

// The planner with its index of free room against the planner it replaced (a scan of every
// Node per pod, kept in scale-down-reference.ts), on seeded random clusters: the plans must
// be identical, machine by machine, blocker by blocker, in the same order.

interface Flat {
  machines: [string, unknown][];
  drain: string[];
  wakeAt: number | undefined;
}

const flat = (plan: ScaleDownPlan): Flat => ({ machines: [...plan.machines], drain: plan.drain, wakeAt: plan.wakeAt });

/** What the seeds covered, so that a generator that stopped producing a case fails the test. */
const seen = { fitsNowhere: 0, fitsNowhereOnceDrained: 0, next: 0, drains: 0, machines: 0, alike: 0 };

function count(plan: ScaleDownPlan): void {
  for (const m of plan.machines.values()) {
    seen.machines++;
    if (m.disruption === 'Next') seen.next++;
    for (const b of m.blockers) {
      if (b.kind !== 'FitsNowhere') continue;
      if (b.message.includes('once')) seen.fitsNowhereOnceDrained++;
      else seen.fitsNowhere++;
    }
  }
  seen.drains += plan.drain.length;
}

function compare(t: Test, seed: number, size: number, tight = false): void {
  const input = randomScaleDownInput(seed, size, tight);
  const signatures = input.ready.map((r) => moving(r.pods)).filter((m) => m.largestFirst.length > 0).map((m) => m.signature);
  seen.alike += signatures.length - new Set(signatures).size;
  // Alternate which side runs first, so that neither sees only warm memo tables.
  const referenceFirst = seed % 2 === 0;
  const expected = referenceFirst ? flat(planScaleDownReference(input)) : undefined;
  const cold = flat(planScaleDown(input));
  const reference = expected ?? flat(planScaleDownReference(input));
  // A second plan on the same cache objects: the memoised rooms must not carry the first one's spending.
  const warm = flat(planScaleDown(input));
  count(planScaleDown(input));
  t.strictSame(cold, reference, `seed ${seed}, ${size} Nodes: the same plan as the reference`);
  t.strictSame(warm, reference, `seed ${seed}, ${size} Nodes: the same plan again, memo tables warm`);
}

t.test('small clusters: every edge case often', async (t) => {
  for (let seed = 1; seed <= 400; seed++) compare(t, seed, 3 + (seed % 25));
});

t.test('tight clusters: room runs out as machines are chosen', async (t) => {
  for (let seed = 501; seed <= 620; seed++) compare(t, seed, 4 + (seed % 30), true);
});

t.test('larger clusters: many classes of Nodes, deep trees', async (t) => {
  for (let seed = 1001; seed <= 1012; seed++) compare(t, seed, 150 + 25 * (seed % 4));
});

t.test('the seeds cover pods that fit nowhere, choices and drains', async (t) => {
  t.ok(seen.fitsNowhere > 50, `${seen.fitsNowhere} pods fit nowhere`);
  t.ok(seen.fitsNowhereOnceDrained > 50, `${seen.fitsNowhereOnceDrained} pods fit nowhere once the chosen ones are drained`);
  t.ok(seen.next > 50, `${seen.next} machines chosen`);
  t.ok(seen.drains > 20, `${seen.drains} drains`);
  t.ok(seen.alike > 200, `${seen.alike} machines with pods alike another's (placed once for both)`);
});
