import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { loadInputs } from '../../../cmd/simulate.js';
import type { ReconcilerClass } from '../../../sim/simulate/controller.js';
import { simulate, type Summary } from '../../../sim/simulate/index.js';

// The simulator runs the decision code the manager runs, not a copy of its own: a copy of
// controller/ with one policy changed (the scale-up decision, the scale-down planner),
// loaded in place of the real one, must change what the simulation measures.

const ROOT = resolve('.');
const DIR = 'bench/traces';

let copies = 0;

/** controller/ copied beside links to what it imports, with `edit` applied to one file; its Reconciler. */
async function patchedReconciler(t: Test, file: string, from: string, to: string): Promise<ReconcilerClass> {
  // A directory of its own per copy: an ES module is loaded once per path.
  const base = join(ROOT, '.tap', `simulate-patched-${process.pid}-${++copies}`);
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  t.teardown(() => rm(base, { recursive: true, force: true }));
  await cp(join(ROOT, 'controller'), join(base, 'controller'), { recursive: true });
  for (const dir of ['api', 'kube', 'scheduling', 'power']) await symlink(join(ROOT, dir), join(base, dir));
  const path = join(base, 'controller', file);
  const text = await readFile(path, 'utf8');
  if (!text.includes(from)) throw new Error(`controller/${file} no longer contains ${JSON.stringify(from)}: update this test`);
  await writeFile(path, text.replace(from, to));
  const mod = (await import(join(base, 'controller', 'reconcile', 'reconciler.ts'))) as { Reconciler: ReconcilerClass };
  return mod.Reconciler;
}

async function run(reconcilerClass?: ReconcilerClass): Promise<Summary> {
  const inputs = await loadInputs({ trace: `${DIR}/small.csv`, inventory: `${DIR}/small-inventory.yaml`, autoscaler: `${DIR}/small-autoscaler.yaml` });
  const { summary } = await simulate({ ...inputs, policy: 'bamel', seed: 3, ...(reconcilerClass ? { reconcilerClass } : {}) });
  return summary;
}

const { wallSeconds: _w, ...plain } = await run();

t.test('the same build, loaded from a copy, simulates the same', async (t) => {
  const copy = await patchedReconciler(t, 'decide.ts', 'export function decideScaleUp', 'export function decideScaleUp');
  const { wallSeconds: _, ...again } = await run(copy);
  t.same(again, plain);
});

t.test('a change in the scale-up decision changes the simulation', async (t) => {
  // The decision never chooses the fixture's large machines: only small ones are powered on.
  const changed = await patchedReconciler(t, 'decide.ts', 'const scale = largest(', "input = { ...input, candidates: input.candidates.filter((c) => !c.name.startsWith('large-')) };\n  const scale = largest(");
  const { wallSeconds: _, ...s } = await run(changed);
  t.notSame(s, plain, `with the change: ${JSON.stringify(s)}; without: ${JSON.stringify(plain)}`);
  t.not(s.energyKWh, plain.energyKWh, 'other machines draw other power');
});

t.test('a change in the scale-down planner changes the simulation', async (t) => {
  // Machines count as unneeded only below a quarter of the threshold: fewer are powered off.
  const changed = await patchedReconciler(t, 'scale-down.ts', 'const threshold = scaleDown.utilizationThreshold;', 'const threshold = scaleDown.utilizationThreshold * 0.25;');
  const s = await run(changed);
  t.not(s.machineHours, plain.machineHours, `machine-hours: ${s.machineHours} with the change, ${plain.machineHours} without`);
  t.ok(s.machineHours > plain.machineHours, 'more machine-hours when fewer machines are unneeded');
});
