// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/scale-down.bench.ts [--json] [--reference]
//
// What one reconcile's scale-down planning costs (controller/scale-down.ts: utilisation,
// blockers, the fit of every candidate's pods on the other Nodes, ranking) for 100, 1,000
// and 2,000 Ready machines:
// - all unneeded: every machine's pods are placed on the others (8 pods of 1 cpu each);
// - all busy: the same cluster where every machine is busy (only utilisation is computed);
// - mixed: half the machines full and first in the planner's order, half unneeded, one in
//   ten of those running a pod that fits nowhere (bench/helpers/scale-down-cluster.ts).
// Printed: the median ms per plan over warm runs (the reconciler's memo tables kept, as
// between reconciles). With --reference, the planner before the index of free room
// (test/controller/scale-down-reference.ts) is timed too, run for run alternated with the
// planner on the same inputs, and the two plans are checked to be the same.
import { planScaleDown, type ScaleDownInput, type ScaleDownPlan } from '../controller/scale-down.js';
import { planScaleDownReference } from '../test/controller/scale-down-reference.js';
import { benchInput, mixedCluster, uniformCluster } from './helpers/scale-down-cluster.js';

const reference = process.argv.includes('--reference');
type Planner = (input: ScaleDownInput) => ScaleDownPlan;

/** Median ms per plan of each planner, runs alternated; the number of machines chosen. */
function time(input: ScaleDownInput, planners: Planner[]): { ms: number[]; next: number } {
  const plans = planners.map((plan) => plan(input)); // warm-up: memo tables filled
  const [own, ...others] = plans.map((p) => JSON.stringify([...p.machines, p.drain, p.wakeAt]));
  for (const other of others) if (other !== own) throw new Error('the planner and the reference disagree');
  const runs = input.ready.length >= 1000 ? 7 : 21;
  const samples = planners.map((): number[] => []);
  for (let i = 0; i < runs; i++) {
    planners.forEach((plan, k) => {
      const start = performance.now();
      plan(input);
      samples[k]?.push(performance.now() - start);
    });
  }
  const next = [...(plans[0] as ScaleDownPlan).machines.values()].filter((m) => m.disruption === 'Next').length;
  return { ms: samples.map(median), next };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const planners: Planner[] = reference ? [planScaleDown, planScaleDownReference] : [planScaleDown];
const head = reference ? '  (reference, ratio)' : '';
console.log(`machines  all unneeded (ms/plan)${head}  all busy (ms/plan)${head}  mixed (ms/plan)${head}  chosen`);
interface Size {
  machines: number;
  allUnneededMs: number;
  allBusyMs: number;
  mixedMs: number;
  referenceAllUnneededMs?: number;
  referenceAllBusyMs?: number;
  referenceMixedMs?: number;
}
const sizes: Size[] = [];
for (const n of [100, 1000, 2000]) {
  const idle = time(benchInput(uniformCluster(n, 8, 1)), planners); // 8 of 32 cpu: 25 %, unneeded
  const busy = time(benchInput(uniformCluster(n, 8, 3)), planners); // 24 of 32 cpu: 75 %, busy
  const mixed = time(benchInput(mixedCluster(n)), planners);
  const cell = (r: { ms: number[] }, width: number): string => {
    const [own = 0, ref] = r.ms;
    const text = ref === undefined ? own.toFixed(1) : `${own.toFixed(1)}  (${ref.toFixed(1)}, ${(ref / own).toFixed(1)}x)`;
    return text.padStart(width + head.length);
  };
  console.log(`${String(n).padStart(8)}  ${cell(idle, 22)}  ${cell(busy, 18)}  ${cell(mixed, 15)}  ${idle.next}`);
  const size: Size = { machines: n, allUnneededMs: round(idle.ms[0]), allBusyMs: round(busy.ms[0]), mixedMs: round(mixed.ms[0]) };
  if (reference) Object.assign(size, { referenceAllUnneededMs: round(idle.ms[1]), referenceAllBusyMs: round(busy.ms[1]), referenceMixedMs: round(mixed.ms[1]) });
  sizes.push(size);
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ bench: 'scale-down', sizes }));

function round(ms: number | undefined): number {
  return Number((ms ?? NaN).toFixed(3));
}
