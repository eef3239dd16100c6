import { Type } from '@sinclair/typebox';
import { withRules } from '../schema-helpers.js';

/**
 * The scale-up and scale-down settings of a BareMetalAutoscaler's spec, and the per-machine
 * energy bookkeeping of its status (learned boot times, break-even hold, power cycles) and
 * the learned demand profile behind pre-warming. Part of the one source of the API
 * (baremetalautoscaler.ts puts them together).
 */

export const PredictiveSchema = Type.Object(
  {
    enabled: Type.Boolean({
      description: 'Learn the demand by time of week (requests of the pods bound to and pending for these machines) and power machines on ahead of a recurring ramp. Off by default; the demand is learned only while it is on.',
      default: false,
    }),
    lookaheadSeconds: Type.Integer({
      description: "How long before a learned ramp its machines should be Ready: a machine is powered on its learned boot time plus this ahead of the ramp. Must be below scaleDown.unneededSeconds (a pre-warmed machine is an ordinary unneeded candidate, so a wrong prediction costs at most that much idle power).",
      default: 120,
      minimum: 0,
      maximum: 3600,
    }),
  },
  { description: 'Pre-warming: machines powered on ahead of a ramp the autoscaler has seen recur at this time of day and week (events PreWarm).', default: {} },
);

export const BreakEvenSchema = Type.Object(
  {
    enabled: Type.Boolean({
      description: "Hold machines on whose recent off periods were shorter than their break-even time (boot energy / idle draw + floorSeconds): each short off period doubles the machine's extra hold before its next power-off, each long one halves it.",
      default: true,
    }),
    floorSeconds: Type.Integer({
      description: 'Added to every break-even time: the cost of a power cycle beyond its energy (shutdown, wear, risk).',
      default: 60,
      minimum: 0,
      maximum: 86400,
    }),
  },
  { description: 'Break-even power-off: powering a machine off pays only when it stays off longer than its break-even time.', default: {} },
);

export const ScaleUpSchema = Type.Object(
  {
    cooldownSeconds: Type.Integer({
      description: 'Seconds after a scale-up decision before the next one for pending pods or pressure. Powering on to reach minMachines is not delayed.',
      default: 60,
      minimum: 0,
      maximum: 86400,
    }),
    maxConcurrentPowerOns: Type.Integer({
      description: 'At most this many machines powering on or joining at the same time.',
      default: 2,
      minimum: 1,
      maximum: 1000,
    }),
    joinTimeoutSeconds: Type.Integer({
      description: "Seconds from power-on until the machine's Node must be Ready; past it the machine is powered off and quarantined. A machine's own joinTimeoutSeconds in the inventory overrides it.",
      default: 600,
      minimum: 30,
      maximum: 86400,
    }),
    predictive: PredictiveSchema,
  },
  { description: 'When and how fast machines are powered on.', default: {} },
);

export const ScaleDownSchema = withRules(
  Type.Object(
    {
      enabled: Type.Boolean({ description: 'Power idle machines off. When false, machines are only ever powered on.', default: true }),
      utilizationThreshold: Type.Number({
        description: 'A Ready machine whose utilisation (the larger of cpu and memory requested / allocatable, DaemonSet and mirror pods ignored) stays below this is unneeded.',
        default: 0.5,
        minimum: 0,
        maximum: 1,
      }),
      unneededSeconds: Type.Integer({
        description: 'How long a machine must stay unneeded before it is drained and powered off.',
        default: 600,
        minimum: 0,
        maximum: 604800,
      }),
      cooldownSeconds: Type.Integer({
        description: 'Seconds after a scale-down (and after a scale-up) before the next scale-down.',
        default: 600,
        minimum: 0,
        maximum: 86400,
      }),
      drainTimeoutSeconds: Type.Integer({
        description: 'How long a drain may take (evictions refused by PodDisruptionBudgets are retried until then); past it the drain is aborted and the machine stays on.',
        default: 600,
        minimum: 10,
        maximum: 86400,
      }),
      maxConcurrentDrains: Type.Integer({
        description: 'At most this many machines draining or powering off at the same time.',
        default: 1,
        minimum: 1,
        maximum: 100,
      }),
      minOffSeconds: Type.Optional(
        Type.Integer({
          description:
            "A machine powered off is not powered on again for this long, unless pods would otherwise stay pending past its boot time (no other machine can host them in time). Unset: each machine's break-even time (status.machines[].breakEven.seconds).",
          minimum: 0,
          maximum: 86400,
        }),
      ),
      maxPowerCyclesPerDay: Type.Integer({
        description: 'At most this many power-offs of one machine in any 24 hours (wear: each one is a power cycle); a machine at the limit stays on. Among equal candidates, the machine with fewer cycles is powered off first.',
        default: 6,
        minimum: 1,
        maximum: 48,
      }),
      breakEven: BreakEvenSchema,
    },
    { description: 'When idle machines are drained and powered off.', default: {} },
  ),
  [
    {
      rule: '!self.enabled || self.utilizationThreshold > 0.0',
      message: 'utilizationThreshold must be greater than 0 when scale-down is enabled (0 finds no machine unneeded); set enabled: false to turn scale-down off',
      fieldPath: '.utilizationThreshold',
      reason: 'FieldValueInvalid',
    },
  ],
);


export const BootStatusSchema = Type.Object(
  {
    lastSeconds: Type.Integer({ minimum: 0, description: 'The last measured boot: power-on request to Node Ready, in seconds.' }),
    p90Seconds: Type.Integer({ minimum: 0, description: 'The 90th percentile of the recent boots (the expected boot time in decisions, events and ETAs).' }),
    samples: Type.Integer({ minimum: 0, description: 'How many boots were measured.' }),
    recentSeconds: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 16, description: 'The most recent boots (up to 10), in seconds, oldest first (the p90 is computed from them).' })),
    startedAt: Type.Optional(Type.String({ format: 'date-time', description: 'The power-on request of the boot in flight.' })),
    expectedReadyAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the boot in flight is expected to be Ready (startedAt + the expected boot time).' })),
  },
  { description: 'Learned boot time of this machine (power-on request to Node Ready).' },
);

export const BreakEvenStatusSchema = Type.Object(
  {
    seconds: Type.Integer({ minimum: 0, description: 'Break-even time: boot energy (boot time × boot draw) / idle draw + scaleDown.breakEven.floorSeconds.' }),
    holdSeconds: Type.Integer({ minimum: 0, description: 'Extra seconds this machine must stay unneeded before its power-off (grows on off periods shorter than break-even, decays on long ones).' }),
    lastOffSeconds: Type.Optional(Type.Integer({ minimum: 0, description: 'How long its last off period lasted.' })),
  },
  { description: 'Break-even bookkeeping of this machine, kept while it holds a machine on longer (holdSeconds above 0).' },
);

export const PowerCyclesStatusSchema = Type.Object(
  {
    last24h: Type.Integer({ minimum: 0, description: 'Power-offs of this machine in the last 24 hours (each starts a power cycle).' }),
    powerOffs: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 48, description: 'When those power-offs were (Unix seconds), oldest first.' }),
  },
  { description: 'Power cycles of this machine in the rolling 24 hours (scaleDown.maxPowerCyclesPerDay).' },
);

export const DemandProfileSchema = Type.Object(
  {
    bucketSeconds: Type.Integer({ minimum: 60, description: 'Width of one time-of-week bucket.' }),
    cpuMillis: Type.String({ maxLength: 16384, description: 'Learned peak cpu requests (millicores) per time-of-week bucket from Monday 00:00 UTC, comma-separated; empty = not seen yet.' }),
    memoryMiB: Type.String({ maxLength: 16384, description: 'Learned peak memory requests (MiB) per bucket, as cpuMillis.' }),
    bucket: Type.Integer({ minimum: 0, description: 'The bucket being observed now (its week counted from the Unix epoch × buckets per week + bucket).' }),
    peakCpuMillis: Type.Integer({ minimum: 0, description: 'Peak cpu requests seen in the current bucket so far.' }),
    peakMemoryMiB: Type.Integer({ minimum: 0, description: 'Peak memory requests seen in the current bucket so far.' }),
    preWarmedFor: Type.Optional(Type.Integer({ minimum: 0, description: 'The bucket (as `bucket`) the last pre-warm was for: one pre-warm per ramp.' })),
  },
  { description: 'Demand learned by time of week for pre-warming (spec.scaleUp.predictive): each bucket an exponentially decayed peak of the requests.' },
);
