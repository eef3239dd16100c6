import t from 'tap';
import { loadInputs } from '../../../cmd/simulate.js';
import { simulate } from '../../../sim/simulate/index.js';

// The figures on the shipped diurnal trace (bench/traces/diurnal.csv: a week of web
// traffic, weekends included) with the shipped inventory and autoscaler: bamel against
// always-on and the oracle. A week of 50 machines and about 50,000 pods, simulated with the
// real controller (a minute or two here).

const TRACES = 'bench/traces';
// A week with the real controller is minutes of CPU: more than the default per-file limit
// on a loaded machine.
t.setTimeout(1_800_000);

t.test('the diurnal week: energy saved, close to the oracle, short waits, few power cycles', async (t) => {
  const inputs = await loadInputs({ trace: `${TRACES}/diurnal.csv`, inventory: `${TRACES}/inventory.yaml`, autoscaler: `${TRACES}/autoscaler.yaml` });
  const boot = Math.max(...inputs.machines.map((m) => m.bootSeconds ?? 0));
  t.equal(inputs.machines.length, 50);
  t.ok(inputs.pods.length >= 50_000, `${inputs.pods.length} pods`);
  const { summary: s } = await simulate({ ...inputs, policy: 'bamel', seed: 1 });
  t.comment(JSON.stringify(s));
  t.equal(s.unplacedPods, 0, 'every pod ran');
  t.ok(s.machineHours <= 0.6 * s.alwaysOnMachineHours, `machine-hours ${s.machineHours} at least 40 % below always-on ${s.alwaysOnMachineHours} (${((1 - s.machineHours / s.alwaysOnMachineHours) * 100).toFixed(1)} % below)`);
  t.ok(s.machineHours <= 1.15 * s.oracleMachineHours, `machine-hours ${s.machineHours} at most 1.15 × the oracle's ${s.oracleMachineHours} (${(s.machineHours / s.oracleMachineHours).toFixed(3)} ×)`);
  t.ok(s.pendingSeconds.p99 <= boot + 30, `pending p99 ${s.pendingSeconds.p99} s at most bootSeconds ${boot} + 30`);
  t.ok(s.powerCycles.maxPerMachinePerDay <= 4, `at most 4 power cycles per machine per day (${s.powerCycles.maxPerMachinePerDay})`);
  t.ok(s.energyKWh < s.alwaysOnEnergyKWh, `energy ${s.energyKWh} kWh below always-on ${s.alwaysOnEnergyKWh} kWh`);
});
