import type { ParsedMachine } from '../api/inventory.js';
import type { MachineStatus, ScaleDown } from '../api/v1alpha1/baremetalautoscaler.js';
import { expectedBootSeconds } from './boot-times.js';
import { lastPowerOff } from './wear.js';

/**
 * Break-even power-off, pure. Powering a machine off pays only when it stays off longer than
 * its break-even time:
 *
 *   breakEven = boot energy / idle draw + floor = bootSeconds × bootWatts / idleWatts + floor
 *
 * with bootSeconds the learned boot time, bootWatts the draw while booting (maxWatts, else
 * idleWatts) and idleWatts the idle draw (else the boot draw: breakEven = bootSeconds + floor).
 *
 * Per-machine hysteresis: a power-off is judged once. It was short when demand powered a
 * machine on again (this one or another, for pending pods or pressure) within its break-even
 * time: the capacity it freed was needed back sooner than the power-off could pay. A short
 * one doubles the machine's extra hold (at least its break-even, at most MAX_HOLD_FACTOR ×
 * it); a long one (break-even passed with no such power-on) halves it. The hold is added to
 * scaleDown.unneededSeconds before that machine's next power-off.
 */

export type BreakEvenStatus = NonNullable<MachineStatus['breakEven']>;

export const MAX_HOLD_FACTOR = 4;
/** A hold halved below this is dropped. */
export const MIN_HOLD_SECONDS = 60;

export interface BreakEvenSettings {
  enabled: boolean;
  floorSeconds: number;
  /** scaleDown.minOffSeconds; unset = the machine's break-even time. */
  minOffSeconds?: number;
}

export function breakEvenSettings(sd: ScaleDown): BreakEvenSettings {
  return {
    enabled: sd.breakEven?.enabled ?? true,
    floorSeconds: sd.breakEven?.floorSeconds ?? 60,
    ...(sd.minOffSeconds !== undefined ? { minOffSeconds: sd.minOffSeconds } : {}),
  };
}

/**
 * The machine's idle draw in watts. The inventory's idleWatts today; measured readings
 * replace it here when they are known.
 */
export function idleWattsOf(m: Pick<ParsedMachine, 'power'>): number | undefined {
  return m.power?.idleWatts;
}

/** The draw while booting (POST and OS start run near full draw): maxWatts, else idle. */
export function bootWattsOf(m: Pick<ParsedMachine, 'power'>): number | undefined {
  return m.power?.maxWatts ?? idleWattsOf(m);
}

export function breakEvenSeconds(m: Pick<ParsedMachine, 'power' | 'bootSeconds'>, s: MachineStatus | undefined, floorSeconds: number): number {
  const boot = expectedBootSeconds(m, s);
  const bootW = bootWattsOf(m);
  const idleW = idleWattsOf(m) ?? bootW;
  const ratio = bootW !== undefined && idleW !== undefined && idleW > 0 ? bootW / idleW : 1;
  return Math.ceil(boot * ratio) + floorSeconds;
}

/** The hold after a power-off judged short (grows) or long (decays). */
export function nextHold(hold: number, short: boolean, breakEven: number): number {
  if (short) return Math.min(MAX_HOLD_FACTOR * breakEven, Math.max(breakEven, 2 * hold), 86_400);
  const half = Math.floor(hold / 2);
  return half < MIN_HOLD_SECONDS ? 0 : half;
}

/** The extra seconds this machine must stay unneeded before its next power-off. */
export function holdSeconds(s: MachineStatus | undefined, settings: BreakEvenSettings): number {
  return settings.enabled ? (s?.breakEven?.holdSeconds ?? 0) : 0;
}

/** Whether the machine's last power-off waits for its verdict (short or long). */
function unjudged(s: MachineStatus): number | undefined {
  const off = lastPowerOff(s);
  if (off === undefined || s.breakEven?.lastOffSeconds !== undefined) return undefined;
  return off;
}

/**
 * Every reconcile: break-even time up to date, and a power-off whose break-even time passed
 * without demand coming back judged long (the hold decays).
 */
export function refreshBreakEven(m: ParsedMachine, s: MachineStatus, settings: BreakEvenSettings, now: number): MachineStatus {
  const seconds = breakEvenSeconds(m, s, settings.floorSeconds);
  let be: BreakEvenStatus = { ...(s.breakEven ?? { seconds, holdSeconds: 0 }), seconds };
  const off = unjudged(s);
  if (off !== undefined && now >= off + seconds * 1000) {
    be = { ...be, holdSeconds: nextHold(be.holdSeconds, false, seconds), lastOffSeconds: Math.round((now - off) / 1000) };
  }
  if (s.breakEven && be.seconds === s.breakEven.seconds && be.holdSeconds === s.breakEven.holdSeconds && be.lastOffSeconds === s.breakEven.lastOffSeconds) return s;
  return { ...s, breakEven: be };
}

/** A new power-off: its verdict is pending again. */
export function openPowerOff(s: MachineStatus): MachineStatus {
  if (!s.breakEven) return s;
  const { lastOffSeconds: _l, ...be } = s.breakEven;
  return { ...s, breakEven: be };
}

/**
 * Demand powers machines on now: the machine powered off most recently within its
 * break-even time, not yet judged, was powered off too soon (the one powered on first, if it
 * is such a machine). Returns its name and new status, or nothing.
 */
export function blameShortOff(
  machines: ReadonlyMap<string, MachineStatus>,
  byName: ReadonlyMap<string, ParsedMachine>,
  poweredOn: readonly string[],
  settings: BreakEvenSettings,
  now: number,
): { name: string; status: MachineStatus } | undefined {
  const recent: { name: string; off: number; status: MachineStatus }[] = [];
  for (const [name, s] of machines) {
    const m = byName.get(name);
    const off = unjudged(s);
    // A power-off of this very reconcile (or one still under way) is not judged yet; a
    // quarantined machine (a join timeout) was not powered off to save energy.
    if (!m || off === undefined || off >= now || s.phase === 'PoweringOff' || s.phase === 'Failed' || now >= off + breakEvenSeconds(m, s, settings.floorSeconds) * 1000) continue;
    recent.push({ name, off, status: s });
  }
  recent.sort((a, b) => b.off - a.off || (a.name < b.name ? -1 : 1));
  const best = recent.find((r) => poweredOn.includes(r.name)) ?? recent[0];
  if (!best) return undefined;
  const m = byName.get(best.name) as ParsedMachine;
  const seconds = breakEvenSeconds(m, best.status, settings.floorSeconds);
  const hold = best.status.breakEven?.holdSeconds ?? 0;
  const be: BreakEvenStatus = { seconds, holdSeconds: nextHold(hold, true, seconds), lastOffSeconds: Math.round((now - best.off) / 1000) };
  return { name: best.name, status: { ...best.status, breakEven: be } };
}

/**
 * Until when an Off machine rests (scaleDown.minOffSeconds after its power-off, else its
 * break-even time when break-even is enabled): it is powered on before then only for pods no other machine can host.
 */
export function restingUntil(m: ParsedMachine, s: MachineStatus | undefined, settings: BreakEvenSettings, now: number): number | undefined {
  if (s?.phase !== 'Off' || (!settings.enabled && settings.minOffSeconds === undefined)) return undefined;
  const off = lastPowerOff(s);
  if (off === undefined) return undefined;
  const until = off + (settings.minOffSeconds ?? breakEvenSeconds(m, s, settings.floorSeconds)) * 1000;
  return until > now ? until : undefined;
}
