import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Type, type Static } from '@sinclair/typebox';
import { QuantityMap, StringEnum, StringMap, withRules } from '../schema-helpers.js';
import { EnergyStatusSchema, MachinePowerSchema } from './energy.js';
import { InventoryListSchema, InventoryReferenceSchema } from './inventory-ref.js';
import { BootStatusSchema, BreakEvenStatusSchema, DemandProfileSchema, PowerCyclesStatusSchema, ScaleDownSchema, ScaleUpSchema } from './scaling.js';

export { ScaleDownSchema, ScaleUpSchema } from './scaling.js';
export { InventoryListSchema, InventoryReferenceSchema, MAX_INVENTORIES, inventoriesOf, inventoryKey, type InventoryReference } from './inventory-ref.js';

/**
 * BareMetalAutoscaler, autoscaling.bamel.io/v1alpha1: the one source of the API. The CRD
 * YAML (`make generate`), the TypeScript types and the webhook's structural validation are
 * all derived from the schemas in this file.
 */

import { GROUP, VERSION } from './group.js';

export { GROUP, VERSION } from './group.js';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'BareMetalAutoscaler';
export const PLURAL = 'baremetalautoscalers';
export const SINGULAR = 'baremetalautoscaler';
export const SHORT_NAMES = ['bma'] as const;
export const LIST_KIND = 'BareMetalAutoscalerList';

/** The label that marks a ConfigMap as a machine inventory. */
export const INVENTORY_LABEL = 'autoscaling.bamel.io/inventory';
/** The key of the inventory document inside the ConfigMap. */
export const INVENTORY_KEY = 'machines.yaml';
export const FINALIZER = 'autoscaling.bamel.io/finalizer';

/** The taint put on a Node while bamel drains it (NoSchedule); removed if the drain is aborted. */
export const DRAINING_TAINT = 'autoscaling.bamel.io/draining';
/** Pod annotation ("true"): never evict this pod to scale down; its machine stays on. */
export const DO_NOT_DISRUPT_ANNOTATION = 'autoscaling.bamel.io/do-not-disrupt';
/** Node annotation ("true"): bamel never scales this machine down. */
export const SCALE_DOWN_DISABLED_ANNOTATION = 'autoscaling.bamel.io/scale-down-disabled';
/** Other autoscalers' pod annotations bamel honours the same way. */
export const CA_SAFE_TO_EVICT_ANNOTATION = 'cluster-autoscaler.kubernetes.io/safe-to-evict';
export const KARPENTER_DO_NOT_DISRUPT_ANNOTATION = 'karpenter.sh/do-not-disrupt';

/**
 * Scale-down standing of a Ready machine (status.machines[].disruption): Candidate = unneeded
 * and its pods fit elsewhere (the extender scores it lower); Next = chosen to be drained next
 * (the extender filters it out, like Draining and PoweringOff machines).
 */
export const DisruptionValues = ['Candidate', 'Next'] as const;
export type Disruption = (typeof DisruptionValues)[number];

export const LabelSelectorRequirementSchema = withRules(
  Type.Object({
    key: Type.String({ description: 'The machine label key the selector applies to.', minLength: 1, maxLength: 317 }),
    operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, {
      description: 'How the key relates to the values: In, NotIn, Exists or DoesNotExist.',
    }),
    values: Type.Optional(
      Type.Array(Type.String({ maxLength: 63 }), {
        description: 'Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.',
        maxItems: 256,
      }),
    ),
  }),
  [
    {
      rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
      message: 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
      reason: 'FieldValueInvalid',
    },
  ],
);

export const MachineSelectorSchema = Type.Object(
  {
    matchLabels: Type.Optional(StringMap({ description: 'Machines whose inventory labels contain all these key/value pairs.' })),
    matchExpressions: Type.Optional(
      Type.Array(LabelSelectorRequirementSchema, {
        description: 'Requirements over machine labels; all must hold.',
        maxItems: 64,
      }),
    ),
  },
  {
    description: 'Which inventory machines this autoscaler manages, by their inventory labels. Empty selects every machine of the inventory.',
    default: {},
    'x-kubernetes-map-type': 'atomic',
  },
);

export const ScoringSchema = withRules(
  Type.Object(
    {
      usefulWeight: Type.Number({
        description: 'Weight of the distance to the ideal machine in the pressured ("useful") resource categories.',
        default: 1.0,
        minimum: 0,
        maximum: 100,
      }),
      nonUsefulWeight: Type.Number({
        description: 'Weight of the distance to the ideal machine in the categories that are not under pressure.',
        default: 0.25,
        minimum: 0,
        maximum: 100,
      }),
    },
    { description: 'How candidate machines are scored against the ideal machine for a deficit (closest wins).', default: {} },
  ),
  [
    {
      rule: 'self.usefulWeight >= self.nonUsefulWeight',
      message: 'usefulWeight must be at least nonUsefulWeight: the pressured categories must count at least as much as the others',
      reason: 'FieldValueInvalid',
    },
    {
      rule: 'self.usefulWeight > 0.0',
      message: 'usefulWeight must be greater than 0, or no machine is preferred for the resources that are short',
      fieldPath: '.usefulWeight',
    },
  ],
);

function categoryThresholds(what: string, defaultLevel: number, defaultRate: number) {
  return withRules(
    Type.Object(
      {
        level: Type.Number({
          description: `Level of ${what} (0..1, requested / allocatable over Ready machines) at or above which the category is under pressure, so that a machine is powered on before pods are pending. 1 (the default) turns the level signal off: pending pods alone decide.`,
          default: defaultLevel,
          minimum: 0,
          maximum: 1,
        }),
        ratePerMinute: Type.Number({
          description: `Rise of the ${what} level per minute (0..1 per minute, least-squares slope over the pressure window) at or above which the category is under pressure, before pods are pending. 0 (the default) turns the rate signal off.`,
          default: defaultRate,
          minimum: 0,
          maximum: 1,
        }),
      },
      { description: `Pressure thresholds for ${what}.`, default: {} },
    ),
    [
      {
        rule: 'self.level > 0.0',
        message: 'level must be greater than 0 (0 keeps the category under pressure forever); use 1 to turn the level signal off',
        fieldPath: '.level',
        reason: 'FieldValueInvalid',
      },
    ],
  );
}

export const PressureSchema = Type.Object(
  {
    windowSeconds: Type.Integer({
      description: 'The window over which the rate of change of each level is estimated (least-squares slope over the samples in the window).',
      default: 300,
      minimum: 10,
      maximum: 3600,
    }),
    cpu: categoryThresholds('cpu', 1, 0),
    memory: categoryThresholds('memory', 1, 0),
    ephemeralStorage: categoryThresholds('ephemeral-storage', 1, 0),
    network: Type.Object(
      {
        requestsPerSecondRate: Type.Number({
          description: 'Rise in requests per second per minute, for one workload, at or above which network is under pressure (from the traffic agents). 0 disables it.',
          default: 0,
          minimum: 0,
        }),
        bytesPerSecondRate: Type.Number({
          description: 'Rise in bytes per second per minute, for one workload, at or above which network is under pressure. 0 disables it.',
          default: 0,
          minimum: 0,
        }),
      },
      { description: 'Network pressure thresholds (needs the traffic agents).', default: {} },
    ),
  },
  { description: 'Per-category thresholds on the pressure level and its rate of change.', default: {} },
);

export const BareMetalAutoscalerSpecSchema = withRules(
  Type.Object(
    {
      inventory: Type.Optional(InventoryReferenceSchema),
      inventories: Type.Optional(InventoryListSchema),
      machineSelector: MachineSelectorSchema,
      minMachines: Type.Integer({
        description: 'Machines kept powered on at all times, whatever the load; bamel powers machines on to reach it.',
        default: 0,
        minimum: 0,
        maximum: 10000,
      }),
      maxMachines: Type.Integer({
        description: 'At most this many selected machines are powered on (Ready, joining or powering on) at once.',
        default: 10,
        minimum: 0,
        maximum: 10000,
      }),
      scaleUp: ScaleUpSchema,
      scaleDown: ScaleDownSchema,
      scoring: ScoringSchema,
      pressure: PressureSchema,
      dryRun: Type.Boolean({
        description: 'Decide and report (status, events, metrics) but never call a BMC or drain a Node.',
        default: false,
      }),
      deletionPolicy: StringEnum(['Retain', 'PowerOff'] as const, {
        description: 'What happens to the managed machines when this autoscaler is deleted: Retain leaves them as they are; PowerOff drains and powers them off.',
        default: 'Retain',
      }),
    },
    { description: 'What the autoscaler manages and the rules it follows.' },
  ),
  [
    {
      rule: 'self.minMachines <= self.maxMachines',
      message: 'minMachines must be less than or equal to maxMachines',
      fieldPath: '.minMachines',
      reason: 'FieldValueInvalid',
    },
    {
      rule: 'self.scaleUp.maxConcurrentPowerOns <= self.maxMachines || self.maxMachines == 0',
      message: 'scaleUp.maxConcurrentPowerOns must not exceed maxMachines',
      fieldPath: '.scaleUp.maxConcurrentPowerOns',
      reason: 'FieldValueInvalid',
    },
    {
      rule: 'has(self.inventory) || (has(self.inventories) && size(self.inventories) > 0)',
      message: 'an inventory is required: set spec.inventory, or list at least one in spec.inventories',
      fieldPath: '.inventory',
      reason: 'FieldValueRequired',
    },
    {
      // Removing an inventory (or changing spec.inventory to another) while actuating would
      // leave its machines, maybe powered on or mid-operation, with nobody managing them.
      // Adding one is fine. (Rules comparing spec.inventory with the entries of
      // spec.inventories one by one exceed the API server's CEL cost budget; a repeated entry
      // is harmless: each inventory is read once.)
      rule:
        'self.dryRun || oldSelf.dryRun || (' +
        '(!has(oldSelf.inventory) || (has(self.inventory) && self.inventory == oldSelf.inventory)) && ' +
        '(!has(oldSelf.inventories) || (has(self.inventories) && oldSelf.inventories.all(o, o in self.inventories))))',
      message: 'inventory cannot be changed while the autoscaler actuates (an inventory may be added to spec.inventories, none removed); set dryRun: true first, or create a new autoscaler',
      fieldPath: '.inventory',
      reason: 'FieldValueForbidden',
    },
    {
      rule: '!self.scaleUp.predictive.enabled || !self.scaleDown.enabled || self.scaleUp.predictive.lookaheadSeconds < self.scaleDown.unneededSeconds',
      message: 'scaleUp.predictive.lookaheadSeconds must be below scaleDown.unneededSeconds, or pre-warmed machines are powered off before the ramp they were powered on for',
      fieldPath: '.scaleUp.predictive.lookaheadSeconds',
      reason: 'FieldValueInvalid',
    },
  ],
);

export const MachinePhaseValues = ['Off', 'PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff', 'Failed', 'Unknown'] as const;
export type MachinePhase = (typeof MachinePhaseValues)[number];

export const PowerActionValues = ['PowerOn', 'PowerOff'] as const;
export type PowerAction = (typeof PowerActionValues)[number];

export const OperationSchema = Type.Object(
  {
    id: Type.String({ description: 'Unique id of the operation (written before the BMC is called).', maxLength: 64 }),
    action: StringEnum(PowerActionValues, { description: 'The power action intended.' }),
    startedAt: Type.String({ format: 'date-time', description: 'When the intent was written.' }),
    attempt: Type.Optional(Type.Integer({ minimum: 0, description: 'How many times the BMC was asked for this operation.' })),
    holder: Type.Optional(Type.String({ maxLength: 253, description: 'The manager replica (leader identity) that wrote the intent.' })),
  },
  { description: 'A power operation in flight: the intent written to status before the BMC is called.' },
);

export const MachineStatusSchema = Type.Object(
  {
    name: Type.String({ description: 'The machine (and Node) name from the inventory.', maxLength: 253 }),
    phase: StringEnum(MachinePhaseValues, { description: 'Lifecycle phase: Off, PoweringOn, Joining, Ready, Draining, PoweringOff, Failed (quarantined) or Unknown.' }),
    since: Type.String({ format: 'date-time', description: 'When the machine entered this phase.' }),
    operation: Type.Optional(OperationSchema),
    reason: Type.Optional(Type.String({ maxLength: 256, description: 'Why the machine is in this phase (CamelCase); not kept for the routine ones (Off: PoweredOff; Ready: Joined, NodeReady): the events say them.' })),
    message: Type.Optional(Type.String({ maxLength: 2048, description: 'Why, in words; not kept with a routine reason.' })),
    retryAfter: Type.Optional(Type.String({ format: 'date-time', description: 'For Failed machines: when the quarantine ends.' })),
    failures: Type.Optional(Type.Integer({ minimum: 0, description: 'Consecutive failures (drives the quarantine backoff); absent when 0.' })),
    powerCyclesToday: Type.Optional(Type.Integer({ minimum: 0, description: 'Power-ons of this machine today (UTC), a tie-breaker in scoring.' })),
    powerCyclesDay: Type.Optional(Type.String({ maxLength: 10, description: 'The UTC day (YYYY-MM-DD) powerCyclesToday counts; both are absent once that day is over.' })),
    blockers: Type.Optional(
      Type.Array(Type.String({ maxLength: 512 }), {
        maxItems: 32,
        description: 'Why this machine is not scaled down now, in one line: the first reason and how many more (set for the 20 machines closest to a scale-down; status.blockedMachines counts them all, the ScaleDownBlocked events give every reason).',
      }),
    ),
    unneededSince: Type.Optional(
      Type.String({ format: 'date-time', description: 'Since when this Ready machine has been under scaleDown.utilizationThreshold (kept across leader changes).' }),
    ),
    disruption: Type.Optional(
      StringEnum(DisruptionValues, {
        description: 'Scale-down standing of a Ready machine: Candidate (unneeded, its pods fit elsewhere; the scheduler extender scores it lower) or Next (chosen to be drained next; the extender keeps new pods off it).',
      }),
    ),
    drain: Type.Optional(
      Type.Object(
        {
          startedAt: Type.String({ format: 'date-time', description: 'When the drain began (the Node was tainted).' }),
          deadline: Type.String({ format: 'date-time', description: 'startedAt + scaleDown.drainTimeoutSeconds: past it the drain is aborted.' }),
          podsToEvict: Type.Integer({ minimum: 0, description: 'Pods that still have to leave the Node (DaemonSet and mirror pods excluded).' }),
          evicted: Type.Integer({ minimum: 0, description: 'Evictions accepted so far.' }),
          lastRefusal: Type.Optional(Type.String({ maxLength: 1024, description: 'The last eviction refusal (e.g. a PodDisruptionBudget allowing no disruption), in words.' })),
        },
        { description: 'Progress of the drain in flight (phase Draining).' },
      ),
    ),
    // In a fleet of more than 500 machines, power stays out of status (the metric
    // bamel_machine_power_watts has it) and the machines at rest have boot, breakEven and
    // powerCycles packed into status.learned (controller/reconcile/status-compact.ts).
    power: Type.Optional(MachinePowerSchema),
    boot: Type.Optional(BootStatusSchema),
    breakEven: Type.Optional(BreakEvenStatusSchema),
    powerCycles: Type.Optional(PowerCyclesStatusSchema),
  },
  { description: 'The state of one managed machine.' },
);

export const ConditionSchema = Type.Object(
  {
    type: Type.String({ description: 'Condition type, e.g. Ready, InventoryValid, ScalingLimited, BMCDegraded.', maxLength: 316 }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'True, False or Unknown.' }),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: 'The spec generation the condition was computed from.' })),
    lastTransitionTime: Type.String({ format: 'date-time', description: 'When the status last changed.' }),
    reason: Type.String({ maxLength: 1024, description: 'Machine-readable CamelCase reason.' }),
    message: Type.String({ maxLength: 32768, description: 'Human-readable details.' }),
  },
  { description: 'A status condition (metav1.Condition).' },
);

export const ScaleEventSchema = Type.Object(
  {
    time: Type.String({ format: 'date-time', description: 'When the scale event happened.' }),
    direction: StringEnum(['Up', 'Down'] as const, { description: 'Up (power on) or Down (power off).' }),
    machine: Type.String({ maxLength: 253, description: 'The machine concerned.' }),
    reason: Type.String({ maxLength: 2048, description: 'Why, in words.' }),
  },
  { description: 'The last scale event.' },
);

export const PressureStatusSchema = Type.Object(
  {
    category: Type.String({ maxLength: 64, description: 'cpu, memory, ephemeral-storage or network.' }),
    level: Type.Number({ description: 'Current level (0..1 for resources).' }),
    ratePerMinute: Type.Number({ description: 'Estimated change of the level per minute over the window.' }),
    pressured: Type.Boolean({ description: 'Whether the category is under pressure now.' }),
    reason: Type.Optional(Type.String({ maxLength: 512, description: 'What put the category under pressure.' })),
  },
  { description: 'Pressure statistics of one category.' },
);

export const BareMetalAutoscalerStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: 'The spec generation this status reflects.' })),
    readyMachines: Type.Optional(Type.Integer({ minimum: 0, description: 'Managed machines that are Ready.' })),
    pendingMachines: Type.Optional(Type.Integer({ minimum: 0, description: 'Managed machines powering on or joining.' })),
    offMachines: Type.Optional(Type.Integer({ minimum: 0, description: 'Managed machines powered off.' })),
    totalMachines: Type.Optional(Type.Integer({ minimum: 0, description: 'Machines selected from the inventory.' })),
    onlineCapacity: Type.Optional(QuantityMap({ description: 'Capacity of the Ready machines.' })),
    pendingCapacity: Type.Optional(QuantityMap({ description: 'Capacity of the machines powering on or joining.' })),
    unschedulablePods: Type.Optional(Type.Integer({ minimum: 0, description: 'Unschedulable pods this autoscaler considered at the last reconcile.' })),
    blockedMachines: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Ready machines that scale-down blockers keep on; status.machines[].blockers names the reason for the 20 closest to a scale-down, the ScaleDownBlocked events for each.' }),
    ),
    lastScaleEvent: Type.Optional(ScaleEventSchema),
    lastScaleTime: Type.Optional(Type.String({ format: 'date-time', description: 'The time of the last scale event (for the printer column).' })),
    lastScaleDownFailure: Type.Optional(
      Type.Object(
        {
          time: Type.String({ format: 'date-time', description: 'When the drain was aborted or the power-off failed.' }),
          machine: Type.String({ maxLength: 253, description: 'The machine concerned.' }),
          reason: Type.String({ maxLength: 2048, description: 'Why, in words.' }),
        },
        { description: 'The last failed scale-down: no drain starts until scaleDown.cooldownSeconds after it.' },
      ),
    ),
    pressure: Type.Optional(Type.Array(PressureStatusSchema, { maxItems: 16, description: 'Pressure statistics per category.' })),
    machines: Type.Optional(
      Type.Array(MachineStatusSchema, {
        maxItems: 10000,
        description: 'Per machine: phase, since when, the operation in flight.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
    learned: Type.Optional(
      Type.String({
        maxLength: 1048576,
        description:
          'In a fleet of more than 500 machines: the boot times, break-even holds and power-offs of the machines at rest (Off or Ready, nothing in flight), packed, one space-separated entry per status.machines[] element (see the README, "Status of a large fleet"); the other machines keep boot, breakEven and powerCycles.',
      }),
    ),
    demandProfile: Type.Optional(DemandProfileSchema),
    conditions: Type.Optional(
      Type.Array(ConditionSchema, {
        maxItems: 32,
        description: 'Ready, InventoryValid, ScalingLimited, BMCDegraded and others.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    energy: Type.Optional(EnergyStatusSchema),
  },
  { description: 'What the autoscaler observed and did.' },
);

// Kubernetes allows nothing but the type here (not even a description).
export const ObjectMetaSchema = Type.Unsafe<Record<string, unknown>>({ type: 'object' });

export const BareMetalAutoscalerSchema = Type.Object(
  {
    apiVersion: Type.Optional(Type.String({ description: 'APIVersion of this object: autoscaling.bamel.io/v1alpha1.' })),
    kind: Type.Optional(Type.String({ description: 'Kind of this object: BareMetalAutoscaler.' })),
    metadata: Type.Optional(ObjectMetaSchema),
    spec: BareMetalAutoscalerSpecSchema,
    status: Type.Optional(BareMetalAutoscalerStatusSchema),
  },
  {
    description:
      'BareMetalAutoscaler powers idle bare-metal machines off through their BMC (Redfish or IPMI) and powers the best-fitting machine back on when pods or pressure need room.',
  },
);

export type BareMetalAutoscalerSpec = Static<typeof BareMetalAutoscalerSpecSchema>;
export type BareMetalAutoscalerStatus = Static<typeof BareMetalAutoscalerStatusSchema>;
export type MachineStatus = Static<typeof MachineStatusSchema>;
export type Operation = Static<typeof OperationSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type ScaleEvent = Static<typeof ScaleEventSchema>;
export type ScaleDown = Static<typeof ScaleDownSchema>;
export type DemandProfile = Static<typeof DemandProfileSchema>;
export type PressureStatus = Static<typeof PressureStatusSchema>;
export type MachineSelector = Static<typeof MachineSelectorSchema>;
export interface BareMetalAutoscaler {
  apiVersion?: string;
  kind?: string;
  /** As the API server sends it (informer caches keep timestamps as strings). */
  metadata: V1ObjectMeta & { name: string };
  spec: BareMetalAutoscalerSpec;
  status?: BareMetalAutoscalerStatus;
}

export const PRINTER_COLUMNS = [
  { name: 'Min', type: 'integer', jsonPath: '.spec.minMachines', description: 'Machines always kept on.' },
  { name: 'Max', type: 'integer', jsonPath: '.spec.maxMachines', description: 'Machines on at most.' },
  { name: 'Ready', type: 'integer', jsonPath: '.status.readyMachines', description: 'Managed machines Ready.' },
  { name: 'Pending', type: 'integer', jsonPath: '.status.pendingMachines', description: 'Machines powering on or joining.' },
  { name: 'Last Scale', type: 'date', jsonPath: '.status.lastScaleTime', description: 'Time of the last scale event.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
] as const;
