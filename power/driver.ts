import type { BmcAddress } from './address.js';
import type { PowerReadingResult } from './reading.js';

export type PowerState = 'on' | 'off';

export interface PowerResult {
  /** The power state the BMC reports after the operation. */
  state: PowerState;
  /** The machine already was in the requested state: nothing was changed. */
  alreadyInState: boolean;
  /** What was sent: "On", "GracefulShutdown", "ForceOff", "chassis power on", ... */
  method: string;
  durationMs: number;
}

export interface PowerOffOptions {
  /** How long to wait for a graceful shutdown before forcing the power off. */
  gracefulTimeoutMs?: number;
  /** Skip the graceful shutdown. */
  force?: boolean;
}

export interface OperationOptions {
  signal?: AbortSignal;
  /**
   * Called immediately before each request that changes the machine's power (a reset, an
   * ipmitool power command); throws to refuse it. The controller's leader passes a check
   * that it still holds its lease with a margin (fencing): a process paused past its lease
   * and resumed sends nothing.
   */
  fence?: () => void;
}

/**
 * One machine's BMC. Implementations: RedfishDriver, IpmiDriver. `powerOn` and `powerOff`
 * return once the BMC reports the requested state (or throw a typed BmcError); asking
 * for the state the machine is already in succeeds with `alreadyInState`.
 */
export interface PowerDriver {
  readonly kind: 'redfish' | 'ipmi';
  /** The BMC endpoint (scheme://host:port), for logs and breaker keys. Never holds credentials. */
  readonly endpoint: string;
  status(opts?: OperationOptions): Promise<PowerState>;
  powerOn(opts?: OperationOptions): Promise<PowerResult>;
  powerOff(opts?: PowerOffOptions & OperationOptions): Promise<PowerResult>;
  /**
   * What the machine draws, as the BMC reports it, or why it reports nothing (a
   * NoPowerReading, not an error). Drivers without readings leave it out. Callers read on a
   * slow cadence (sensors rarely update faster than once a second, BMCs are small).
   */
  reading?(opts?: OperationOptions): Promise<PowerReadingResult>;
  /** Releases sessions and connections. */
  close(): Promise<void>;
}

export interface DriverTimeouts {
  /** TCP connect (Redfish) or one ipmitool attempt. */
  connectMs: number;
  /** One request's answer. */
  requestMs: number;
  /** Until the BMC reports the requested power state. */
  operationMs: number;
}

export const DEFAULT_TIMEOUTS: DriverTimeouts = { connectMs: 5_000, requestMs: 20_000, operationMs: 300_000 };

export function endpointOf(address: BmcAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${address.scheme}://${host}:${address.port}`;
}
