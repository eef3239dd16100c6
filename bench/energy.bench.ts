// Energy and latency of bamel on the shipped traces (bench/traces/), against always-on, the
// oracle and a model of Cluster Autoscaler with Metal3. Run: make bench-energy, or
//   TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/energy.bench.ts [--json] [--trace diurnal,batch,spiky] [--rows defaults,energy,ca] [--plots DIR]
// A few minutes on the 2-core development machine (each row is a week simulated with the real
// controller, plus an always-on run).
//
// Rows of each table:
//   bamel (defaults)        the shipped autoscaler.yaml as it is
//   bamel (energy options)  ENERGY_OPTIONS below when this build's schema has them; until then,
//                           the energy-leaning settings that exist (ENERGY_LEANING)
//   always-on               every machine on for the whole span
//   oracle                  the lower bound (sim/simulate/oracle.ts): no boot, perfect packing
//   CA + Metal3 (model)     NOT Cluster Autoscaler's code: bamel's decisions with Cluster
//                           Autoscaler's defaults (scale-down after 10 minutes unneeded, 10
//                           minutes after a scale-up) and a machine that is deleted and
//                           reprovisioned (15 minutes) instead of booted
import { join } from 'node:path';
import { loadInputs, type SimulationInputs } from '../cmd/simulate.js';
import { ScaleDownSchema, ScaleUpSchema, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { simulate, type SimulateResult, type Summary } from '../sim/simulate/index.js';
import { writeOutputs } from '../sim/simulate/output.js';
import { checkAutoscalerStructure } from '../webhook/structure.js';

const TRACES = join('bench', 'traces');
const SEED = 1;

/** The energy options (scaleDown.minOffSeconds, maxPowerCyclesPerDay, scaleUp.predictive), once the schema has them. */
const ENERGY_OPTIONS = { scaleDown: { minOffSeconds: 1800, maxPowerCyclesPerDay: 4 }, scaleUp: { predictive: { enabled: true, lookaheadSeconds: 300 } } };
/** What exists today that trades a little latency for energy: scale down sooner and faster. */
const ENERGY_LEANING = { scaleDown: { utilizationThreshold: 0.7, unneededSeconds: 300, cooldownSeconds: 120, maxConcurrentDrains: 2 } };
/** Cluster Autoscaler's defaults (scale-down-unneeded-time, scale-down-delay-after-add: 10 min) and Metal3 reprovisioning. */
const CA_METAL3 = { scaleDown: { unneededSeconds: 600, cooldownSeconds: 600 }, scaleUp: { joinTimeoutSeconds: 1800 } };
const REPROVISION_SECONDS = 900;

type Overlay = { scaleUp?: Record<string, unknown>; scaleDown?: Record<string, unknown> };

function withSpec(a: BareMetalAutoscaler, overlay: Overlay): BareMetalAutoscaler | undefined {
  const raw = structuredClone(a) as unknown as { spec: Record<string, Record<string, unknown>> };
  for (const [k, v] of Object.entries(overlay)) raw.spec[k] = { ...raw.spec[k], ...v };
  const { defaulted, issues } = checkAutoscalerStructure(raw);
  return issues.length === 0 ? defaulted : undefined;
}

/** Whether this build's schema has the energy options (unknown fields would only be ignored). */
function energyOptionsInSchema(): boolean {
  const down: object = ScaleDownSchema.properties;
  const up: object = ScaleUpSchema.properties;
  return Object.keys(ENERGY_OPTIONS.scaleDown).every((k) => k in down) && Object.keys(ENERGY_OPTIONS.scaleUp).every((k) => k in up);
}

function required(a: BareMetalAutoscaler | undefined): BareMetalAutoscaler {
  if (a === undefined) throw new Error('the settings of a row do not pass the schema check');
  return a;
}

interface Row {
  trace: string;
  policy: string;
  machineHours: number;
  energyKWh?: number;
  pending?: Summary['pendingSeconds'];
  cycles?: Summary['powerCycles'];
  flaps?: number;
  wallSeconds?: number;
}

async function rowsFor(trace: string): Promise<Row[]> {
  const inputs: SimulationInputs = await loadInputs({ trace: join(TRACES, `${trace}.csv`), inventory: join(TRACES, 'inventory.yaml'), autoscaler: join(TRACES, 'autoscaler.yaml') });
  const energySpec = energyOptionsInSchema() ? required(withSpec(inputs.autoscaler, ENERGY_OPTIONS)) : undefined;
  const energy = energySpec ?? required(withSpec(inputs.autoscaler, ENERGY_LEANING));
  const energyLabel = energySpec ? 'bamel (energy options)' : 'bamel (energy-leaning settings*)';
  const row = (policy: string, r: SimulateResult): Row => ({
    trace,
    policy,
    machineHours: r.summary.machineHours,
    energyKWh: r.summary.energyKWh,
    pending: r.summary.pendingSeconds,
    cycles: r.summary.powerCycles,
    flaps: r.summary.flaps,
    wallSeconds: r.summary.wallSeconds,
  });
  const out: Row[] = [];
  if (wanted('defaults')) {
    const defaults = await simulate({ ...inputs, policy: 'bamel', seed: SEED });
    if (plots !== undefined) await writeOutputs(join(plots, trace), defaults, `bamel simulate: ${trace}.csv, the shipped autoscaler`);
    const s = defaults.summary;
    out.push(row('bamel (defaults)', defaults));
    if (wanted('energy')) out.push(row(energyLabel, await simulate({ ...inputs, autoscaler: energy, policy: 'bamel', seed: SEED })));
    out.push({ trace, policy: 'always-on', machineHours: s.alwaysOnMachineHours, energyKWh: s.alwaysOnEnergyKWh }, { trace, policy: 'oracle (lower bound)', machineHours: s.oracleMachineHours });
  } else if (wanted('energy')) out.push(row(energyLabel, await simulate({ ...inputs, autoscaler: energy, policy: 'bamel', seed: SEED })));
  if (wanted('ca')) out.push(row('CA + Metal3 (model)', await simulate({ ...inputs, autoscaler: required(withSpec(inputs.autoscaler, CA_METAL3)), policy: 'bamel', seed: SEED, bootSeconds: REPROVISION_SECONDS })));
  return out;
}

function print(rows: readonly Row[]): void {
  const trace = rows[0]?.trace ?? '';
  const head = ['policy', 'machine-h', 'kWh', 'pending p50/p99/max s', 'cycles (max/machine/day)', 'flaps'];
  const cells = rows.map((r) => [
    r.policy,
    r.machineHours.toFixed(0),
    r.energyKWh === undefined ? '-' : r.energyKWh.toFixed(0),
    r.pending ? `${r.pending.p50.toFixed(0)} / ${r.pending.p99.toFixed(0)} / ${r.pending.max.toFixed(0)}` : '-',
    r.cycles ? `${r.cycles.total} (${r.cycles.maxPerMachinePerDay})` : '-',
    r.flaps === undefined ? '-' : String(r.flaps),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: readonly string[]): string => `| ${c.map((x, i) => x.padEnd(widths[i] as number)).join(' | ')} |`;
  process.stdout.write(`\n${trace}\n${line(head)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |\n${cells.map(line).join('\n')}\n`);
}

const json = process.argv.includes('--json');
// --rows defaults,energy,ca: only those simulations (defaults brings always-on and the oracle).
const rowsArg = process.argv.indexOf('--rows');
const rowsWanted = rowsArg >= 0 ? (process.argv[rowsArg + 1] ?? '').split(',') : ['defaults', 'energy', 'ca'];
// --plots DIR: the defaults row's summary, timeline and chart in DIR/<trace>/.
const plotsArg = process.argv.indexOf('--plots');
const plots = plotsArg >= 0 ? process.argv[plotsArg + 1] : undefined;
function wanted(r: string): boolean {
  return rowsWanted.includes(r);
}
const only = process.argv.indexOf('--trace');
const traces = only >= 0 ? (process.argv[only + 1] ?? '').split(',') : ['diurnal', 'batch', 'spiky'];
for (const trace of traces) {
  const rows = await rowsFor(trace);
  if (json) for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  else print(rows);
}
if (!json) {
  process.stdout.write(
    `\n${energyOptionsInSchema() ? '(not used: the energy options are in the schema) ' : ''}* the energy options (${Object.keys(ENERGY_OPTIONS.scaleDown).join(', ')}, scaleUp.predictive) are not in this build's schema; the row uses ${JSON.stringify(ENERGY_LEANING.scaleDown)}\n` +
      `CA + Metal3 (model): bamel's decisions with a 10-minute scale-down and cooldown, and ${REPROVISION_SECONDS / 60}-minute reprovisioning instead of a boot; not Cluster Autoscaler's code\n`,
  );
}
