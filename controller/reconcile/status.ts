import type { ParsedMachine } from '../../api/inventory.js';
import { formatMilli } from '../../api/quantity.js';
import type { BareMetalAutoscalerStatus, Condition, MachineStatus, ScaleEvent } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { BmcHealth } from '../../power/pool.js';
import { setCondition } from '../conditions.js';
import type { ScaleUpDecision } from '../decide.js';
import type { CategoryReading } from '../pressure.js';
import type { ResourceVector } from '../scoring.js';
import type { MachineStates } from './types.js';

/**
 * Status: what the reconcile found and decided, as the status subresource says it (machines,
 * counts, capacity, pressure, conditions). Pure; status-writer.ts writes it.
 */

export interface StatusInput {
  generation: number;
  /** The conditions so far (InventoryValid already set by this reconcile). */
  conditions: Condition[];
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  /** Set while the autoscaler is deleted with deletionPolicy PowerOff and machines keep it. */
  deletionBlocked: readonly string[];
  deleting: boolean;
  dryRun: boolean;
  decision: ScaleUpDecision;
  /** BMC health of the selected machines (degraded ones only). */
  degraded: { machine: string; health: BmcHealth }[];
  unschedulablePods: number;
  readings: readonly CategoryReading[];
  lastScaleEvent: ScaleEvent | undefined;
  lastScaleDownFailure: BareMetalAutoscalerStatus['lastScaleDownFailure'];
  now: number;
  /** The energy account (reconcile/energy.ts). */
  energy?: BareMetalAutoscalerStatus['energy'];
}

/** Degraded BMCs spelled out in the BMCDegraded message; the rest are counted. */
const DEGRADED_SHOWN = 20;

export function buildStatus(input: StatusInput): BareMetalAutoscalerStatus {
  const { generation, decision } = input;
  const nowDate = new Date(input.now);
  const machines = [...input.machines.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const count = (phases: string[]): number => machines.filter((m) => phases.includes(m.phase)).length;
  const byName = new Map(input.selected.map((m) => [m.name, m]));
  const capacityOf = (phases: string[]): Record<string, string> => capacity(machines, byName, phases);
  let conditions = input.conditions;
  if (input.deletionBlocked.length > 0) {
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'DeletionBlocked', message: input.deletionBlocked.join('; ').slice(0, 32000) }, generation, nowDate);
  }
  conditions = setCondition(
    conditions,
    input.degraded.length > 0
      ? {
          type: 'BMCDegraded',
          status: 'True',
          reason: 'CircuitOpen',
          // The first few in full: a fleet of thousands with its BMC network down must still fit the message's 32 KiB.
          message: `${input.degraded
            .slice(0, DEGRADED_SHOWN)
            .map((d) => `${d.machine}: ${d.health.credentialsRefused ? 'the BMC refused its credentials, ' : ''}${d.health.consecutiveFailures} failures (last ${d.health.lastFailure ?? '?'}), next try ${d.health.retryAt?.toISOString() ?? '?'}`)
            .join('; ')}${input.degraded.length > DEGRADED_SHOWN ? `; and ${input.degraded.length - DEGRADED_SHOWN} more` : ''}`.slice(0, 32768),
        }
      : { type: 'BMCDegraded', status: 'False', reason: 'Healthy', message: 'every BMC answered its last request' },
    generation,
    nowDate,
  );
  const limited = decision.limitedBy;
  conditions = setCondition(
    conditions,
    limited
      ? { type: 'ScalingLimited', status: 'True', reason: limitReason(limited), message: `${decision.waiting.length} pending pod(s) wait: ${limited}` }
      : { type: 'ScalingLimited', status: 'False', reason: 'WithinLimits', message: 'no limit holds back a scale-up' },
    generation,
    nowDate,
  );
  if (!(input.deleting && conditions.some((c) => c.type === 'Ready' && c.reason === 'DeletionBlocked' && c.status === 'False'))) {
    conditions = setCondition(
      conditions,
      input.dryRun
        ? { type: 'Ready', status: 'True', reason: 'DryRun', message: dryRunMessage(decision) }
        : {
            type: 'Ready',
            status: 'True',
            reason: 'Reconciled',
            message: `${count(['Ready'])} Ready, ${count(['PoweringOn', 'Joining'])} pending, ${count(['Draining', 'PoweringOff'])} scaling down, ${count(['Off'])} off`,
          },
      generation,
      nowDate,
    );
  }
  const last = input.lastScaleEvent;
  return {
    observedGeneration: generation,
    readyMachines: count(['Ready']),
    pendingMachines: count(['PoweringOn', 'Joining']),
    offMachines: count(['Off']),
    totalMachines: input.selected.length,
    onlineCapacity: capacityOf(['Ready']),
    pendingCapacity: capacityOf(['PoweringOn', 'Joining']),
    unschedulablePods: input.unschedulablePods,
    pressure: input.readings.map((r) => ({ category: r.category, level: r.level, ratePerMinute: r.ratePerMinute, pressured: r.pressured, ...(r.reason ? { reason: r.reason } : {}) })),
    machines,
    conditions,
    ...(last ? { lastScaleEvent: last, lastScaleTime: last.time } : {}),
    ...(input.lastScaleDownFailure ? { lastScaleDownFailure: input.lastScaleDownFailure } : {}),
    ...(input.energy ? { energy: input.energy } : {}),
  };
}

/** The summed capacity of the machines in these phases, as quantities. */
function capacity(machines: readonly MachineStatus[], byName: ReadonlyMap<string, ParsedMachine>, phases: string[]): Record<string, string> {
  const total: ResourceVector = {};
  for (const s of machines) {
    const m = byName.get(s.name);
    if (!m || !phases.includes(s.phase)) continue;
    for (const [r, v] of Object.entries(m.capacity)) total[r] = (total[r] ?? 0n) + v;
  }
  return Object.fromEntries(Object.entries(total).map(([r, v]) => [r, formatMilli(v, r === 'cpu' ? 'cpu' : r === 'memory' || r === 'ephemeral-storage' ? 'bytes' : 'count')]));
}

/** The ScalingLimited reason for a limit's words. */
export function limitReason(why: string): string {
  if (why.startsWith('maxMachines')) return 'MaxMachines';
  if (why.startsWith('maxConcurrentPowerOns')) return 'MaxConcurrentPowerOns';
  if (why.startsWith('cluster-wide')) return 'ClusterCap';
  if (why.startsWith('scale-up cooldown')) return 'Cooldown';
  if (why.startsWith('waiting for the power state')) return 'ReadingPowerStates';
  return 'NoCandidate';
}

function dryRunMessage(d: ScaleUpDecision): string {
  if (d.powerOn.length === 0) return 'dry run: no machine would be powered on';
  return `dry run: would power on ${d.powerOn.map((c) => `${c.machine} (${c.reason})`).join(', ')}`;
}
