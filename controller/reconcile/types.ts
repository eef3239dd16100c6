import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscaler, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { EventRecorder } from '../../kube/events.js';
import type { BmcPool } from '../../power/pool.js';
import type { Actuator } from '../actuator.js';
import type { Drainer } from '../drain.js';
import type { ControllerMetrics } from '../metrics.js';
import type { TrafficDemandSource } from '../traffic.js';
import type { PowerReader } from '../power-readings.js';

/** The shapes the reconcile steps share: what they read, and what they hand to the next step. */

export interface Store<T> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface Stores {
  autoscalers: Store<BareMetalAutoscaler>;
  /** Inventory ConfigMaps (labelled), keyed namespace/name. */
  inventories: Store<k8s.V1ConfigMap>;
  nodes: Store<k8s.V1Node>;
  pods: Store<k8s.V1Pod>;
  /** PodDisruptionBudgets (scale-down blockers); without them no budget is known to block. */
  pdbs?: Store<k8s.V1PodDisruptionBudget>;
}

export interface ClusterCaps {
  machines?: number;
  cpu?: bigint;
  memory?: bigint;
}

export interface ReconcilerOptions {
  identity: string;
  settleGraceMs: number;
  quarantineBaseMs: number;
  quarantineMaxMs: number;
  /** A machine Ready for less than this still takes pending pods in the decision (the scheduler has yet to bind them). */
  readyAbsorbMs: number;
  resyncMs: number;
  caps: ClusterCaps;
  /**
   * The longest one BMC operation may take. With it, an intent this process did not start
   * counts as in flight until this plus settleGraceMs after it was first seen
   * (reconcile/settle.ts); without it, until settleGraceMs after the intent's startedAt.
   */
  operationTimeoutMs?: number;
}

export interface AutoscalerApi {
  replaceStatus(bma: BareMetalAutoscaler): Promise<BareMetalAutoscaler>;
  patchFinalizers(name: string, resourceVersion: string | undefined, finalizers: string[]): Promise<void>;
}

export interface ReconcilerDeps {
  kc: k8s.KubeConfig;
  stores: Stores;
  pool: BmcPool;
  actuator: Actuator;
  recorder: EventRecorder;
  metrics: ControllerMetrics;
  logger: Logger;
  options: ReconcilerOptions;
  /** Taints, evictions and Node deletion for scale-down; built from kc when absent. */
  drainer?: Drainer;
  now?: () => number;
  /** Monotonic milliseconds (default performance.now): durations that must not follow the wall clock. */
  monotonicNow?: () => number;
  /**
   * Writes an autoscaler (status, or metadata for finalizers) to the API server. Replaced only
   * by benchmarks that feed the reconciler recorded state; it must keep the optimistic lock
   * (throw a ConflictError on a stale resourceVersion).
   */
  api?: AutoscalerApi;
  /** The pods bound to a Node, read from the API server (a quorum read); built from kc when absent. */
  livePods?: (node: string) => Promise<k8s.V1Pod[]>;
  /** Traffic pressure from the eBPF agents' TrafficReports (controller/traffic.ts). */
  traffic?: TrafficDemandSource;
  /** Power readings of the machines' BMCs (controller/power-readings.ts); without it the inventory figures stand in. */
  powerReader?: PowerReader;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** A power operation a step asks for; written into status before any BMC is called. */
export interface Intent {
  machine: ParsedMachine;
  action: 'PowerOn' | 'PowerOff';
  reason: string;
  message: string;
  /** A retried power-off is not a new scale event. */
  retry?: boolean;
}

/** Each machine's status as the steps so far have left it, by machine name. */
export type MachineStates = ReadonlyMap<string, MachineStatus>;

/** The optimistic lock failed: our view is stale, nothing is actuated, the reconcile runs again. */
export class ConflictError extends Error {}
