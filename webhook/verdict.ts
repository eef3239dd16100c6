/**
 * What an admission check decides: the problems that refuse the object, each naming the
 * field and the fix, and the warnings that let it through.
 */

export interface Issue {
  /** The field, as kubectl explain spells it: `spec.minMachines`, `machines.yaml: machines[2] (rack-a-03).bmc.address`. */
  field: string;
  /** What is wrong and how to fix it. */
  message: string;
}

export interface Verdict {
  errors: Issue[];
  warnings: Issue[];
}

export function formatIssue(issue: Issue): string {
  return issue.field === '' ? issue.message : `${issue.field}: ${issue.message}`;
}

/** The message of a refusal: one problem as is; several as a list, every one of them. */
export function denialMessage(errors: readonly Issue[]): string {
  if (errors.length === 1 && errors[0] !== undefined) return formatIssue(errors[0]);
  return `${errors.length} problems:\n${errors.map((e) => `- ${formatIssue(e)}`).join('\n')}`;
}

/**
 * The API server truncates a warning past 256 characters and drops warnings past 4 KiB in
 * all; cut them here so the cut is ours (ending in "...") and the first ones survive.
 */
export const MAX_WARNING_LENGTH = 256;
export const MAX_WARNINGS_TOTAL = 4000;

export function admissionWarnings(warnings: readonly Issue[]): string[] {
  const out: string[] = [];
  let total = 0;
  for (const w of warnings) {
    // Warnings are single-line, printable text.
    let text = formatIssue(w).replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
    if (text.length > MAX_WARNING_LENGTH) text = `${text.slice(0, MAX_WARNING_LENGTH - 3)}...`;
    if (total + text.length > MAX_WARNINGS_TOTAL) {
      out.push(`${warnings.length - out.length} more warnings not shown`);
      break;
    }
    out.push(text);
    total += text.length;
  }
  return out;
}

/** `a, b, c and 4 more`: lists of machines in messages stay readable. */
export function listSome(items: readonly string[], max = 5): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
