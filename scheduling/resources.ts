import { formatMilli, type QuantityKind } from '../api/quantity.js';

/**
 * Resource amounts in bigint milli-units (parseQuantity's unit) by resource name. A Map
 * rather than a record: "explicitly zero" and "absent" differ in Kubernetes' request
 * defaulting, and resource names never collide with prototype properties.
 */
export type ResourceList = Map<string, bigint>;
export type ReadonlyResourceList = ReadonlyMap<string, bigint>;

/** kube-scheduler counts pods against the Node's `pods` allocatable, one per pod. */
export const PODS = 'pods';
export const ONE_POD = 1000n;

const BYTE_RESOURCES = new Set(['memory', 'ephemeral-storage']);

/** Adds `add` into `into`, resource by resource. */
export function addResources(into: ResourceList, add: ReadonlyResourceList): void {
  for (const [name, amount] of add) into.set(name, (into.get(name) ?? 0n) + amount);
}

/** Raises each resource of `into` to at least its amount in `other`. */
export function maxResources(into: ResourceList, other: ReadonlyResourceList): void {
  for (const [name, amount] of other) {
    const current = into.get(name);
    if (current === undefined || amount > current) into.set(name, amount);
  }
}

/**
 * Whether kube-scheduler's resource fit looks at a resource: cpu, memory,
 * ephemeral-storage, pods, hugepages and every domain-prefixed (extended) resource. Other
 * unprefixed names are invalid in a pod and the scheduler ignores them, so do we.
 */
export function isScheduledResource(name: string): boolean {
  return name === 'cpu' || BYTE_RESOURCES.has(name) || name === PODS || name.startsWith('hugepages-') || name.includes('/');
}

function quantityKind(name: string): QuantityKind {
  if (name === 'cpu') return 'cpu';
  return BYTE_RESOURCES.has(name) || name.startsWith('hugepages-') ? 'bytes' : 'count';
}

const DECIMAL_BYTE_SUFFIXES: ReadonlyArray<[string, bigint]> = [
  ['E', 10n ** 18n],
  ['P', 10n ** 15n],
  ['T', 10n ** 12n],
  ['G', 10n ** 9n],
  ['M', 10n ** 6n],
  ['k', 10n ** 3n],
];
const BINARY_BYTE_SUFFIXES: ReadonlyArray<[string, bigint]> = [
  ['Ei', 1n << 60n],
  ['Pi', 1n << 50n],
  ['Ti', 1n << 40n],
  ['Gi', 1n << 30n],
  ['Mi', 1n << 20n],
  ['Ki', 1n << 10n],
];

/**
 * An amount as a user writes it: "500m" cpu, "64Gi" memory, "4" GPUs. Always exact, so
 * that a machine one byte short never reads as having what the pod needs.
 */
export function formatResource(name: string, milli: bigint): string {
  const kind = quantityKind(name);
  return kind === 'bytes' ? formatBytes(milli) : formatMilli(milli, kind);
}

function formatBytes(milli: bigint): string {
  if (milli < 0n) return `-${formatBytes(-milli)}`;
  if (milli === 0n || milli % 1000n !== 0n) return formatMilli(milli, 'bytes');
  const bytes = milli / 1000n;
  // The shortest exact form: 2G rather than 1953125Ki, 4000Mi rather than 4194304k, and
  // free memory, often a fraction, as 28.5Gi rather than 29184Mi.
  const forms: string[] = [];
  const largest = BINARY_BYTE_SUFFIXES.find(([, size]) => bytes >= size);
  if (largest !== undefined && (bytes * 100n) % largest[1] === 0n) {
    const [suffix, size] = largest;
    const hundredths = (bytes * 100n) / size;
    const fraction = String(hundredths % 100n).padStart(2, '0').replace(/0+$/, '');
    forms.push(`${hundredths / 100n}${fraction === '' ? '' : `.${fraction}`}${suffix}`);
  }
  forms.push(String(bytes));
  for (const [suffix, size] of [...BINARY_BYTE_SUFFIXES, ...DECIMAL_BYTE_SUFFIXES]) {
    if (bytes % size === 0n) forms.push(`${bytes / size}${suffix}`);
  }
  // The first listed wins a tie: 2.75Gi beside the 64Gi a pod needs, not 2816Mi.
  return forms.reduce((shortest, form) => (form.length < shortest.length ? form : shortest));
}

const RESOURCE_ORDER = ['cpu', 'memory', 'ephemeral-storage'];

/** cpu, memory and ephemeral-storage first, then by name, pods last: the order messages list them in. */
export function compareResourceNames(a: string, b: string): number {
  const rank = (name: string): number => {
    const index = RESOURCE_ORDER.indexOf(name);
    return index !== -1 ? index : name === PODS ? RESOURCE_ORDER.length + 1 : RESOURCE_ORDER.length;
  };
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}
