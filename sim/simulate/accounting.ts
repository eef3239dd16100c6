import type { ParsedMachine } from '../../api/inventory.js';

/**
 * What the simulation measures, integrated over the virtual clock between events (the
 * state is constant in between):
 *
 *   machine-hours  time each machine is powered on (from the BMC's power-on to its power-off)
 *   energy         watts × time: a booting machine (on, Node not Ready yet) draws its
 *                  maxWatts (POST, fans and firmware run flat out); a machine with a Node
 *                  draws idleWatts + (maxWatts − idleWatts) × min(1, cpu requested by its
 *                  pods / its cpu capacity); a machine that is off draws nothing. A machine
 *                  without `power` in the inventory counts 0 W (a warning says so).
 *   power cycles   power-ons; per machine per UTC day of the virtual clock
 *   flaps          a power-on within 10 minutes of the same machine's power-off
 *   timeline       one sample a minute (the state at the minute's start)
 */

export const FLAP_WINDOW_MS = 10 * 60_000;

export interface MachineState {
  machine: ParsedMachine;
  on: boolean;
  booting: boolean;
  /** cpu milli-units requested by the pods bound to its Node. */
  cpuUsed: number;
}

export interface TimelineSample {
  minute: number;
  /** cpu cores requested by the pods running or waiting. */
  demand: number;
  machinesOn: number;
  oracleMachines: number;
  pendingPods: number;
  watts: number;
}

export interface Sampler {
  demandCores(): number;
  pendingPods(): number;
  oracleAt(seconds: number): number;
}

export function watts(s: MachineState): number {
  if (!s.on) return 0;
  const max = s.machine.power?.maxWatts ?? s.machine.power?.idleWatts ?? 0;
  if (s.booting) return max;
  const idle = s.machine.power?.idleWatts ?? max;
  const cap = Number(s.machine.capacity.cpu ?? 0n);
  const load = cap > 0 ? Math.min(1, s.cpuUsed / cap) : 0;
  return idle + (max - idle) * load;
}

export class Accounting {
  private last: number;
  private machineMs = 0;
  private wattMs = 0;
  private readonly onAt = new Map<string, number>();
  private readonly offAt = new Map<string, number>();
  private readonly cyclesByDay = new Map<string, number>();
  powerOns = 0;
  flaps = 0;
  readonly timeline: TimelineSample[] = [];

  constructor(
    private readonly states: ReadonlyMap<string, MachineState>,
    private readonly sampler: Sampler,
    private readonly start: number,
  ) {
    this.last = start;
  }

  /** The state held from the last call until `t` (virtual ms): integrate it, and sample each minute in between. */
  advance(t: number): void {
    if (t <= this.last) return;
    let on = 0;
    let w = 0;
    for (const s of this.states.values()) {
      if (!s.on) continue;
      on++;
      w += watts(s);
    }
    // A minute sample sees the state at its start: the one held from `last` on.
    let minute = Math.ceil((this.last - this.start) / 60_000);
    while (this.start + minute * 60_000 < t) {
      if (this.start + minute * 60_000 >= this.last) {
        this.timeline.push({
          minute,
          demand: round(this.sampler.demandCores(), 3),
          machinesOn: on,
          oracleMachines: this.sampler.oracleAt(minute * 60),
          pendingPods: this.sampler.pendingPods(),
          watts: Math.round(w),
        });
      }
      minute++;
    }
    const dt = t - this.last;
    this.machineMs += on * dt;
    this.wattMs += w * dt;
    this.last = t;
  }

  poweredOn(name: string, at: number, counted = true): void {
    this.onAt.set(name, at);
    if (!counted) return;
    this.powerOns++;
    const off = this.offAt.get(name);
    if (off !== undefined && at - off < FLAP_WINDOW_MS) this.flaps++;
    const key = `${name}/${Math.floor((at - this.start) / 86_400_000)}`;
    this.cyclesByDay.set(key, (this.cyclesByDay.get(key) ?? 0) + 1);
  }

  poweredOff(name: string, at: number): void {
    this.offAt.set(name, at);
  }

  maxCyclesPerMachinePerDay(): number {
    return Math.max(0, ...this.cyclesByDay.values());
  }

  machineHours(): number {
    return this.machineMs / 3_600_000;
  }

  energyKWh(): number {
    return this.wattMs / 3_600_000 / 1000;
  }
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The q-quantile (0..1) of sorted values, nearest rank; 0 when there are none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}
