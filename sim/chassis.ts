/**
 * The chassis of one simulated machine: its power, the one change that may be under way (a
 * power-on that takes a while, an OS shutting down after a soft or graceful off), and the
 * power events its BMC reports. Both BMC simulators drive one of these, ipmi_sim's chassis
 * hook (sim/ipmi-sim.ts) and the Redfish fake's ComputerSystem.Reset (sim/redfish-fake/),
 * so that a soft off behaves the same whichever protocol asked for it; only what each
 * protocol answers about it differs.
 */
import type { SimPowerEvent, SimPowerState } from './types.js';

export interface PowerChange {
  to: SimPowerState;
  /** Until then the OS is still shutting down, and the machine reports its old state. */
  shutdownUntil: number;
  /** When the power changes (Date.now() time); Infinity: never (an OS that ignores a shutdown). */
  landsAt: number;
  /** A graceful shutdown: a hard power off during it still changes something. */
  graceful: boolean;
}

export interface ScheduleOptions {
  /** Called when the change lands later, with how long after the schedule it was due. */
  landed?: (afterMs: number) => void;
  /**
   * Lands from a timer even when it is due at once, so that the BMC answers the request
   * before the power changes. Without it, a change that is due lands at once, without `landed`.
   */
  deferred?: boolean;
}

/** What a machine draws: idle when on with nothing to do, max at full load (and while booting). */
export interface PowerDraw {
  idleWatts: number;
  maxWatts: number;
}

/** Idle servers draw 50-60 % of their peak: the figure that stands in when an inventory gives only one of the two. */
const IDLE_SHARE = 0.55;
const DEFAULT_DRAW: PowerDraw = { idleWatts: 165, maxWatts: 300 };

/** A machine's draw from an inventory's (optional) figures. */
export function drawOf(power: { idleWatts?: number | undefined; maxWatts?: number | undefined } | undefined): PowerDraw {
  const idle = power?.idleWatts;
  const max = power?.maxWatts;
  if (idle !== undefined && max !== undefined) return { idleWatts: idle, maxWatts: max };
  if (max !== undefined) return { idleWatts: Math.round(max * IDLE_SHARE), maxWatts: max };
  if (idle !== undefined) return { idleWatts: idle, maxWatts: Math.round(idle / IDLE_SHARE) };
  return DEFAULT_DRAW;
}

/** What the machine is doing while on: booting (POST, the OS coming up) or running at a load from 0 to 1. */
export interface SimActivity {
  booting?: boolean;
  load?: number;
}

export interface SimChassisOptions {
  machine: string;
  initialPower: SimPowerState;
  /** Default drawOf(undefined). */
  draw?: PowerDraw;
  /** Sees each power event before the listeners do (a simulator's log). */
  log?: (event: SimPowerEvent) => void;
}

interface Pending extends PowerChange {
  timer: NodeJS.Timeout | undefined;
}

export class SimChassis {
  readonly machine: string;
  private settled: SimPowerState;
  private pending: Pending | undefined;
  private lastOffAt = -Infinity;
  private readonly log: ((event: SimPowerEvent) => void) | undefined;
  private readonly draw: PowerDraw;
  private booting = false;
  private load = 0;
  private readonly powerListeners = new Set<(event: SimPowerEvent) => void>();
  private readonly stateListeners = new Set<(state: SimPowerState) => void>();

  constructor(opts: SimChassisOptions) {
    this.machine = opts.machine;
    this.settled = opts.initialPower;
    this.log = opts.log;
    this.draw = opts.draw ?? DEFAULT_DRAW;
  }

  /**
   * What the machine draws now, in watts: nothing when off (a BMC's own standby draw is not
   * the machine's), maxWatts while booting, idle plus the load's share of the rest when on.
   */
  get watts(): number {
    if (this.settled === 'off') return 0;
    if (this.booting) return this.draw.maxWatts;
    return this.draw.idleWatts + (this.draw.maxWatts - this.draw.idleWatts) * this.load;
  }

  /** The machine booted, or got work: what is not given stays as it is. */
  setActivity(activity: SimActivity): void {
    if (activity.booting !== undefined) this.booting = activity.booting;
    if (activity.load !== undefined) this.load = Math.min(1, Math.max(0, activity.load));
  }

  /** The power as it is now (a change under way has not landed). */
  get power(): SimPowerState {
    return this.settled;
  }

  /** The change under way, if any. */
  get change(): Readonly<PowerChange> | undefined {
    return this.pending;
  }

  /** When the BMC last turned the power from on to off (-Infinity: never). */
  get lastPowerOffAt(): number {
    return this.lastOffAt;
  }

  /** Starts a change, replacing the one under way. */
  schedule(change: PowerChange, opts: ScheduleOptions = {}): void {
    this.cancel();
    const delay = change.landsAt - Date.now();
    if (delay <= 0 && opts.deferred !== true) {
      this.set(change.to, true);
      return;
    }
    const pending: Pending = { ...change, timer: undefined };
    if (Number.isFinite(delay)) {
      pending.timer = setTimeout(
        () => {
          if (this.pending !== pending) return;
          this.pending = undefined;
          this.settle(pending.to, true);
          // Listeners follow the power through events: a change that lands later gets its own.
          opts.landed?.(delay);
        },
        Math.max(0, delay),
      );
      pending.timer.unref();
    }
    this.pending = pending;
  }

  /** Sets the power at once, ending a change under way: by the BMC, or (byBmc false) by a person at the machine. */
  set(state: SimPowerState, byBmc: boolean): void {
    this.cancel();
    this.settle(state, byBmc);
  }

  /** Drops the change under way; the power stays as it is. */
  cancel(): void {
    if (this.pending?.timer !== undefined) clearTimeout(this.pending.timer);
    this.pending = undefined;
  }

  /** Tells the log and the listeners about one power request, with the power as it is now. */
  emit(action: string, result: SimPowerEvent['result'], detail?: string): void {
    const event: SimPowerEvent = { machine: this.machine, action, result, state: this.settled, ...(detail === undefined ? {} : { detail }) };
    this.log?.(event);
    for (const listener of this.powerListeners) listener(event);
  }

  onPower(listener: (event: SimPowerEvent) => void): () => void {
    this.powerListeners.add(listener);
    return () => this.powerListeners.delete(listener);
  }

  /** Every change of the power (for simulations that boot a machine). */
  onStateChange(listener: (state: SimPowerState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Drops the change under way and every listener. */
  stop(): void {
    this.cancel();
    this.powerListeners.clear();
    this.stateListeners.clear();
  }

  private settle(state: SimPowerState, byBmc: boolean): void {
    if (byBmc && state === 'off' && this.settled === 'on') this.lastOffAt = Date.now();
    if (this.settled === state) return;
    this.settled = state;
    if (state === 'off') this.booting = false;
    for (const listener of this.stateListeners) listener(state);
  }
}
