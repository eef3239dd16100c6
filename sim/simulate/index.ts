import { performance } from 'node:perf_hooks';
import { quantile, round, type TimelineSample } from './accounting.js';
import { runEngine, type EngineInput, type EngineResult } from './engine.js';
import { Oracle, oracleMachineHours, oracleTimeline } from './oracle.js';

/**
 * `bamel simulate`: the trace run twice on the same virtual cluster, once under the chosen
 * policy and once always-on (every machine on and Ready from the start, kube-scheduler
 * without the extender), and the oracle computed from the trace (oracle.ts). All three are
 * measured over the same span: from second 0 until the last pod of either run has finished.
 */

export { parseTrace, TraceError, type TracePod } from './trace.js';
export type { Policy } from './engine.js';

/** What a simulation takes: the engine's input less what it derives (the oracle, the virtual start). */
export type SimulateInput = Omit<EngineInput, 'oracle' | 'start'>;

/** The JSON object `bamel simulate` prints: these keys, no others. */
export interface Summary {
  pods: number;
  unplacedPods: number;
  machineHours: number;
  alwaysOnMachineHours: number;
  oracleMachineHours: number;
  energyKWh: number;
  alwaysOnEnergyKWh: number;
  pendingSeconds: { p50: number; p99: number; max: number };
  powerCycles: { total: number; maxPerMachinePerDay: number };
  flaps: number;
  wallSeconds: number;
}

export interface SimulateResult {
  summary: Summary;
  timeline: TimelineSample[];
  /** More than the summary says: for benchmarks and tests. */
  details: { reconciles: number; statusWrites: number; spanSeconds: number; events: Record<string, number>; machinesWithoutPower: string[] };
}

/** The virtual clock's second 0: Monday 2026-01-05 00:00 UTC (the traces' weeks start on a Monday). */
export const SIMULATION_START = Date.UTC(2026, 0, 5);

export async function simulate(input: SimulateInput): Promise<SimulateResult> {
  const started = performance.now();
  const start = SIMULATION_START;
  const oracle = oracleTimeline(input.pods, new Oracle(input.machines));
  const base = { pods: input.pods, machines: input.machines, machinesYaml: input.machinesYaml, autoscaler: input.autoscaler, seed: input.seed, oracle, start, ...(input.jitter !== undefined ? { jitter: input.jitter } : {}) };
  const alwaysOn = await runEngine({ ...base, policy: 'always-on' });
  const run: EngineResult =
    input.policy === 'always-on'
      ? alwaysOn
      : await runEngine({ ...base, policy: input.policy, ...(input.bootSeconds !== undefined ? { bootSeconds: input.bootSeconds } : {}), ...(input.reconcilerClass ? { reconcilerClass: input.reconcilerClass } : {}) });
  const span = Math.max(run.end, alwaysOn.end, start + Math.max(0, ...oracle.map((s) => s.to * 1000)));
  run.accounting.advance(span);
  alwaysOn.accounting.advance(span);
  const waits = [...run.waits].sort((a, b) => a - b);
  const summary: Summary = {
    pods: input.pods.length,
    unplacedPods: run.unplaced,
    machineHours: round(run.accounting.machineHours(), 2),
    alwaysOnMachineHours: round(alwaysOn.accounting.machineHours(), 2),
    oracleMachineHours: round(oracleMachineHours(oracle), 2),
    energyKWh: round(run.accounting.energyKWh(), 2),
    alwaysOnEnergyKWh: round(alwaysOn.accounting.energyKWh(), 2),
    pendingSeconds: { p50: round(quantile(waits, 0.5), 1), p99: round(quantile(waits, 0.99), 1), max: round(waits[waits.length - 1] ?? 0, 1) },
    powerCycles: { total: run.accounting.powerOns, maxPerMachinePerDay: run.accounting.maxCyclesPerMachinePerDay() },
    flaps: run.accounting.flaps,
    wallSeconds: round((performance.now() - started) / 1000, 2),
  };
  return {
    summary,
    timeline: run.timeline,
    details: {
      reconciles: run.reconciles,
      statusWrites: run.statusWrites,
      spanSeconds: (span - start) / 1000,
      events: Object.fromEntries(run.events),
      machinesWithoutPower: input.machines.filter((m) => m.power?.idleWatts === undefined && m.power?.maxWatts === undefined).map((m) => m.name),
    },
  };
}
