import type { Condition } from '../api/v1alpha1/baremetalautoscaler.js';

export type ConditionType = 'Ready' | 'InventoryValid' | 'ScalingLimited' | 'BMCDegraded' | 'StatusTrimmed';

export interface ConditionInput {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * Sets a condition the kubebuilder way: lastTransitionTime moves only when the status
 * changes; reason, message and observedGeneration are always refreshed.
 */
export function setCondition(conditions: Condition[], input: ConditionInput, generation: number, now: Date): Condition[] {
  const existing = conditions.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message.slice(0, 32768),
    observedGeneration: generation,
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : now.toISOString(),
  };
  const rest = conditions.filter((c) => c.type !== input.type);
  return [...rest, next].sort((a, b) => a.type.localeCompare(b.type));
}

export function conditionStatus(conditions: Condition[] | undefined, type: ConditionType): Condition['status'] | undefined {
  return conditions?.find((c) => c.type === type)?.status;
}
