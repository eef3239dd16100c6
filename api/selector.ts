import type { MachineSelector } from './v1alpha1/baremetalautoscaler.js';

/** The shape both machine selectors and Kubernetes LabelSelectors have. */
export interface LabelSelectorLike {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: { key: string; operator: string; values?: string[] | undefined }[] | undefined;
}

/** Kubernetes LabelSelector semantics; an empty selector selects all, an unknown operator nothing. */
export function labelSelectorMatches(selector: LabelSelectorLike, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        if (!has || !(req.values ?? []).includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && (req.values ?? []).includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        // An operator the API server would have refused: select nothing rather than everything.
        return false;
    }
  }
  return true;
}

/** A machine selector over a machine's inventory labels; none or empty selects all. */
export function selectorMatches(selector: MachineSelector | undefined, labels: Record<string, string>): boolean {
  return selector === undefined || labelSelectorMatches(selector, labels);
}

/** Words for messages: `rack=b, class in (gpu,compute)`. */
export function describeSelector(selector: MachineSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const r of selector?.matchExpressions ?? []) {
    if (r.operator === 'Exists') parts.push(r.key);
    else if (r.operator === 'DoesNotExist') parts.push(`!${r.key}`);
    else parts.push(`${r.key} ${r.operator === 'In' ? 'in' : 'notin'} (${(r.values ?? []).join(',')})`);
  }
  return parts.length > 0 ? parts.join(', ') : 'all machines';
}
