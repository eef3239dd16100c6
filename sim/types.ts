/**
 * What every simulated BMC of the local datacenter offers to `bamel sim` and to tests,
 * whichever protocol it speaks (IPMI through OpenIPMI's ipmi_sim, Redfish through the
 * project's Redfish fake).
 */

import type { SimActivity } from './chassis.js';

export type SimPowerState = 'on' | 'off';

/** One power request as the BMC received it; `bamel sim` prints each as a JSON line. */
export interface SimPowerEvent {
  machine: string;
  /** on, off (hard), graceful-off, force-off, cycle, reset, ... as the protocol named it */
  action: string;
  /** ok: done; already: the machine was in that state; failed: the BMC reported an error; refused: rejected (auth, quirk) */
  result: 'ok' | 'already' | 'failed' | 'refused';
  /** Power state after the request was handled. */
  state: SimPowerState;
  detail?: string;
}

/** Faults a test can switch on and off per machine. */
export interface SimFaults {
  /** The BMC does not answer at all (nothing listens / packets dropped). */
  unreachable?: boolean;
  /** The BMC rejects the machine's real credentials. */
  wrongPassword?: boolean;
  /** Power-on requests are accepted by the protocol but fail (the machine stays off). */
  powerOnFails?: boolean;
  /** The BMC accepts connections but never answers. */
  hang?: boolean;
  /** The BMC handles each request, and carries it out, this many ms after it arrived (Redfish only). */
  slowMs?: number;
}

export interface SimulatedBmc {
  readonly machine: string;
  readonly power: SimPowerState;
  /** What the machine draws now (sim/chassis.ts), whether or not the BMC can report it. */
  readonly watts: number;
  /** The machine booted or got work (the draw follows). */
  setActivity(activity: SimActivity): void;
  /** Subscribe to power requests. Returns an unsubscribe function. */
  onPower(listener: (event: SimPowerEvent) => void): () => void;
  setFaults(faults: SimFaults): Promise<void>;
  /** Change the power state as a person at the machine would (no BMC request, no event). */
  setPowerDirect(state: SimPowerState): Promise<void>;
  stop(): Promise<void>;
}
