import type { MachineStatus } from '../api/v1alpha1/baremetalautoscaler.js';
import type { Blocker } from './blockers.js';

/**
 * Wear limits, pure: each power-off of a machine starts a power cycle; status keeps when the
 * power-offs of the last 24 hours were (`powerCycles: {last24h, powerOffs}`, Unix seconds).
 * A machine with scaleDown.maxPowerCyclesPerDay of them is not powered off again until the
 * oldest leaves the window; among equal scale-down candidates the one with fewer goes first.
 */

export type PowerCycles = NonNullable<MachineStatus['powerCycles']>;

export const DAY_MS = 86_400_000;
/** status.machines[].powerCycles.powerOffs holds at most this many (the bound of maxPowerCyclesPerDay). */
export const MAX_KEPT = 48;

const iso = (ms: number): string => new Date(ms).toISOString();

/** The power-offs of the last 24 hours (ms), oldest first. */
export function powerOffsIn24h(s: MachineStatus | undefined, now: number): number[] {
  return (s?.powerCycles?.powerOffs ?? []).map((t) => t * 1000).filter((t) => t > now - DAY_MS && t <= now);
}

export function cyclesIn24h(s: MachineStatus | undefined, now: number): number {
  return powerOffsIn24h(s, now).length;
}

/** When the machine was last powered off by bamel (ms), if in the last 24 hours. */
export function lastPowerOff(s: MachineStatus | undefined): number | undefined {
  const list = s?.powerCycles?.powerOffs;
  const last = list?.[list.length - 1];
  return last === undefined ? undefined : last * 1000;
}

function cyclesOf(offs: readonly number[]): PowerCycles {
  return { last24h: offs.length, powerOffs: offs.slice(-MAX_KEPT).map((t) => Math.floor(t / 1000)) };
}

/** A power-off starts now. */
export function recordPowerOff(s: MachineStatus, now: number): MachineStatus {
  return { ...s, powerCycles: cyclesOf([...powerOffsIn24h(s, now), now]) };
}

/** The rolling window moved on: power-offs older than 24 hours leave status. */
export function refreshCycles(s: MachineStatus, now: number): MachineStatus {
  if (!s.powerCycles) return s;
  const offs = powerOffsIn24h(s, now);
  if (offs.length === s.powerCycles.powerOffs.length && offs.length === s.powerCycles.last24h) return s;
  if (offs.length === 0) {
    const { powerCycles: _p, ...rest } = s;
    return rest;
  }
  return { ...s, powerCycles: cyclesOf(offs) };
}

/** The blocker of a machine at its limit, and when it lifts; nothing below the limit. */
export function wearBlocker(name: string, s: MachineStatus | undefined, maxPerDay: number, now: number): { blocker: Blocker; until: number } | undefined {
  const offs = powerOffsIn24h(s, now);
  if (offs.length < maxPerDay) return undefined;
  // The limit lifts when enough of the oldest leave the window to go below it.
  const until = (offs[offs.length - maxPerDay] as number) + DAY_MS;
  return {
    blocker: {
      kind: 'WearLimit',
      message: `${name} was powered off ${offs.length} time(s) in the last 24 hours, scaleDown.maxPowerCyclesPerDay is ${maxPerDay}: it stays on until ${iso(until)}`,
    },
    until,
  };
}
