import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parseInventoryText, type ParsedMachine } from '../../../api/inventory.js';
import { loadInputs } from '../../../cmd/simulate.js';
import { simulate } from '../../../sim/simulate/index.js';
import { Oracle, oracleMachineHours, oracleTimeline } from '../../../sim/simulate/oracle.js';
import { parseTrace, type TracePod } from '../../../sim/simulate/trace.js';

// The oracle (the fewest machines whose capacity covers the running pods' requests, no
// boot time) computed here by brute force over every subset of the inventory, against
// the simulator's figure.

const DIR = 'bench/traces';

async function fixtures(): Promise<{ pods: TracePod[]; machines: ParsedMachine[] }> {
  const inv = parseInventoryText(await readFile(`${DIR}/small-inventory.yaml`, 'utf8'));
  if (!inv.ok) throw new Error('fixture inventory invalid');
  return { pods: parseTrace(await readFile(`${DIR}/small.csv`, 'utf8')), machines: inv.inventory.machines };
}

/** The fewest machines covering the demand (cpu, memory, pods), by trying every subset. */
function bruteForce(machines: readonly ParsedMachine[], running: readonly TracePod[]): number {
  const need = [running.reduce((s, p) => s + p.cpuMilli, 0n), running.reduce((s, p) => s + p.memoryMilli, 0n), BigInt(running.length) * 1000n];
  if (running.length === 0) return 0;
  let best = machines.length;
  for (let mask = 1; mask < 1 << machines.length; mask++) {
    const chosen = machines.filter((_, i) => (mask & (1 << i)) !== 0);
    const have = ['cpu', 'memory', 'pods'].map((r) => chosen.reduce((s, m) => s + (m.capacity[r] ?? 0n), 0n));
    if (have.every((h, r) => h >= (need[r] as bigint))) best = Math.min(best, chosen.length);
  }
  return best;
}

t.test('the oracle equals brute force on a small trace over a heterogeneous inventory', async (t) => {
  const { pods, machines } = await fixtures();
  const times = [...new Set(pods.flatMap((p) => [p.at, p.at + p.duration]))].sort((a, b) => a - b);
  let hours = 0;
  let peak = 0;
  for (let i = 0; i < times.length - 1; i++) {
    const at = times[i] as number;
    const running = pods.filter((p) => p.at <= at && at < p.at + p.duration);
    const n = bruteForce(machines, running);
    peak = Math.max(peak, n);
    hours += (n * ((times[i + 1] as number) - at)) / 3600;
  }
  t.ok(peak >= 3, `the trace needs several machines at its peak (${peak}), so the subsets differ`);
  const segments = oracleTimeline(pods, new Oracle(machines));
  t.equal(Math.round(oracleMachineHours(segments) * 1e6), Math.round(hours * 1e6), 'the oracle timeline');

  const inputs = await loadInputs({ trace: `${DIR}/small.csv`, inventory: `${DIR}/small-inventory.yaml`, autoscaler: `${DIR}/small-autoscaler.yaml` });
  const { summary } = await simulate({ ...inputs, policy: 'bamel', seed: 1 });
  t.equal(summary.oracleMachineHours, Math.round(hours * 100) / 100, 'what bamel simulate reports');
  t.ok(summary.machineHours >= summary.oracleMachineHours, `bamel (${summary.machineHours}) is not below the lower bound`);
});

t.test('memory alone can need more machines than cpu does; more demand than the inventory is all of it', async (t) => {
  const { machines } = await fixtures();
  const oracle = new Oracle(machines);
  // 40 GiB of memory and 1 core: one large machine (48 GiB) covers it, no small one does.
  t.equal(oracle.machinesFor([1000, 40 * 1024 ** 3 * 1000, 1000]), 1);
  // 60 GiB: a large and a small machine.
  t.equal(oracle.machinesFor([1000, 60 * 1024 ** 3 * 1000, 1000]), 2);
  // 40 cores: both large and a small (16 + 16 + 8).
  t.equal(oracle.machinesFor([40_000, 1000, 1000]), 3);
  t.equal(oracle.machinesFor([1_000_000, 1000, 1000]), machines.length);
  t.equal(oracle.machinesFor([0, 0, 0]), 0);
});
