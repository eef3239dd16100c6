import type { BareMetalAutoscalerStatus, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { packLearned, unpackLearned } from './learned-codec.js';

/**
 * The status as it is written: per-machine entries without what carries no information, so
 * that 10,000 machines fit well under etcd's 1.5 MiB request limit (bench/status-size.bench.ts).
 * Pure, and idempotent (the status read back compacts to itself, so an unchanged state is not
 * written again). Every field keeps its name and meaning; what is left out is either a
 * default the readers already assume, derived again each reconcile, or kept elsewhere:
 *
 * - timestamps at second precision (floored: a phase never looks older than it is);
 * - `failures` 0, and `powerCyclesToday`/`powerCyclesDay` of a day that is over;
 * - `reason`/`message` of machines at rest for the routine reason (Off: PoweredOff; Ready:
 *   Joined, NodeReady): the events said them;
 * - `breakEven` without a hold (its `seconds` is derived from boot time and draw every reconcile);
 * - in a fleet larger than LARGE_FLEET_MACHINES: `power` (the readings are in the metric
 *   bamel_machine_power_watts, the totals in status.energy), and the `boot`, `breakEven` and
 *   `powerCycles` of the machines at rest, packed into status.learned (learned-codec.ts);
 * - `blockers`: one line (the first reason, and how many more) for the BLOCKERS_SHOWN machines
 *   closest to a scale-down; status.blockedMachines counts them all.
 */

/** Above this many machines, power readings stay out of status and learned state is packed. */
export const LARGE_FLEET_MACHINES = 500;
/** Machines whose scale-down blockers status lists. */
export const BLOCKERS_SHOWN = 20;
/** The one line of blockers a machine keeps. */
export const BLOCKER_LINE_MAX = 200;

/** The reasons machines at rest usually have: nothing to tell (an aborted drain or power-off, a machine powered by hand is). */
const ROUTINE: Partial<Record<MachineStatus['phase'], readonly string[]>> = { Off: ['PoweredOff'], Ready: ['Joined', 'NodeReady'] };

/** An RFC 3339 time at second precision (`2026-12-07T12:00:00Z`); anything unparsable as it was. */
export function toSeconds(time: string): string {
  const ms = Date.parse(time);
  if (!Number.isFinite(ms)) return time;
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

export function compactStatus(given: BareMetalAutoscalerStatus, now: number): BareMetalAutoscalerStatus {
  const status = unpackLearned(given);
  const machines = status.machines;
  if (machines === undefined) return status;
  const today = new Date(now).toISOString().slice(0, 10);
  const large = machines.length > LARGE_FLEET_MACHINES;
  const blocked = machines.filter((m) => (m.blockers?.length ?? 0) > 0);
  const shown = new Set(closestToScaleDown(blocked).slice(0, BLOCKERS_SHOWN).map((m) => m.name));
  const compacted = machines.map((m) => compactMachine(m, { today, withPower: !large, blockers: shown.has(m.name) }));
  const out: BareMetalAutoscalerStatus = { ...status, machines: compacted };
  if (large) {
    const packed = packLearned(compacted);
    out.machines = packed.machines;
    if (packed.learned !== undefined) out.learned = packed.learned;
  }
  if (blocked.length > 0 || status.blockedMachines !== undefined) out.blockedMachines = blocked.length;
  return out;
}

interface MachineContext {
  today: string;
  withPower: boolean;
  blockers: boolean;
}

function compactMachine(s: MachineStatus, c: MachineContext): MachineStatus {
  const { reason, message, failures, powerCyclesToday, powerCyclesDay, blockers, breakEven, power, ...rest } = s;
  const m: MachineStatus = { ...rest, since: toSeconds(s.since) };
  if (s.operation) m.operation = { ...s.operation, startedAt: toSeconds(s.operation.startedAt) };
  if (reason === undefined || !ROUTINE[s.phase]?.includes(reason)) {
    if (reason !== undefined) m.reason = reason;
    if (message !== undefined) m.message = message;
  }
  if (s.retryAfter !== undefined) m.retryAfter = toSeconds(s.retryAfter);
  if (failures !== undefined && failures > 0) m.failures = failures;
  if (powerCyclesDay === c.today && powerCyclesToday !== undefined && powerCyclesToday > 0) {
    m.powerCyclesToday = powerCyclesToday;
    m.powerCyclesDay = powerCyclesDay;
  }
  if (c.blockers && blockers !== undefined && blockers.length > 0) m.blockers = [blockerLine(blockers)];
  if (s.unneededSince !== undefined) m.unneededSince = toSeconds(s.unneededSince);
  if (s.drain) m.drain = { ...s.drain, startedAt: toSeconds(s.drain.startedAt), deadline: toSeconds(s.drain.deadline) };
  if (c.withPower && power) m.power = { ...power, observedAt: toSeconds(power.observedAt) };
  if (s.boot) {
    const { startedAt, expectedReadyAt, ...boot } = s.boot;
    m.boot = { ...boot, ...(startedAt !== undefined ? { startedAt: toSeconds(startedAt) } : {}), ...(expectedReadyAt !== undefined ? { expectedReadyAt: toSeconds(expectedReadyAt) } : {}) };
  }
  if (breakEven && breakEven.holdSeconds > 0) m.breakEven = breakEven;
  return m;
}

/** The first blocker, shortened, and how many more there are. */
export function blockerLine(blockers: readonly string[]): string {
  const first = blockers[0] ?? '';
  const more = blockers.length > 1 ? ` (+${blockers.length - 1} more)` : '';
  const room = BLOCKER_LINE_MAX - more.length;
  return `${first.length > room ? `${first.slice(0, room - 3)}...` : first}${more}`;
}

/** Next first, then Candidates, then the longest unneeded; by name among equals. */
function closestToScaleDown(machines: readonly MachineStatus[]): MachineStatus[] {
  const rank = (m: MachineStatus): number => (m.disruption === 'Next' ? 0 : m.disruption === 'Candidate' ? 1 : m.unneededSince !== undefined ? 2 : 3);
  const since = (m: MachineStatus): number => (m.unneededSince !== undefined ? Date.parse(m.unneededSince) : Infinity);
  return [...machines].sort((a, b) => rank(a) - rank(b) || since(a) - since(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
