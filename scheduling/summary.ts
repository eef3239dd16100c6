import type { Reason, Verdict } from './feasibility.js';
import { formatResource } from './resources.js';

/**
 * One line for an event saying why a pod fits none of the machines. Thousands of machines
 * usually fail for a handful of reasons, so machines are grouped by reason and a group's
 * names are shortened to `prefix-*` where that is exact.
 */

export interface MachineVerdict {
  machine: string;
  verdict: Verdict;
}

export interface SummaryOptions {
  /** The longest result in UTF-8 bytes; an event message holds at most 1 KiB. */
  maxBytes?: number;
}

export const EVENT_MESSAGE_MAX_BYTES = 1024;
/** Names listed per group before the rest are counted. */
const MAX_NAMES_PER_GROUP = 5;
const NAME_ORDER = new Intl.Collator('en', { numeric: true });

interface Group {
  names: string[];
  reasonLists: (readonly Reason[])[];
}

/**
 * `rack-b-*: taint gpu=true:NoSchedule not tolerated; rack-a-01: insufficient memory (needs
 * 64Gi, has 32Gi free of 32Gi)`. Pass every machine that was checked, feasible ones too:
 * `rack-b-*` claims that all machines named rack-b-… share the reasons, which only holds if
 * the summary sees them all. Largest groups come first; what does not fit is counted
 * ("… and 12 more machines"). Empty when no machine is infeasible.
 */
export function summarizeInfeasible(results: readonly MachineVerdict[], options: SummaryOptions = {}): string {
  const maxBytes = options.maxBytes ?? EVENT_MESSAGE_MAX_BYTES;
  const groups = groupByReasons(results);
  const everyName = new Set(results.map((result) => result.machine));
  const universe = countPrefixes(everyName);
  const parts = groups.map((group) => ({ text: `${formatNames(group.names, universe)}: ${groupText(group)}`, machines: group.names.length }));
  return joinWithinBudget(parts, maxBytes);
}

function groupByReasons(results: readonly MachineVerdict[]): Group[] {
  const byKey = new Map<string, Group>();
  for (const { machine, verdict } of results) {
    if (verdict.feasible) continue;
    const key = verdict.reasons.map(reasonKey).join('\n');
    let group = byKey.get(key);
    if (group === undefined) byKey.set(key, (group = { names: [], reasonLists: [] }));
    group.names.push(machine);
    group.reasonLists.push(verdict.reasons);
  }
  const firstName = (group: Group): string => group.names.reduce((first, name) => (NAME_ORDER.compare(name, first) < 0 ? name : first));
  return [...byKey.values()].sort((a, b) => b.names.length - a.names.length || NAME_ORDER.compare(firstName(a), firstName(b)));
}

/** The part of a reason that is the same on every machine failing for it. */
function reasonKey(reason: Reason): string {
  switch (reason.kind) {
    case 'nodeSelector':
      return `node selector ${reason.key}=${reason.want} does not match`;
    case 'affinity':
      return `required node affinity: ${reason.requirement}`;
    case 'resource':
      return `insufficient ${reason.resource} (needs ${formatResource(reason.resource, reason.needs)})`;
    default:
      return reason.message;
  }
}

/** Each reason's full message when the machines agree on it, else what they share. */
function groupText(group: Group): string {
  const [first = []] = group.reasonLists;
  return first
    .map((reason, i) => {
      const variants = group.reasonLists.map((reasons) => reasons[i] ?? reason);
      if (variants.every((variant) => variant.message === reason.message)) return reason.message;
      if (reason.kind === 'resource') {
        const mostFree = variants.reduce((most, variant) => (variant.kind === 'resource' && variant.free > most ? variant.free : most), 0n);
        return `insufficient ${reason.resource} (needs ${formatResource(reason.resource, reason.needs)}, has at most ${formatResource(reason.resource, mostFree)} free)`;
      }
      return reasonKey(reason);
    })
    .join(', ');
}

// ---------------------------------------------------------------------------------------
// Names

/** `rack-b-07` → `rack-`, `rack-b-`: the prefixes a wildcard may stand for. */
function prefixesOf(name: string): string[] {
  const prefixes: string[] = [];
  for (let i = 1; i < name.length - 1; i++) {
    if (name[i] === '-' || name[i] === '.') prefixes.push(name.slice(0, i + 1));
  }
  return prefixes;
}

function countPrefixes(names: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of names) for (const prefix of prefixesOf(name)) counts.set(prefix, (counts.get(prefix) ?? 0) + 1);
  return counts;
}

/**
 * The shortest prefix standing for two or more names of the group and for no machine
 * outside it; names without one are listed as they are.
 */
function formatNames(names: readonly string[], universe: ReadonlyMap<string, number>): string {
  const unique = [...new Set(names)].sort(NAME_ORDER.compare);
  const inGroup = countPrefixes(unique);
  const tokens: { text: string; machines: number }[] = [];
  const chosen: string[] = [];
  for (const name of unique) {
    if (chosen.some((prefix) => name.startsWith(prefix))) continue;
    const prefix = prefixesOf(name).find((p) => {
      const count = inGroup.get(p) ?? 0;
      return count >= 2 && count === universe.get(p);
    });
    if (prefix === undefined) {
      tokens.push({ text: name, machines: 1 });
    } else {
      chosen.push(prefix);
      tokens.push({ text: `${prefix}*`, machines: inGroup.get(prefix) ?? 0 });
    }
  }
  const shown = tokens.slice(0, MAX_NAMES_PER_GROUP).map((token) => token.text);
  const hidden = tokens.slice(MAX_NAMES_PER_GROUP).reduce((sum, token) => sum + token.machines, 0);
  return hidden === 0 ? shown.join(', ') : `${shown.join(', ')} (+${hidden} more)`;
}

// ---------------------------------------------------------------------------------------
// Length

const SEPARATOR = '; ';
const ELLIPSIS = '…';

function moreMachines(count: number): string {
  return `${ELLIPSIS} and ${count} more machine${count === 1 ? '' : 's'}`;
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function joinWithinBudget(parts: readonly { text: string; machines: number }[], maxBytes: number): string {
  const total = parts.reduce((sum, part) => sum + part.machines, 0);
  // Room for the largest count the tail could name, so that accepting a part never
  // leaves too little for it.
  const reserve = byteLength(SEPARATOR + moreMachines(total));
  let out = '';
  let left = total;
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    const next = out === '' ? part.text : out + SEPARATOR + part.text;
    if (byteLength(next) + (last ? 0 : reserve) <= maxBytes) {
      out = next;
      left -= part.machines;
      continue;
    }
    if (out === '') {
      // Even the largest group is too long: show as much of it as fits.
      out = truncateBytes(part.text, maxBytes - (last ? 0 : reserve));
      left -= part.machines;
    }
    break;
  }
  if (left > 0) out = out === '' ? moreMachines(left) : out + SEPARATOR + moreMachines(left);
  return truncateBytes(out, maxBytes);
}

/** Cuts at a character boundary and marks the cut with an ellipsis. */
function truncateBytes(text: string, maxBytes: number): string {
  if (byteLength(text) <= maxBytes) return text;
  const room = maxBytes - byteLength(ELLIPSIS);
  if (room <= 0) return '';
  let bytes = 0;
  let cut = '';
  for (const char of text) {
    bytes += byteLength(char);
    if (bytes > room) break;
    cut += char;
  }
  return cut + ELLIPSIS;
}
