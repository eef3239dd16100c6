import { parseInt64 } from './int64.js';

/** The fields of a V1Taint, or of an inventory machine's taint, that scheduling reads. */
export interface Taint {
  key: string;
  value?: string | undefined;
  effect: string;
}

/** The fields of a V1Toleration that scheduling reads. */
export interface Toleration {
  key?: string | undefined;
  operator?: string | undefined;
  value?: string | undefined;
  effect?: string | undefined;
}

/**
 * The effects kube-scheduler's TaintToleration filter enforces. PreferNoSchedule only
 * lowers a node's score, so a pod that does not tolerate it still fits.
 */
export const BLOCKING_EFFECTS: ReadonlySet<string> = new Set(['NoSchedule', 'NoExecute']);

/**
 * Kubernetes' Toleration.ToleratesTaint: an empty effect matches every effect, an empty key
 * matches every key, Exists matches every value, Equal (the default) the same value, and Gt
 * or Lt compare integer values (taint value greater or less than the toleration's).
 */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  const effect = toleration.effect ?? '';
  if (effect !== '' && effect !== taint.effect) return false;
  const key = toleration.key ?? '';
  if (key !== '' && key !== taint.key) return false;
  const operator = toleration.operator ?? '';
  switch (operator) {
    case '':
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    case 'Gt':
    case 'Lt':
      return compareIntegers(operator, toleration.value ?? '', taint.value ?? '');
    default:
      // An unknown operator is rejected by API validation; kube-scheduler tolerates nothing with it.
      return false;
  }
}

function compareIntegers(operator: 'Gt' | 'Lt', tolerationValue: string, taintValue: string): boolean {
  const bound = parseInt64(tolerationValue);
  const value = parseInt64(taintValue);
  if (bound === undefined || value === undefined) return false;
  return operator === 'Gt' ? value > bound : value < bound;
}

export function toleratesAnyOf(tolerations: readonly Toleration[], taint: Taint): boolean {
  for (const toleration of tolerations) if (toleratesTaint(toleration, taint)) return true;
  return false;
}

/**
 * The taints with one of `effects` (NoSchedule and NoExecute unless given) that no
 * toleration tolerates: empty when the pod may be scheduled as far as taints go.
 */
export function untoleratedTaints(
  tolerations: readonly Toleration[] | undefined,
  taints: readonly Taint[] | undefined,
  effects: Iterable<string> = BLOCKING_EFFECTS,
): Taint[] {
  const effectSet = effects instanceof Set ? (effects as ReadonlySet<string>) : new Set(effects);
  return (taints ?? []).filter((taint) => effectSet.has(taint.effect) && !toleratesAnyOf(tolerations ?? [], taint));
}

/** Kubernetes' Taint.ToString: `key=value:effect`, or `key:effect` without a value. */
export function formatTaint(taint: Taint): string {
  const value = taint.value ?? '';
  return value === '' ? `${taint.key}:${taint.effect}` : `${taint.key}=${value}:${taint.effect}`;
}
