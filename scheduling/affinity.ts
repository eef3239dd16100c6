import type { V1NodeSelector, V1NodeSelectorRequirement, V1NodeSelectorTerm } from '@kubernetes/client-node';
import { validateLabelKey, validateLabelValue } from '../api/labels.js';
import { parseInt64 } from './int64.js';

/**
 * pod.spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity,
 * matched as kube-scheduler's NodeAffinity filter does (component-helpers' nodeaffinity and
 * apimachinery's label requirements). Both are compiled once per pod: the controller matches
 * one pod against thousands of machines.
 */

/** Node labels by key. */
export type NodeLabels = ReadonlyMap<string, string>;

// ---------------------------------------------------------------------------------------
// nodeSelector

/** Every key must be present with exactly the value: parallel arrays, scanned in order. */
export interface CompiledNodeSelector {
  readonly keys: readonly string[];
  readonly values: readonly string[];
}

export interface NodeSelectorMismatch {
  key: string;
  want: string;
  /** The node's value, undefined when it lacks the label. */
  have: string | undefined;
}

export function compileNodeSelector(nodeSelector: Readonly<Record<string, string>> | undefined): CompiledNodeSelector {
  const entries = Object.entries(nodeSelector ?? {});
  return { keys: entries.map(([key]) => key), values: entries.map(([, value]) => value) };
}

export function matchesNodeSelector(selector: CompiledNodeSelector, labels: NodeLabels): boolean {
  const { keys, values } = selector;
  for (let i = 0; i < keys.length; i++) {
    if (labels.get(keys[i] as string) !== values[i]) return false;
  }
  return true;
}

export function nodeSelectorMismatches(selector: CompiledNodeSelector, labels: NodeLabels): NodeSelectorMismatch[] {
  const mismatches: NodeSelectorMismatch[] = [];
  selector.keys.forEach((key, i) => {
    const want = selector.values[i] as string;
    const have = labels.get(key);
    if (have !== want) mismatches.push({ key, want, have });
  });
  return mismatches;
}

// ---------------------------------------------------------------------------------------
// Required node affinity

const LABEL_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;
type Operator = (typeof LABEL_OPERATORS)[number];

/** The only field a nodeSelectorTerm's matchFields may name (API validation enforces it). */
export const NODE_NAME_FIELD = 'metadata.name';

interface Requirement {
  /** A label key, or NODE_NAME_FIELD for a matchFields requirement. */
  readonly key: string;
  readonly field: boolean;
  readonly operator: Operator;
  readonly values: ReadonlySet<string>;
  /** The integer of Gt and Lt. */
  readonly bound: bigint;
  /** How a user would write it: `topology.kubernetes.io/zone In [a, b]`. */
  readonly text: string;
}

interface Term {
  readonly requirements: readonly Requirement[];
  /** A term with neither matchExpressions nor matchFields matches no node. */
  readonly empty: boolean;
  /** Why the term cannot be evaluated; such a term matches no node. */
  readonly problems: readonly string[];
}

export interface CompiledNodeAffinity {
  readonly terms: readonly Term[];
  /** Every term's problems, numbered: reported only when no term matches, as kube-scheduler does. */
  readonly problems: readonly string[];
}

export interface AffinityFailure {
  /** What the pod requires, the same on every machine: `zone In [c] does not match`. */
  requirement: string;
  /** With what this machine has: `zone In [c] does not match (zone a)`. */
  detail: string;
}

/** undefined when the pod has no required node affinity (every node matches). */
export function compileNodeAffinity(selector: V1NodeSelector | undefined): CompiledNodeAffinity | undefined {
  if (selector === undefined) return undefined;
  const terms = (selector.nodeSelectorTerms ?? []).map(compileTerm);
  const numbered = terms.length > 1;
  const problems = terms.flatMap((term, i) => term.problems.map((problem) => `required node affinity: ${numbered ? `term ${i + 1}: ` : ''}${problem}`));
  return { terms, problems };
}

function compileTerm(term: V1NodeSelectorTerm | undefined): Term {
  const expressions = term?.matchExpressions ?? [];
  const fields = term?.matchFields ?? [];
  const problems: string[] = [];
  const requirements: Requirement[] = [];
  for (const expression of expressions) {
    const requirement = compileRequirement(expression, false, problems);
    if (requirement !== undefined) requirements.push(requirement);
  }
  for (const expression of fields) {
    const requirement = compileRequirement(expression, true, problems);
    if (requirement !== undefined) requirements.push(requirement);
  }
  return { requirements, empty: expressions.length === 0 && fields.length === 0, problems };
}

function compileRequirement(expression: V1NodeSelectorRequirement, field: boolean, problems: string[]): Requirement | undefined {
  const key = expression.key ?? '';
  const operator = expression.operator ?? '';
  const values = expression.values ?? [];
  const where = `${field ? 'matchFields' : 'matchExpressions'} ${key === '' ? '(no key)' : key}`;
  const found = field ? fieldRequirementProblems(key, operator, values) : labelRequirementProblems(key, operator, values);
  if (found.length > 0) {
    for (const problem of found) problems.push(`${where}: ${problem}`);
    return undefined;
  }
  const op = operator as Operator;
  const first = values[0] ?? '';
  const bound = op === 'Gt' || op === 'Lt' ? (parseInt64(first) ?? 0n) : 0n;
  return { key, field, operator: op, values: new Set(values), bound, text: requirementText(key, op, values) };
}

/** labels.NewRequirement's checks, which kube-scheduler applies to matchExpressions. */
function labelRequirementProblems(key: string, operator: string, values: readonly string[]): string[] {
  const problems: string[] = [];
  const keyProblem = validateLabelKey(key);
  if (keyProblem !== undefined) problems.push(keyProblem);
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) problems.push(`${operator} needs at least one value`);
      break;
    case 'Exists':
    case 'DoesNotExist':
      if (values.length !== 0) problems.push(`${operator} takes no values`);
      break;
    case 'Gt':
    case 'Lt':
      if (values.length !== 1) problems.push(`${operator} needs exactly one value`);
      for (const value of values) {
        if (parseInt64(value) === undefined) problems.push(`${operator} needs an integer, got ${JSON.stringify(value)}`);
      }
      break;
    default:
      problems.push(`operator ${JSON.stringify(operator)} is not supported; use ${LABEL_OPERATORS.join(', ')}`);
  }
  for (const value of values) {
    const valueProblem = validateLabelValue(value);
    if (valueProblem !== undefined) problems.push(valueProblem);
  }
  return problems;
}

/** matchFields: metadata.name with In or NotIn and exactly one value. */
function fieldRequirementProblems(key: string, operator: string, values: readonly string[]): string[] {
  const problems: string[] = [];
  if (key !== NODE_NAME_FIELD) problems.push(`field ${JSON.stringify(key)} is not supported; only ${NODE_NAME_FIELD} is`);
  if (operator !== 'In' && operator !== 'NotIn') {
    problems.push(`operator ${JSON.stringify(operator)} is not supported for fields; use In or NotIn`);
  } else if (values.length !== 1) {
    problems.push(`${operator} on a field needs exactly one value`);
  }
  return problems;
}

const MAX_LISTED_VALUES = 5;

function requirementText(key: string, operator: Operator, values: readonly string[]): string {
  switch (operator) {
    case 'Exists':
    case 'DoesNotExist':
      return `${key} ${operator}`;
    case 'Gt':
    case 'Lt':
      return `${key} ${operator} ${values[0] ?? ''}`;
    default: {
      const listed = values.slice(0, MAX_LISTED_VALUES).map(showValue);
      if (values.length > MAX_LISTED_VALUES) listed.push(`… ${values.length - MAX_LISTED_VALUES} more`);
      return `${key} ${operator} [${listed.join(', ')}]`;
    }
  }
}

function showValue(value: string): string {
  return value === '' ? '""' : value;
}

export function matchesNodeAffinity(affinity: CompiledNodeAffinity, labels: NodeLabels, nodeName: string): boolean {
  for (const term of affinity.terms) {
    if (termMatches(term, labels, nodeName)) return true;
  }
  return false;
}

function termMatches(term: Term, labels: NodeLabels, nodeName: string): boolean {
  if (term.empty || term.problems.length > 0) return false;
  for (const requirement of term.requirements) {
    if (!requirementMatches(requirement, labels, nodeName)) return false;
  }
  return true;
}

function requirementMatches(requirement: Requirement, labels: NodeLabels, nodeName: string): boolean {
  const value = requirement.field ? nodeName : labels.get(requirement.key);
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && requirement.values.has(value);
    case 'NotIn':
      return value === undefined || !requirement.values.has(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      const number = value === undefined ? undefined : parseInt64(value);
      if (number === undefined) return false;
      return requirement.operator === 'Gt' ? number > requirement.bound : number < requirement.bound;
    }
  }
}

/**
 * Why no term matches, empty when one does. With one term, each failed requirement is its
 * own failure; with several, one failure lists every term's.
 */
export function nodeAffinityFailures(affinity: CompiledNodeAffinity, labels: NodeLabels, nodeName: string): AffinityFailure[] {
  if (matchesNodeAffinity(affinity, labels, nodeName)) return [];
  const { terms } = affinity;
  if (terms.length === 0) {
    const requirement = 'has no nodeSelectorTerms, so no node matches';
    return [{ requirement, detail: requirement }];
  }
  const [only] = terms;
  if (terms.length === 1 && only !== undefined) {
    if (only.problems.length > 0) return [];
    if (only.empty) {
      const requirement = 'the only term is empty, so no node matches';
      return [{ requirement, detail: requirement }];
    }
    return termFailures(only, labels, nodeName);
  }
  const why = terms.map((term, i) => `term ${i + 1}: ${termFailureText(term, labels, nodeName)}`);
  const requirement = `none of ${terms.length} terms matches`;
  return [{ requirement, detail: `${requirement} (${why.join('; ')})` }];
}

function termFailures(term: Term, labels: NodeLabels, nodeName: string): AffinityFailure[] {
  const failures: AffinityFailure[] = [];
  for (const requirement of term.requirements) {
    if (requirementMatches(requirement, labels, nodeName)) continue;
    const text = `${requirement.text} does not match`;
    failures.push({ requirement: text, detail: `${text} (${nodeHas(requirement, labels, nodeName)})` });
  }
  return failures;
}

function termFailureText(term: Term, labels: NodeLabels, nodeName: string): string {
  if (term.problems.length > 0) return 'invalid';
  if (term.empty) return 'empty';
  return termFailures(term, labels, nodeName)
    .map((failure) => failure.detail)
    .join(', ');
}

/** What the node has for a requirement, in words: `zone a`, `no zone label`. */
function nodeHas(requirement: Requirement, labels: NodeLabels, nodeName: string): string {
  if (requirement.field) return `name ${nodeName}`;
  const short = requirement.key.slice(requirement.key.lastIndexOf('/') + 1);
  const value = labels.get(requirement.key);
  if (value === undefined) return `no ${short} label`;
  const integerOperator = requirement.operator === 'Gt' || requirement.operator === 'Lt';
  const notInteger = integerOperator && parseInt64(value) === undefined ? ', not an integer' : '';
  return `${short} ${showValue(value)}${notInteger}`;
}
