import t from 'tap';
import { powerOffsOf, runScenario } from './simulated.js';

/**
 * scaleDown.maxPowerCyclesPerDay over a simulated day on `bamel simulate`: two machines'
 * worth of pods for the first half of every hour would power two machines off every hour.
 * With a limit of 3 per machine and break-even off (so that only the limit holds machines
 * on), no machine is powered off more than 3 times in the day, and the cycles spread over
 * the four machines.
 */

const LIMIT = 3;
const MACHINES = ['m1', 'm2', 'm3', 'm4'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 120, idleWatts: 100, maxWatts: 300 }));
const PODS = Array.from({ length: 24 }, (_, h) => [0, 1].map(() => ({ at: h * 3600 + 1, cpu: '12', memory: '8Gi', duration: 1500 }))).flat();

t.test('maxPowerCyclesPerDay holds over a simulated day, and the cycles spread', async (t) => {
  const r = await runScenario({
    machines: MACHINES,
    spec: {
      maxMachines: 4,
      scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 4 },
      scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, maxConcurrentDrains: 2, maxPowerCyclesPerDay: LIMIT, breakEven: { enabled: false } },
    },
    pods: PODS,
    seed: 3,
  });
  const per = MACHINES.map((m) => powerOffsOf(r.obs, m.name));
  t.comment(`a day of 2 machines' worth of load for 25 minutes of every hour, 4 machines, maxPowerCyclesPerDay ${LIMIT}:`);
  t.comment(`  power-offs per machine: ${MACHINES.map((m, i) => `${m.name} ${per[i]}`).join(', ')} (${per.reduce((a, b) => a + b, 0)} in all; 48 without the limit)`);
  t.comment(`  simulator: ${r.summary.powerCycles.total} power-ons, at most ${r.summary.powerCycles.maxPerMachinePerDay} per machine per day; pods pending at most ${r.summary.pendingSeconds.max} s`);
  for (let i = 0; i < MACHINES.length; i++) t.ok((per[i] ?? 0) <= LIMIT, `${MACHINES[i]?.name}: ${per[i]} power-offs in the day, at most ${LIMIT}`);
  t.ok(Math.max(...per) - Math.min(...per) <= 1, `spread over the fleet: ${per.join(', ')}`);
  t.equal(per.reduce((a, b) => a + b, 0), LIMIT * MACHINES.length, 'every machine used its cycles, then stayed on');
  t.ok(r.summary.powerCycles.maxPerMachinePerDay <= LIMIT + 1, `power-ons per machine per day: ${r.summary.powerCycles.maxPerMachinePerDay} (the limit counts power-offs; the first power-on has none before it)`);
  t.same(
    (r.obs.status?.machines ?? []).map((m) => m.powerCycles?.last24h),
    MACHINES.map(() => LIMIT),
    'status counts them (rolling 24 h)',
  );
  const said = r.obs.events.find((e) => /was powered off 3 time\(s\) in the last 24 hours, scaleDown.maxPowerCyclesPerDay is 3: it stays on until/.test(e.message));
  t.ok(said, `the blocker says why in words: ${said?.reason}: ${said?.message}`);
  t.equal(r.summary.unplacedPods, 0);
  t.ok(r.summary.pendingSeconds.max <= 120 * 1.05 + 30, `pods never wait past a boot + 30 s (${r.summary.pendingSeconds.max} s)`);
});
