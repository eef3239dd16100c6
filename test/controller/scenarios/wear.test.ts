import t from 'tap';
import { VirtualCluster } from './virtual-cluster.js';

/**
 * scaleDown.maxPowerCyclesPerDay over a simulated day on the real Reconciler: a load that
 * needs two machines for half of every hour and none for the other half would power two
 * machines off every hour. With a limit of 3 per machine and break-even off (so that only the
 * limit holds machines on), no machine is powered off more than 3 times in any 24 hours, and
 * the power cycles spread over the four machines.
 */

const START = Date.parse('2026-11-30T00:00:00Z');
const LIMIT = 3;
const MACHINES = ['m1', 'm2', 'm3', 'm4'].map((name) => ({ name, cpu: 16, memoryGi: 64, bootSeconds: 120, idleWatts: 100, maxWatts: 300 }));
const replicas = (now: number): number => ((now - START) % 3_600_000 < 1_800_000 ? 2 : 0);

t.test('maxPowerCyclesPerDay holds over a simulated day, and the cycles spread', async (t) => {
  const c = new VirtualCluster({
    machines: MACHINES,
    spec: {
      maxMachines: 4,
      scaleUp: { cooldownSeconds: 0, maxConcurrentPowerOns: 4 },
      scaleDown: { unneededSeconds: 60, cooldownSeconds: 60, maxConcurrentDrains: 2, maxPowerCyclesPerDay: LIMIT, breakEven: { enabled: false } },
    },
    start: START,
    replicas,
    podCpu: '12',
    podMemory: '8Gi',
    seed: 3,
  });
  await c.runUntil(START + 24 * 3_600_000);
  const perMachine = MACHINES.map((m) => c.powerOffs.filter((o) => o.machine === m.name).length);
  t.comment(`a day of a load needing 2 machines for 30 minutes of every hour, 4 machines, maxPowerCyclesPerDay ${LIMIT}:`);
  t.comment(`  power cycles per machine: ${MACHINES.map((m, i) => `${m.name} ${perMachine[i]}`).join(', ')} (${c.powerOffs.length} in all; 48 without the limit)`);
  t.comment(`  pods pending at most ${Math.max(...c.pendingSeconds()).toFixed(0)}s`);
  for (let i = 0; i < MACHINES.length; i++) t.ok((perMachine[i] ?? 0) <= LIMIT, `${MACHINES[i]?.name}: ${perMachine[i]} power-offs in the day, at most ${LIMIT}`);
  t.ok(Math.max(...perMachine) - Math.min(...perMachine) <= 1, `spread: ${perMachine.join(', ')}`);
  t.equal(c.powerOffs.length, LIMIT * MACHINES.length, 'every machine used its cycles, then stayed on');
  const last = c.status()?.machines ?? [];
  t.same(last.map((m) => m.powerCycles?.last24h), MACHINES.map(() => LIMIT), 'status counts them (rolling 24 h)');
  const said = c.events.filter((e) => /was powered off 3 time\(s\) in the last 24 hours, scaleDown.maxPowerCyclesPerDay is 3: it stays on until/.test(e.message));
  t.ok(said.length > 0, `the blocker says why in words (${said[0]?.reason}: ${said[0]?.message})`);
  t.ok(Math.max(...c.pendingSeconds()) <= 120 + 30, 'pods never wait past a boot + 30 s');
});
