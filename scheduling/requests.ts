import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { parseQuantity, QuantityError } from '../api/quantity.js';
import { addResources, maxResources, ONE_POD, PODS, type ReadonlyResourceList, type ResourceList } from './resources.js';

/**
 * What a pod asks a node for, computed as kube-scheduler does (component-helpers'
 * PodRequests), so that the controller powers a machine on exactly when the scheduler would
 * place the pod there.
 */

export interface PodRequestsOptions {
  /**
   * For a pod already running on a node: count what an in-place resize holds, the larger of
   * the spec and the container statuses, as the scheduler does for the node's usage.
   */
  useStatusResources?: boolean;
  /**
   * Told about each quantity that does not parse (the API server rejects such pods, but
   * objects built by hand or read from files are not validated); it counts as absent.
   */
  onInvalid?: (detail: string) => void;
}

type RawResources = Readonly<Record<string, unknown>> | undefined;
type Report = (detail: string) => void;

const ignore: Report = () => undefined;

/**
 * The pod's requests in milli-units, `pods` = 1 included:
 * - regular containers add up, and a container with limits but no request for a resource
 *   requests its limit (the API server's defaulting, applied here too for unsaved pods);
 * - init containers run one at a time, so the pod needs the largest of them, each plus the
 *   restartable (sidecar) init containers started before it; sidecars also run beside the
 *   regular containers and add to their sum (KEP-753);
 * - pod-level resources (spec.resources) replace the containers' total for cpu, memory and
 *   hugepages (KEP-2837);
 * - spec.overhead (the RuntimeClass's cost of running the pod) is added last.
 */
export function podRequests(pod: V1Pod, options: PodRequestsOptions = {}): ResourceList {
  // The caches' pods are immutable (an update is a new object): their requests are computed
  // once per object, not at every reconcile and scheduling decision. A pod whose spec or
  // status object was replaced is computed again; a caller that wants every problem reported
  // (onInvalid) always gets a fresh computation.
  if (options.onInvalid !== undefined) return computePodRequests(pod, options);
  const memo = options.useStatusResources === true ? withStatusMemo : specMemo;
  const hit = memo.get(pod);
  if (hit !== undefined && hit.spec === pod.spec && hit.status === pod.status) return new Map(hit.requests);
  const requests = computePodRequests(pod, options);
  memo.set(pod, { spec: pod.spec, status: pod.status, requests });
  return new Map(requests);
}

interface Memo {
  spec: V1Pod['spec'];
  status: V1Pod['status'];
  requests: ReadonlyResourceList;
}

const specMemo = new WeakMap<V1Pod, Memo>();
const withStatusMemo = new WeakMap<V1Pod, Memo>();

function computePodRequests(pod: V1Pod, options: PodRequestsOptions): ResourceList {
  const report = options.onInvalid ?? ignore;
  // Parsed once per container: the status computations below fall back to the spec.
  const specs = new Map<V1Container, ResourceList>();
  const specOf = (container: V1Container, where: string): ResourceList => {
    let spec = specs.get(container);
    if (spec === undefined) specs.set(container, (spec = containerRequests(container, where, report)));
    return spec;
  };
  let requests = aggregateContainers(pod, specOf);

  if (options.useStatusResources === true) {
    const infeasible = isResizeInfeasible(pod);
    const allocated = aggregateContainers(pod, (container, where) => {
      const status = findContainerStatus(pod, container.name);
      if (status?.allocatedResources !== undefined) return parseResources(status.allocatedResources, `${where} status.allocatedResources`, report);
      return infeasible ? new Map<string, bigint>() : specOf(container, where);
    });
    const actuated = aggregateContainers(pod, (container, where) => {
      const status = findContainerStatus(pod, container.name);
      const actual = status?.resources?.requests;
      if (actual !== undefined) return parseResources(actual, `${where} status.resources.requests`, report);
      if (status?.allocatedResources !== undefined) return parseResources(status.allocatedResources, `${where} status.allocatedResources`, report);
      return infeasible ? new Map<string, bigint>() : specOf(container, where);
    });
    // An infeasible resize will never be actuated, so the spec no longer says what is held.
    if (infeasible) requests = new Map<string, bigint>();
    maxResources(requests, actuated);
    maxResources(requests, allocated);
  }

  applyPodLevelResources(pod, requests, report);
  addResources(requests, parseResources(pod.spec?.overhead, 'spec.overhead', report));
  requests.set(PODS, ONE_POD);
  return requests;
}

function aggregateContainers(pod: V1Pod, requestsOf: (container: V1Container, where: string) => ResourceList): ResourceList {
  const total: ResourceList = new Map();
  for (const container of pod.spec?.containers ?? []) addResources(total, requestsOf(container, `container ${JSON.stringify(container.name)}`));

  const sidecars: ResourceList = new Map();
  const initPeak: ResourceList = new Map();
  for (const container of pod.spec?.initContainers ?? []) {
    const own = requestsOf(container, `init container ${JSON.stringify(container.name)}`);
    if (container.restartPolicy === 'Always') {
      addResources(total, own);
      addResources(sidecars, own);
      maxResources(initPeak, sidecars);
    } else {
      const whileRunning = new Map(own);
      addResources(whileRunning, sidecars);
      maxResources(initPeak, whileRunning);
    }
  }
  maxResources(total, initPeak);
  return total;
}

/** The container's requests after the API server's defaulting: limits stand in for missing requests. */
function containerRequests(container: V1Container, where: string, report: Report): ResourceList {
  const requests = parseResources(container.resources?.requests, `${where} requests`, report);
  for (const [name, raw] of Object.entries(container.resources?.limits ?? {})) {
    if (hasOwn(container.resources?.requests, name)) continue;
    const amount = parseAmount(raw, `${where} limits.${name}`, report);
    if (amount !== undefined) requests.set(name, amount);
  }
  return requests;
}

const POD_LEVEL_RESOURCES = new Set(['cpu', 'memory']);
const isPodLevelResource = (name: string): boolean => POD_LEVEL_RESOURCES.has(name) || name.startsWith('hugepages-');
/** cpu and memory may be overcommitted; hugepages may not, so containers' requests do not default them. */
const isOvercommittable = (name: string): boolean => POD_LEVEL_RESOURCES.has(name);

/**
 * Pod-level requests replace the containers' total; with pod-level limits but no pod-level
 * request, the API server defaults the request to the containers' total (cpu, memory) or,
 * when the containers request none, to the limit.
 */
function applyPodLevelResources(pod: V1Pod, requests: ResourceList, report: Report): void {
  const resources = pod.spec?.resources;
  if (resources === undefined) return;
  const podRequests = parseResources(resources.requests, 'spec.resources.requests', report);
  for (const [name, amount] of parseResources(resources.limits, 'spec.resources.limits', report)) {
    if (podRequests.has(name) || !isPodLevelResource(name)) continue;
    if (isOvercommittable(name) && requests.has(name)) continue;
    podRequests.set(name, amount);
  }
  for (const [name, amount] of podRequests) if (isPodLevelResource(name)) requests.set(name, amount);
}

function parseResources(raw: RawResources, where: string, report: Report): ResourceList {
  const parsed: ResourceList = new Map();
  for (const [name, value] of Object.entries(raw ?? {})) {
    const amount = parseAmount(value, `${where}.${name}`, report);
    if (amount !== undefined) parsed.set(name, amount);
  }
  return parsed;
}

function parseAmount(value: unknown, where: string, report: Report): bigint | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') {
    report(`${where}: ${JSON.stringify(value) ?? String(value)} is not a quantity`);
    return undefined;
  }
  try {
    const amount = parseQuantity(value);
    if (amount >= 0n) return amount;
    report(`${where}: ${JSON.stringify(value)} is negative`);
  } catch (err) {
    if (!(err instanceof QuantityError)) throw err;
    report(`${where}: ${JSON.stringify(err.input)} is not a valid quantity (${err.reason})`);
  }
  return undefined;
}

function hasOwn(raw: RawResources, name: string): boolean {
  return raw !== undefined && Object.prototype.hasOwnProperty.call(raw, name);
}

function findContainerStatus(pod: V1Pod, name: string): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((status) => status.name === name) ?? pod.status?.initContainerStatuses?.find((status) => status.name === name);
}

function isResizeInfeasible(pod: V1Pod): boolean {
  const condition = pod.status?.conditions?.find((c) => c.type === 'PodResizePending');
  return condition?.reason === 'Infeasible';
}

/** Sums the requests of the pods a node runs: what is no longer free there. */
export function sumRequests(pods: Iterable<ReadonlyResourceList>): ResourceList {
  const total: ResourceList = new Map();
  for (const requests of pods) addResources(total, requests);
  return total;
}
