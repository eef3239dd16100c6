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

export interface SimChassisOptions {
  machine: string;
  initialPower: SimPowerState;
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
  private readonly powerListeners = new Set<(event: SimPowerEvent) => void>();
  private readonly stateListeners = new Set<(state: SimPowerState) => void>();

  constructor(opts: SimChassisOptions) {
    this.machine = opts.machine;
    this.settled = opts.initialPower;
    this.log = opts.log;
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
    for (const listener of this.stateListeners) listener(state);
  }
}
