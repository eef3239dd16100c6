import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerStatus, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { EnergyStatus, MachinePower } from '../../api/v1alpha1/energy.js';
import { account, powerEntry, SavingsLedger } from '../energy.js';
import type { ControllerMetrics } from '../metrics.js';
import type { PowerReader } from '../power-readings.js';
import type { Started } from './intents.js';
import type { MachineStates } from './types.js';

/** An interval shorter than this is added to the account only when a machine changed (fewer status writes). */
const MIN_INTERVAL_MS = 60_000;
/** A longer gap between two reconciles (no leader for a while) counts as this long. */
const MAX_GAP_MS = 3_600_000;

export interface EnergyStepInput {
  autoscaler: string;
  selected: readonly ParsedMachine[];
  previous: BareMetalAutoscalerStatus;
  /** The machines as this reconcile leaves them (intents applied). */
  machines: MachineStates;
  now: number;
}

export interface EnergyStepResult {
  machines: Map<string, MachineStatus>;
  energy: EnergyStatus;
  /** Metrics for what was decided; called once the status is written. */
  record: (started: readonly Started[]) => void;
}

/**
 * The energy step: each machine's power entry (its BMC's latest reading, else the
 * inventory's figure) and the account in status.energy, continued from the previous
 * status (across reconciles and leader changes). The readings themselves are taken in the
 * background by the PowerReader; this step starts the due ones and never waits.
 */
export class EnergyStep {
  private readonly ledger = new SavingsLedger();
  private readonly series = new Map<string, Set<string>>();
  /** Autoscaler → machine → the power entry of the last reconcile (the account's previous interval). */
  private readonly entries = new Map<string, Map<string, MachinePower>>();

  constructor(
    private readonly metrics: ControllerMetrics,
    private readonly reader: PowerReader | undefined,
  ) {}

  run(input: EnergyStepInput): EnergyStepResult {
    const { autoscaler, now } = input;
    this.reader?.poll(autoscaler, input.selected);
    const inventory = new Map(input.selected.map((m) => [m.name, m.power]));
    // A large fleet's status carries no power entries (status-compact.ts): the previous
    // interval's draw is what this process last computed, else (a new leader) the inventory's
    // figure for the phase the machine was in.
    const remembered = this.entries.get(autoscaler);
    const previous = (input.previous.machines ?? []).map((m) => (m.power !== undefined ? m : withPower(m, remembered?.get(m.name) ?? powerEntry({ phase: m.phase, since: m.since, reading: undefined, inventory: inventory.get(m.name), maxAgeMs: 0, now }))));
    const before = new Map(previous.map((m) => [m.name, m]));
    const machines = new Map<string, MachineStatus>();
    const entries = new Map<string, MachinePower>();
    let changed = false;
    for (const [name, status] of input.machines) {
      const { power: _old, ...rest } = status;
      const entry = powerEntry({ phase: status.phase, since: status.since, reading: this.reader?.latest(name), inventory: inventory.get(name), maxAgeMs: this.reader?.maxAgeMs ?? 0, now });
      machines.set(name, entry ? { ...rest, power: entry } : rest);
      if (entry) entries.set(name, entry);
      const was = before.get(name);
      if (was?.phase !== status.phase || was.power?.watts !== entry?.watts) changed = true;
    }
    const result = account({
      previous: input.previous.energy,
      machines: previous,
      inventory: (m) => inventory.get(m),
      changed,
      now,
      minIntervalMs: MIN_INTERVAL_MS,
      maxGapMs: MAX_GAP_MS,
    });
    this.entries.set(autoscaler, entries);
    const record = (started: readonly Started[]): void => {
      this.metrics.energyConsumed.inc({ autoscaler }, result.consumedJoules);
      this.metrics.energySaved.inc({ autoscaler }, this.ledger.add(autoscaler, result.savedJoules));
      for (const s of started) if (s.status.phase === 'PoweringOn') this.metrics.powerCycles.inc({ autoscaler, machine: s.machine.name });
      const seen = new Set<string>();
      for (const [name, m] of machines) {
        if (m.power === undefined) continue;
        this.metrics.machinePowerWatts.set({ autoscaler, machine: name }, m.power.watts);
        seen.add(name);
      }
      for (const name of this.series.get(autoscaler) ?? []) if (!seen.has(name)) this.metrics.machinePowerWatts.remove({ autoscaler, machine: name });
      this.series.set(autoscaler, seen);
    };
    return { machines, energy: result.energy, record };
  }

  forget(autoscaler: string): void {
    this.reader?.forgetAutoscaler(autoscaler);
    this.ledger.forget(autoscaler);
    for (const name of this.series.get(autoscaler) ?? []) this.metrics.machinePowerWatts.remove({ autoscaler, machine: name });
    this.series.delete(autoscaler);
    this.entries.delete(autoscaler);
  }
}

function withPower(m: MachineStatus, power: MachinePower | undefined): MachineStatus {
  return power ? { ...m, power } : m;
}
