/**
 * Energy: each machine's draw (a BMC reading, else the inventory's figures by phase) and
 * the running account in status.energy. Pure; reconcile/energy.ts applies it.
 *
 * The account adds, for each interval between two reconciles that wrote it, what each
 * machine drew at the start of the interval times its length (a left Riemann sum over
 * status.machines[].power):
 * - consumed: Σ watts × Δt over every machine;
 * - saved: Σ idleWatts × Δt over the machines that were Off (what they would have drawn
 *   idle, had bamel kept them on), minus Σ watts × Δt over the machines that were booting
 *   (PoweringOn, Joining: the cost of their power cycles, boot time × draw while booting).
 * An interval longer than maxGapMs (the manager was down) counts as maxGapMs.
 */
import type { EnergyMethod, EnergyStatus, MachinePower, PowerSource } from '../api/v1alpha1/energy.js';
import type { MachinePhase, MachineStatus } from '../api/v1alpha1/baremetalautoscaler.js';
import type { PowerReading } from '../power/reading.js';

export type { MachinePower };

/** The inventory's power figures of a machine (both optional there). */
export interface InventoryPower {
  idleWatts?: number | undefined;
  maxWatts?: number | undefined;
}

const JOULES_PER_KWH = 3_600_000;
const BOOTING: readonly MachinePhase[] = ['PoweringOn', 'Joining'];
const ON: readonly MachinePhase[] = ['Ready', 'Draining', 'PoweringOff'];

/**
 * What the inventory says a machine in this phase draws: nothing when off, maxWatts while
 * booting (POST runs fans and disks at full tilt), idleWatts when on; each figure stands
 * in for the other when only one is given. Undefined when the phase says nothing about
 * the power (Unknown, Failed) or the inventory gives no figure.
 */
export function inventoryWatts(phase: MachinePhase, power: InventoryPower | undefined): number | undefined {
  if (phase === 'Off') return 0;
  if (BOOTING.includes(phase)) return power?.maxWatts ?? power?.idleWatts;
  if (ON.includes(phase)) return power?.idleWatts ?? power?.maxWatts;
  return undefined;
}

export interface PowerEntryInput {
  phase: MachinePhase;
  /** When the machine entered its phase (status since). */
  since: string;
  /** The last reading of its BMC, if one was taken. */
  reading: PowerReading | undefined;
  inventory: InventoryPower | undefined;
  /** A reading older than this is not used (the BMC stopped answering). */
  maxAgeMs: number;
  now: number;
}

/**
 * The status.machines[].power entry: the BMC's reading while it is fresh and was taken in
 * the machine's present phase, else the inventory's figure with source inventory.
 */
export function powerEntry(input: PowerEntryInput): MachinePower | undefined {
  const { reading, phase, since } = input;
  const sinceMs = Date.parse(since);
  const readAt = reading?.observedAt.getTime();
  if (reading && readAt !== undefined && input.now - readAt <= input.maxAgeMs && !(readAt < sinceMs)) {
    return { watts: round(reading.watts, 1), observedAt: reading.observedAt.toISOString(), source: reading.source };
  }
  const watts = inventoryWatts(phase, input.inventory);
  if (watts === undefined) return undefined;
  return { watts, observedAt: since, source: 'inventory' };
}

export interface AccountInput {
  previous: EnergyStatus | undefined;
  /** The machines as the previous status left them (their phase and power through the interval). */
  machines: readonly MachineStatus[];
  inventory: (machine: string) => InventoryPower | undefined;
  /** Whether a machine's phase or draw changed in this reconcile (the interval ends now, whatever its length). */
  changed: boolean;
  now: number;
  /** A shorter interval is not added unless something changed (fewer status writes). */
  minIntervalMs: number;
  maxGapMs: number;
}

export interface AccountResult {
  energy: EnergyStatus;
  /** What this interval added, in joules (for the counters). */
  consumedJoules: number;
  savedJoules: number;
}

/** The energy account after this reconcile: the previous one plus the interval since its updatedAt. */
export function account(input: AccountInput): AccountResult {
  const nowIso = new Date(input.now).toISOString();
  const prev = input.previous;
  if (prev === undefined) {
    return { energy: { since: nowIso, consumedKWh: 0, savedKWh: 0, method: methodOf(input.machines), updatedAt: nowIso }, consumedJoules: 0, savedJoules: 0 };
  }
  const elapsed = input.now - Date.parse(prev.updatedAt);
  if (!(elapsed > 0) || (elapsed < input.minIntervalMs && !input.changed)) return { energy: prev, consumedJoules: 0, savedJoules: 0 };
  const seconds = Math.min(elapsed, input.maxGapMs) / 1000;
  let consumed = 0;
  let saved = 0;
  for (const m of input.machines) {
    const watts = m.power?.watts;
    if (watts !== undefined) consumed += watts * seconds;
    if (m.phase === 'Off') saved += (input.inventory(m.name)?.idleWatts ?? 0) * seconds;
    else if (BOOTING.includes(m.phase) && watts !== undefined) saved -= watts * seconds;
  }
  return {
    energy: {
      since: prev.since,
      consumedKWh: round(prev.consumedKWh + consumed / JOULES_PER_KWH, 6),
      savedKWh: round(prev.savedKWh + saved / JOULES_PER_KWH, 6),
      method: methodOf(input.machines),
      updatedAt: nowIso,
    },
    consumedJoules: consumed,
    savedJoules: saved,
  };
}

/** measured when every machine with a draw had a BMC reading, inventory when none had, else mixed. */
export function methodOf(machines: readonly MachineStatus[]): EnergyMethod {
  const sources = new Set<PowerSource>(machines.flatMap((m) => (m.power ? [m.power.source] : [])));
  const inventory = sources.has('inventory');
  if (!inventory && sources.size > 0) return 'measured';
  return inventory && sources.size > 1 ? 'mixed' : 'inventory';
}

/**
 * A counter of net savings that never goes down (Prometheus counters may not): a power
 * cycle's cost is owed, and paid back from the next savings before the counter moves on.
 * The counter is the highest net saving reached since the process started.
 */
export class SavingsLedger {
  private readonly owed = new Map<string, number>();

  /** How much the counter moves for this interval's net saving (≥ 0). */
  add(key: string, joules: number): number {
    const balance = joules - (this.owed.get(key) ?? 0);
    if (balance >= 0) {
      this.owed.delete(key);
      return balance;
    }
    this.owed.set(key, -balance);
    return 0;
  }

  forget(key: string): void {
    this.owed.delete(key);
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
