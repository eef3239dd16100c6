/**
 * Kubernetes name rules (apimachinery's validation package) for what the inventory puts on
 * Nodes: names, label keys and values, taints, resource names. Checking them here means a
 * bad inventory is rejected when it is applied, not when a machine is already powered on
 * and its Node fails to register.
 *
 * Each validator returns the problem in words, or undefined when the value is valid.
 */

const DNS1123_SUBDOMAIN_MAX = 253;
const QUALIFIED_NAME_MAX = 63;
const LABEL_VALUE_MAX = 63;

const ALPHANUMERIC = /^[A-Za-z0-9]$/;
const QUALIFIED_NAME_CHAR = /[A-Za-z0-9._-]/;
const QUALIFIED_NAME_RULE = 'use letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
const DNS1123_RULE = 'use lowercase letters, digits, "-" and ".", with each dot-separated part starting and ending with a letter or digit (e.g. rack-a-01 or bmc.example.com)';

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

/** Resources a Node reports without a domain prefix; anything else needs one (nvidia.com/gpu). */
export const STANDARD_RESOURCES = ['cpu', 'memory', 'ephemeral-storage', 'pods'] as const;
const HUGEPAGES_PREFIX = 'hugepages-';

/** Node names, Secret names and ConfigMap names. */
export function validateDns1123Subdomain(name: string): string | undefined {
  const reason = dns1123SubdomainProblem(name);
  return reason === undefined ? undefined : `${JSON.stringify(name)} is not a valid DNS-1123 subdomain: ${reason}`;
}

function dns1123SubdomainProblem(name: string): string | undefined {
  if (name === '') return `it is empty; ${DNS1123_RULE}`;
  if (name.length > DNS1123_SUBDOMAIN_MAX) return `it is ${name.length} characters long; the limit is ${DNS1123_SUBDOMAIN_MAX}`;
  if (/[A-Z]/.test(name)) return `it contains uppercase letters; ${DNS1123_RULE}`;
  const bad = [...name].find((c) => !/[a-z0-9.-]/.test(c));
  if (bad !== undefined) return `it contains ${JSON.stringify(bad)}; ${DNS1123_RULE}`;
  const partsOk = name.split('.').every((part) => part !== '' && ALPHANUMERIC.test(part[0] ?? '') && ALPHANUMERIC.test(part.at(-1) ?? ''));
  if (!partsOk) return `a dot-separated part is empty or starts or ends with "-"; ${DNS1123_RULE}`;
  return undefined;
}

/** The name part of a label key, taint key or resource name. */
function qualifiedNameProblem(name: string): string | undefined {
  if (name.length > QUALIFIED_NAME_MAX) return `it is ${name.length} characters long; the limit is ${QUALIFIED_NAME_MAX}`;
  const bad = [...name].find((c) => !QUALIFIED_NAME_CHAR.test(c));
  if (bad !== undefined) return `it contains ${JSON.stringify(bad)}; ${QUALIFIED_NAME_RULE}`;
  if (!ALPHANUMERIC.test(name[0] ?? '') || !ALPHANUMERIC.test(name.at(-1) ?? '')) {
    return `it must start and end with a letter or digit; ${QUALIFIED_NAME_RULE}`;
  }
  return undefined;
}

/** A key in the `prefix/name` form, prefix optional: `rack`, `topology.kubernetes.io/zone`. */
function qualifiedKeyProblem(key: string): string | undefined {
  if (key === '') return 'it is empty';
  const parts = key.split('/');
  if (parts.length > 2) return 'it contains more than one "/"; use an optional DNS prefix, "/", and a name, e.g. example.com/rack';
  const [first = '', second] = parts;
  if (second === undefined) return qualifiedNameProblem(first);
  if (first === '') return 'the prefix before "/" is empty; remove the "/" or add a DNS prefix such as example.com';
  const prefixProblem = dns1123SubdomainProblem(first);
  if (prefixProblem !== undefined) return `the prefix ${JSON.stringify(first)} is not a DNS subdomain: ${prefixProblem}`;
  if (second === '') return 'the name after "/" is empty';
  const nameProblem = qualifiedNameProblem(second);
  return nameProblem === undefined ? undefined : `the name ${JSON.stringify(second)} ${nameProblem.replace(/^it /, '')}`;
}

export function validateLabelKey(key: string): string | undefined {
  const reason = qualifiedKeyProblem(key);
  return reason === undefined ? undefined : `${JSON.stringify(key)} is not a valid label key: ${reason}`;
}

/** Label values may be empty; otherwise they follow the name rule. */
export function validateLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > LABEL_VALUE_MAX) {
    return `${JSON.stringify(value)} is not a valid label value: it is ${value.length} characters long; the limit is ${LABEL_VALUE_MAX}`;
  }
  const reason = qualifiedNameProblem(value);
  return reason === undefined ? undefined : `${JSON.stringify(value)} is not a valid label value: ${reason}`;
}

export function validateTaintKey(key: string): string | undefined {
  const reason = qualifiedKeyProblem(key);
  return reason === undefined ? undefined : `${JSON.stringify(key)} is not a valid taint key: ${reason}`;
}

export function validateTaintEffect(effect: string): string | undefined {
  if ((TAINT_EFFECTS as readonly string[]).includes(effect)) return undefined;
  return `${JSON.stringify(effect)} is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute`;
}

export interface Taint {
  key: string;
  value?: string;
  effect: string;
}

/** The first problem with a taint; taint values follow the label value rule. */
export function validateTaint(taint: Taint): string | undefined {
  return validateTaintKey(taint.key) ?? (taint.value === undefined ? undefined : validateLabelValue(taint.value)) ?? validateTaintEffect(taint.effect);
}

/**
 * Resource names as Node capacity accepts them: a standard resource (cpu, memory,
 * ephemeral-storage, pods, hugepages-<size>) or a domain-prefixed extended resource.
 */
export function validateResourceName(name: string): string | undefined {
  if (name.includes('/')) {
    const reason = qualifiedKeyProblem(name);
    return reason === undefined ? undefined : `${JSON.stringify(name)} is not a valid resource name: ${reason}`;
  }
  if ((STANDARD_RESOURCES as readonly string[]).includes(name)) return undefined;
  if (name.startsWith(HUGEPAGES_PREFIX) && /^\d+(Ki|Mi|Gi|Ti|[kMGT])?$/.test(name.slice(HUGEPAGES_PREFIX.length))) return undefined;
  return `unknown resource ${JSON.stringify(name)}; resources without a domain prefix must be cpu, memory, ephemeral-storage, pods or hugepages-<size> (e.g. hugepages-2Mi), and extended resources take a domain prefix (e.g. nvidia.com/gpu)`;
}

/** Extended resources are counted in whole units: a pod cannot request half a GPU. */
export function isExtendedResourceName(name: string): boolean {
  return name.includes('/') && !name.includes('kubernetes.io/') && !name.startsWith('requests.');
}
