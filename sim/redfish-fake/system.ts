import { createHash, timingSafeEqual } from 'node:crypto';
import { SimChassis, type PowerChange, type PowerDraw, type SimActivity } from '../chassis.js';
import type { SimFaults, SimPowerEvent, SimPowerState, SimulatedBmc } from '../types.js';

/**
 * Vendor behaviours the fake can put on a system, alone or combined:
 * - generic: sessions and Basic auth, ResetType values inline
 * - session-only: Basic auth answers 401; a session is needed
 * - no-session-service: no SessionService (its URLs answer 404): Basic only
 * - sessions-via-service: the root links SessionService but not Links.Sessions
 * - actioninfo-only: ResetType values only through @Redfish.ActionInfo
 * - no-allowable-values: neither inline values nor ActionInfo (clients must try)
 * - task-monitor: Reset answers 202 with a task monitor that finishes after taskMs
 * - conflict-after-off: for conflictWindowMs after a power-off every Reset answers 409 (iDRAC SYS518)
 * - invalid-state-after-off: the same window answers 400 InvalidOperationForSystemState (iLO 5)
 * - already-in-state-conflict: a Reset to the current state answers 409 "already powered on/off"
 * - transitional: PoweringOn/PoweringOff reported for poweringOnMs around a change
 * - session-exhaustion: the first sessionFailures session POSTs answer 503 with Retry-After
 * - not-acceptable-identity: 406 to Accept-Encoding: identity (HPE Gen10 Plus)
 * - no-force-on: ForceOn is not allowed
 * - no-graceful-shutdown: GracefulShutdown is not allowed
 * Power readings: by default the chassis links all three power resources (PowerSubsystem
 * with two supplies, EnvironmentMetrics, the deprecated Power), so a client reads the first;
 * - power-environmentmetrics-only: only EnvironmentMetrics (PowerWatts)
 * - power-deprecated-only: only the deprecated Power (PowerControl[].PowerConsumedWatts)
 * - no-power-reading: the chassis links no power resource at all
 * - bad-power-reading: EnvironmentMetrics only, whose PowerWatts.Reading is a string
 */
export const QUIRK_PROFILES = [
  'generic',
  'session-only',
  'no-session-service',
  'sessions-via-service',
  'actioninfo-only',
  'no-allowable-values',
  'task-monitor',
  'conflict-after-off',
  'invalid-state-after-off',
  'already-in-state-conflict',
  'transitional',
  'session-exhaustion',
  'not-acceptable-identity',
  'no-force-on',
  'no-graceful-shutdown',
  'power-environmentmetrics-only',
  'power-deprecated-only',
  'no-power-reading',
  'bad-power-reading',
] as const;
export type QuirkProfile = (typeof QUIRK_PROFILES)[number];

export interface QuirkTunables {
  /** conflict-after-off, invalid-state-after-off: how long Resets are refused. Default 5000. */
  conflictWindowMs?: number;
  /** session-exhaustion: how many session POSTs answer 503. Default 2. */
  sessionFailures?: number;
  /** Retry-After on 503s and task monitors, in whole seconds. Default 1. */
  retryAfterSeconds?: number;
  /** task-monitor: how long a Reset task runs. Default 1000. */
  taskMs?: number;
}

export interface AddSystemOptions {
  /** The ComputerSystem Id: /redfish/v1/Systems/{id}. */
  id: string;
  machine: string;
  credentials: { username: string; password: string };
  profile?: QuirkProfile | QuirkProfile[];
  initialPower?: SimPowerState;
  /** How long powering on takes (and, with transitional, PoweringOff). Default 0, 300 with transitional. */
  poweringOnMs?: number;
  /** How long the OS takes to shut down on GracefulShutdown; Infinity: it ignores it. Default 0. */
  gracefulShutdownMs?: number;
  quirks?: QuirkTunables;
  /** What the machine draws (reported through its chassis's power resources). */
  draw?: PowerDraw;
}

export const RESET_TYPES = ['On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi'] as const;
export type ResetType = (typeof RESET_TYPES)[number];

const EVENT_ACTIONS: Record<ResetType, string> = {
  On: 'on',
  ForceOn: 'force-on',
  ForceOff: 'force-off',
  GracefulShutdown: 'graceful-off',
  GracefulRestart: 'graceful-restart',
  ForceRestart: 'force-restart',
  PowerCycle: 'cycle',
  Nmi: 'nmi',
};

export interface SystemHooks {
  faultsChanged(system: FakeSystem): void;
  removed(system: FakeSystem): void;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * One simulated machine behind the fake: its credentials, its quirks and faults, and how a
 * Reset moves its chassis (sim/chassis.ts).
 */
export class FakeSystem implements SimulatedBmc {
  readonly id: string;
  readonly machine: string;
  readonly profiles: ReadonlySet<QuirkProfile>;
  readonly poweringOnMs: number;
  readonly gracefulShutdownMs: number;
  readonly tunables: Required<QuirkTunables>;
  private readonly chassis: SimChassis;
  private sessionFailuresLeft: number;
  private currentFaults: SimFaults = {};
  private readonly userDigest: Buffer;
  private readonly passwordDigest: Buffer;

  constructor(
    opts: AddSystemOptions,
    private readonly hooks: SystemHooks,
  ) {
    this.id = opts.id;
    this.machine = opts.machine;
    const profiles = opts.profile === undefined ? [] : Array.isArray(opts.profile) ? opts.profile : [opts.profile];
    this.profiles = new Set(profiles);
    this.poweringOnMs = opts.poweringOnMs ?? (this.profiles.has('transitional') ? 300 : 0);
    this.gracefulShutdownMs = opts.gracefulShutdownMs ?? 0;
    this.tunables = { conflictWindowMs: 5_000, sessionFailures: 2, retryAfterSeconds: 1, taskMs: 1_000, ...opts.quirks };
    this.sessionFailuresLeft = this.tunables.sessionFailures;
    this.chassis = new SimChassis({ machine: opts.machine, initialPower: opts.initialPower ?? 'off', ...(opts.draw ? { draw: opts.draw } : {}) });
    this.userDigest = digest(opts.credentials.username);
    this.passwordDigest = digest(opts.credentials.password);
  }

  get power(): SimPowerState {
    return this.chassis.power;
  }

  get watts(): number {
    return this.chassis.watts;
  }

  setActivity(activity: SimActivity): void {
    this.chassis.setActivity(activity);
  }

  get faults(): Readonly<SimFaults> {
    return this.currentFaults;
  }

  has(profile: QuirkProfile): boolean {
    return this.profiles.has(profile);
  }

  /** Whether these are the system's credentials, compared in constant time. */
  credentialsEqual(username: string, password: string): boolean {
    const userOk = timingSafeEqual(digest(username), this.userDigest);
    const passwordOk = timingSafeEqual(digest(password), this.passwordDigest);
    return userOk && passwordOk;
  }

  /** Whether the BMC accepts these credentials now: under wrongPassword it accepts none. */
  credentialsAccepted(username: string, password: string): boolean {
    return this.credentialsEqual(username, password) && this.currentFaults.wrongPassword !== true;
  }

  /** session-exhaustion: whether this session POST is one of those answered 503. */
  takeSessionFailure(): boolean {
    if (!this.has('session-exhaustion') || this.sessionFailuresLeft <= 0) return false;
    this.sessionFailuresLeft--;
    return true;
  }

  /** PowerState as Redfish reports it now. */
  reportedPowerState(now = Date.now()): 'On' | 'Off' | 'PoweringOn' | 'PoweringOff' {
    const pending = this.chassis.change;
    if (pending === undefined || now < pending.shutdownUntil) return this.chassis.power === 'on' ? 'On' : 'Off';
    if (this.has('transitional')) return pending.to === 'on' ? 'PoweringOn' : 'PoweringOff';
    return this.chassis.power === 'on' ? 'On' : 'Off';
  }

  allowedResetTypes(): ResetType[] {
    return RESET_TYPES.filter((t) => !(t === 'ForceOn' && this.has('no-force-on')) && !(t === 'GracefulShutdown' && this.has('no-graceful-shutdown')));
  }

  /** Whether Resets are refused now, right after a power-off (conflict-after-off, invalid-state-after-off). */
  inConflictWindow(now = Date.now()): boolean {
    return now < this.chassis.lastPowerOffAt + this.tunables.conflictWindowMs;
  }

  /** Whether a Reset of this type would change nothing. */
  alreadyIn(type: ResetType): boolean {
    const target = resetTarget(type);
    if (target === undefined) return false;
    const pending = this.chassis.change;
    if (pending === undefined) return this.chassis.power === target;
    // A ForceOff during a graceful shutdown does change something: it cuts it short.
    return pending.to === target && !(type === 'ForceOff' && pending.graceful);
  }

  /** Carries out an accepted Reset. */
  applyReset(type: ResetType): void {
    const now = Date.now();
    switch (type) {
      case 'On':
      case 'ForceOn':
        this.schedule(type, { to: 'on', shutdownUntil: now, landsAt: now + this.poweringOnMs, graceful: false });
        return;
      case 'ForceOff':
        this.schedule(type, { to: 'off', shutdownUntil: now, landsAt: now + this.transitionMs(), graceful: false });
        return;
      case 'GracefulShutdown': {
        const shutdownUntil = now + this.gracefulShutdownMs;
        this.schedule(type, { to: 'off', shutdownUntil, landsAt: shutdownUntil + this.transitionMs(), graceful: true });
        return;
      }
      case 'GracefulRestart':
      case 'ForceRestart':
      case 'PowerCycle':
        // A restart passes through off without the BMC's power-off bookkeeping.
        this.chassis.set('off', false);
        this.schedule(type, { to: 'on', shutdownUntil: now, landsAt: now + this.poweringOnMs, graceful: false });
        return;
      case 'Nmi':
        return;
    }
  }

  /** Tells the listeners about one Reset request (`type` may be one the fake does not know). */
  emit(type: string, result: SimPowerEvent['result'], detail?: string): void {
    const action = (EVENT_ACTIONS as Record<string, string | undefined>)[type] ?? type;
    this.chassis.emit(action, result, detail);
  }

  onPower(listener: (event: SimPowerEvent) => void): () => void {
    return this.chassis.onPower(listener);
  }

  /** Every change of the settled power state (for simulations that boot a machine). */
  onStateChange(listener: (state: SimPowerState) => void): () => void {
    return this.chassis.onStateChange(listener);
  }

  /** Replaces the faults: what is not given is off. */
  setFaults(faults: SimFaults): Promise<void> {
    this.currentFaults = { ...faults };
    this.hooks.faultsChanged(this);
    return Promise.resolve();
  }

  setPowerDirect(state: SimPowerState): Promise<void> {
    this.chassis.set(state, false);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.chassis.stop();
    this.hooks.removed(this);
    return Promise.resolve();
  }

  private transitionMs(): number {
    return this.has('transitional') ? this.poweringOnMs : 0;
  }

  /** A change started by a Reset of this type, named in the event when it lands later. */
  private schedule(type: ResetType, change: PowerChange): void {
    this.chassis.schedule(change, { landed: (afterMs) => this.emit(type, 'ok', `completed after ${Math.round(afterMs)} ms`) });
  }
}

export function resetTarget(type: ResetType): SimPowerState | undefined {
  if (type === 'On' || type === 'ForceOn') return 'on';
  if (type === 'ForceOff' || type === 'GracefulShutdown') return 'off';
  return undefined;
}

export function isResetType(value: unknown): value is ResetType {
  return typeof value === 'string' && (RESET_TYPES as readonly string[]).includes(value);
}
