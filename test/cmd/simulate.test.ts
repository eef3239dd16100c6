import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runSimulate, type SimulateArgs } from '../../cmd/simulate.js';
import { TIMELINE_COLUMNS } from '../../sim/simulate/output.js';

// `bamel simulate` as a user runs it: one JSON object on stdout with the issue's keys, the
// files of --out, and clear refusals of bad input.

const DIR = 'bench/traces';
const KEYS = ['pods', 'unplacedPods', 'machineHours', 'alwaysOnMachineHours', 'oracleMachineHours', 'energyKWh', 'alwaysOnEnergyKWh', 'pendingSeconds', 'powerCycles', 'flaps', 'wallSeconds'];

async function run(args: Partial<SimulateArgs>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runSimulate(
    { trace: `${DIR}/small.csv`, inventory: `${DIR}/small-inventory.yaml`, autoscaler: `${DIR}/small-autoscaler.yaml`, policy: 'bamel', seed: 1, ...args },
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
  );
  return { code, stdout, stderr };
}

async function tmp(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bamel-simulate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('prints one JSON object with exactly the keys of the issue, and writes --out', async (t) => {
  const out = join(await tmp(t), 'out');
  const r = await run({ out });
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'one line');
  const summary = JSON.parse(lines[0] as string) as Record<string, unknown>;
  t.same(Object.keys(summary), KEYS);
  t.same(Object.keys(summary.pendingSeconds as object), ['p50', 'p99', 'max']);
  t.same(Object.keys(summary.powerCycles as object), ['total', 'maxPerMachinePerDay']);
  t.equal(summary.pods, 54);
  t.equal(summary.unplacedPods, 0);
  t.ok((summary.machineHours as number) < (summary.alwaysOnMachineHours as number), 'fewer machine-hours than always-on');
  t.ok((summary.energyKWh as number) < (summary.alwaysOnEnergyKWh as number), 'less energy than always-on');

  const { wallSeconds: _a, ...fromStdout } = summary;
  const { wallSeconds: _b, ...fromFile } = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
  t.same(fromFile, fromStdout, 'summary.json says what stdout said');
  const csv = (await readFile(join(out, 'timeline.csv'), 'utf8')).trim().split('\n');
  t.equal(csv[0], TIMELINE_COLUMNS.join(','));
  t.equal(csv[0], 'minute,demand,machinesOn,oracleMachines,pendingPods,watts');
  t.ok(csv.length > 60, `one row a minute (${csv.length - 1} rows)`);
  t.match(await readFile(join(out, 'timeline.svg'), 'utf8'), /^<svg[^>]*>.*machines on.*pending pods/s);
  const png = await readFile(join(out, 'timeline.png'));
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
});

t.test('the same seed gives the same figures; always-on is the always-on run', async (t) => {
  const a = JSON.parse((await run({ seed: 7 })).stdout) as Record<string, unknown>;
  const b = JSON.parse((await run({ seed: 7 })).stdout) as Record<string, unknown>;
  delete a.wallSeconds;
  delete b.wallSeconds;
  t.same(a, b);
  const on = JSON.parse((await run({ policy: 'always-on' })).stdout) as { machineHours: number; alwaysOnMachineHours: number; powerCycles: { total: number } };
  t.equal(on.machineHours, on.alwaysOnMachineHours);
  t.equal(on.powerCycles.total, 0);
});

t.test('an inventory ConfigMap is accepted as well as a machines.yaml document', async (t) => {
  const dir = await tmp(t);
  const machines = await readFile(`${DIR}/small-inventory.yaml`, 'utf8');
  const cm = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: machines\n  namespace: bamel-system\n  labels: {autoscaling.bamel.io/inventory: "true"}\ndata:\n  machines.yaml: |\n${machines.split('\n').map((l) => `    ${l}`).join('\n')}\n`;
  await writeFile(join(dir, 'cm.yaml'), cm);
  const viaCm = JSON.parse((await run({ inventory: join(dir, 'cm.yaml') })).stdout) as Record<string, unknown>;
  const plain = JSON.parse((await run({})).stdout) as Record<string, unknown>;
  delete viaCm.wallSeconds;
  delete plain.wallSeconds;
  t.same(viaCm, plain);
});

t.test('bad input is refused with where and what', async (t) => {
  const dir = await tmp(t);
  await writeFile(join(dir, 'bad.csv'), 'at,name,cpu,memory,duration\n0,a,1,1Gi,60\n3,b,1,much,60\n');
  const trace = await run({ trace: join(dir, 'bad.csv') });
  t.equal(trace.code, 1);
  t.equal(trace.stdout, '');
  t.match(trace.stderr, /bad\.csv: line 3, column 4: memory: "much" is not a valid quantity/);

  await writeFile(join(dir, 'bma.yaml'), 'apiVersion: autoscaling.bamel.io/v1alpha1\nkind: BareMetalAutoscaler\nmetadata: {name: x}\nspec:\n  inventory: {namespace: a, name: b}\n  scaleDown: {utilizationThreshold: 2}\n');
  const bma = await run({ autoscaler: join(dir, 'bma.yaml') });
  t.equal(bma.code, 1);
  t.match(bma.stderr, /bma\.yaml: spec\.scaleDown\.utilizationThreshold: 2 is above the maximum 1/);

  await writeFile(join(dir, 'inv.yaml'), 'machines:\n  - name: m\n');
  const inv = await run({ inventory: join(dir, 'inv.yaml') });
  t.equal(inv.code, 1);
  t.match(inv.stderr, /inv\.yaml: machines\[0\]/);

  const missing = await run({ trace: join(dir, 'nope.csv') });
  t.match(missing.stderr, /nope\.csv: cannot read/);
});
