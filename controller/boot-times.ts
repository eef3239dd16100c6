import type { ParsedMachine } from '../api/inventory.js';
import type { MachinePhase, MachineStatus } from '../api/v1alpha1/baremetalautoscaler.js';

/**
 * Learned boot times, pure: each machine's power-on request → Node Ready, measured by the
 * lifecycle and kept in status (`boot: {lastSeconds, p90Seconds, samples}`) with a small
 * ring of the recent boots the p90 is computed from. The expected boot time of a machine is
 * its learned p90 once it has booted under bamel, else the inventory's `bootSeconds`.
 */

export type BootStatus = NonNullable<MachineStatus['boot']>;

/** Boots kept for the p90 (status.machines[].boot.recentSeconds). */
export const RECENT_BOOTS = 10;
/** Before anything is known of a machine (no sample, no inventory bootSeconds). */
export const UNKNOWN_BOOT_SECONDS = 300;
/** A boot this much over its expected time draws a warning (before the join timeout). */
export const SLOW_BOOT_FACTOR = 1.5;

const iso = (ms: number): string => new Date(ms).toISOString();

/** The nearest-rank 90th percentile. */
export function p90(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)] as number;
}

/** One more measured boot. */
export function recordBoot(boot: BootStatus | undefined, seconds: number): BootStatus {
  const s = Math.max(0, Math.round(seconds));
  const recent = [...(boot?.recentSeconds ?? []), s].slice(-RECENT_BOOTS);
  return { lastSeconds: s, p90Seconds: p90(recent), samples: (boot?.samples ?? 0) + 1, recentSeconds: recent };
}

/** The machine's expected boot time: learned p90, else the inventory's, else undefined. */
export function learnedBootSeconds(m: Pick<ParsedMachine, 'bootSeconds'> | undefined, s: MachineStatus | undefined): number | undefined {
  if (s?.boot && s.boot.samples > 0) return s.boot.p90Seconds;
  return m?.bootSeconds;
}

/** As learnedBootSeconds, with a cautious guess when nothing is known. */
export function expectedBootSeconds(m: Pick<ParsedMachine, 'bootSeconds'> | undefined, s: MachineStatus | undefined): number {
  return learnedBootSeconds(m, s) ?? UNKNOWN_BOOT_SECONDS;
}

/** A power-on is requested now: the boot in flight starts, with its expected Ready time. */
export function startBoot(s: MachineStatus, m: Pick<ParsedMachine, 'bootSeconds'> | undefined, now: number): MachineStatus {
  const expected = learnedBootSeconds(m, s);
  const base: BootStatus = s.boot ?? { lastSeconds: 0, p90Seconds: 0, samples: 0 };
  return { ...s, boot: { ...base, startedAt: iso(now), ...(expected !== undefined ? { expectedReadyAt: iso(now + expected * 1000) } : {}) } };
}

/**
 * The boot bookkeeping as a machine changes phase: a boot in flight that reaches Ready is
 * measured; one that ends any other way (off, failed, unknown) is dropped unmeasured.
 * Staying in PoweringOn or Joining keeps it.
 */
export function bootOnPhase(boot: BootStatus | undefined, from: MachinePhase, to: MachinePhase, now: number): BootStatus | undefined {
  if (!boot?.startedAt || from === to || to === 'PoweringOn' || to === 'Joining') return boot;
  const { startedAt, expectedReadyAt: _e, ...rest } = boot;
  if (to === 'Ready' && (from === 'Joining' || from === 'PoweringOn')) {
    const started = Date.parse(startedAt);
    if (Number.isFinite(started) && now >= started) return recordBoot(rest, (now - started) / 1000);
  }
  return rest.samples > 0 ? rest : undefined;
}

/**
 * The join timeout's early warning: a machine powering on or joining for longer than
 * SLOW_BOOT_FACTOR × its expected boot time. Returns when to look (if not yet) or what to say.
 */
export function slowBoot(m: Pick<ParsedMachine, 'name' | 'bootSeconds'>, s: MachineStatus, joinTimeoutSeconds: number, now: number): { warnAt: number; message?: string } | undefined {
  if ((s.phase !== 'PoweringOn' && s.phase !== 'Joining') || !s.boot?.startedAt) return undefined;
  const expected = learnedBootSeconds(m, s);
  if (expected === undefined) return undefined;
  const started = Date.parse(s.boot.startedAt);
  const warnAt = started + Math.ceil(expected * SLOW_BOOT_FACTOR * 1000);
  const deadline = started + joinTimeoutSeconds * 1000;
  if (!Number.isFinite(started) || warnAt >= deadline) return undefined;
  if (now < warnAt) return { warnAt };
  const source = s.boot.samples > 0 ? `its p90 over ${s.boot.samples} boot(s)` : 'its inventory bootSeconds';
  return {
    warnAt,
    message: `${m.name} has been booting for ${Math.round((now - started) / 1000)}s, more than ${SLOW_BOOT_FACTOR}× its expected ${expected}s (${source}); it is powered off and quarantined if not Ready by ${iso(deadline)} (join timeout)`,
  };
}
