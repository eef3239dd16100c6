import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec, DemandProfile, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { expectedBootSeconds, slowBoot, startBoot } from '../boot-times.js';
import { blameShortOff, breakEvenSettings, holdSeconds, openPowerOff, refreshBreakEven, restingUntil } from '../break-even.js';
import type { PendingPod, PowerOnChoice, ScaleUpDecision } from '../decide.js';
import { isDaemonSetPod, isMirrorPod } from '../observe.js';
import { forecastRamp, observeDemand, type DemandSample } from '../predict.js';
import type { MachineEnergy } from '../scale-down.js';
import { scoreCandidates, type ResourceVector } from '../scoring.js';
import { podRequests } from '../../scheduling/index.js';
import { cyclesIn24h, recordPowerOff, refreshCycles, wearBlocker } from '../wear.js';
import type { Budget } from './budget.js';
import type { Intent, MachineStates } from './types.js';

/**
 * Energy-aware decisions, the reconcile's hooks: learned boot times (controller/boot-times.ts),
 * break-even holds and minimum off times (break-even.ts), wear limits (wear.ts) and
 * pre-warming from the demand learned by time of week (predict.ts). Pure: the reconciler
 * calls each at its place in the pipeline.
 */

const iso = (ms: number): string => new Date(ms).toISOString();
const MIB_MILLI = 1000n * 1024n * 1024n;

/** After the lifecycle: the rolling power-cycle window and the break-even verdicts move on. */
export function refreshEnergy(machines: Map<string, MachineStatus>, selected: readonly ParsedMachine[], spec: BareMetalAutoscalerSpec, now: number): void {
  const settings = breakEvenSettings(spec.scaleDown);
  for (const m of selected) {
    const s = machines.get(m.name);
    if (!s || (!s.powerCycles && !s.breakEven)) continue;
    const next = refreshCycles(refreshBreakEven(m, s, settings, now), now);
    if (next !== s) machines.set(m.name, next);
  }
}

/** What the scale-down planner asks of each machine: its hold, its wear limit, its cycles. */
export function scaleDownEnergy(machines: MachineStates, spec: BareMetalAutoscalerSpec, now: number): (name: string) => MachineEnergy {
  const settings = breakEvenSettings(spec.scaleDown);
  const max = spec.scaleDown.maxPowerCyclesPerDay ?? 6;
  const known = new Map<string, MachineEnergy>();
  return (name) => {
    const hit = known.get(name);
    if (hit) return hit;
    const s = machines.get(name);
    const hold = holdSeconds(s, settings);
    const be = s?.breakEven;
    const wear = wearBlocker(name, s, max, now);
    const energy: MachineEnergy = {
      holdMs: hold * 1000,
      ...(hold > 0 && be
        ? { holdWhy: `its last power-off paid back too late (capacity needed again after ${be.lastOffSeconds ?? '?'}s, its break-even time is ${be.seconds}s: boot energy / idle draw + floor), so it stays unneeded ${hold}s longer before the next` }
        : {}),
      ...(wear ? { wear } : {}),
      cycles: cyclesIn24h(s, now),
    };
    known.set(name, energy);
    return energy;
  };
}

/** Until when each Off machine rests after its power-off (scaleDown.minOffSeconds). */
export function restingOf(machines: MachineStates, selected: readonly ParsedMachine[], spec: BareMetalAutoscalerSpec, now: number): (name: string) => number | undefined {
  const settings = breakEvenSettings(spec.scaleDown);
  const byName = new Map(selected.map((m) => [m.name, m]));
  return (name) => {
    const m = byName.get(name);
    return m ? restingUntil(m, machines.get(name), settings, now) : undefined;
  };
}

/**
 * After the intents are in status: a power-on starts a measured boot; a power-off (not a
 * retry) counts a power cycle and opens its break-even verdict; a power-on for demand judges
 * the most recent power-off that did not pay back.
 */
export function afterIntents(machines: Map<string, MachineStatus>, intents: readonly Intent[], selected: readonly ParsedMachine[], spec: BareMetalAutoscalerSpec, now: number): void {
  const settings = breakEvenSettings(spec.scaleDown);
  for (const intent of intents) {
    const s = machines.get(intent.machine.name);
    if (!s?.operation || s.operation.startedAt !== iso(now)) continue;
    if (intent.action === 'PowerOn') machines.set(intent.machine.name, startBoot(s, intent.machine, now));
    else if (!intent.retry) machines.set(intent.machine.name, openPowerOff(recordPowerOff(s, now)));
  }
  const forDemand = intents.filter((i) => i.action === 'PowerOn' && (i.reason === 'PendingPods' || i.reason === 'Pressure')).map((i) => i.machine.name);
  if (!settings.enabled || forDemand.length === 0) return;
  const blamed = blameShortOff(machines, new Map(selected.map((m) => [m.name, m])), forDemand, settings, now);
  if (blamed) machines.set(blamed.name, blamed.status);
}

/** The join timeout's early warning: boots running well past their expected time. */
export function slowBoots(machines: MachineStates, selected: readonly ParsedMachine[], spec: BareMetalAutoscalerSpec, now: number): { warnings: { machine: string; message: string }[]; wakeAts: number[] } {
  const out: { warnings: { machine: string; message: string }[]; wakeAts: number[] } = { warnings: [], wakeAts: [] };
  for (const m of selected) {
    const s = machines.get(m.name);
    const slow = s ? slowBoot(m, s, m.joinTimeoutSeconds ?? spec.scaleUp.joinTimeoutSeconds, now) : undefined;
    if (slow?.message) out.warnings.push({ machine: m.name, message: slow.message });
    else if (slow) out.wakeAts.push(slow.warnAt);
  }
  return out;
}

export interface PreWarmInput {
  spec: BareMetalAutoscalerSpec;
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  decision: ScaleUpDecision;
  budget: Budget;
  pending: readonly PendingPod[];
  podsOn: (machine: string) => k8s.V1Pod[];
  busy: (machine: string) => boolean;
  resting: (machine: string) => number | undefined;
  profile: DemandProfile | undefined;
  now: number;
}

export interface PreWarm {
  /** The learned demand to keep in status (absent when predictive is off). */
  profile?: DemandProfile;
  choices: PowerOnChoice[];
  wakeAts: number[];
}

const ON = new Set(['Ready', 'PoweringOn', 'Joining']);

/** The requests of the pods bound to this autoscaler's machines and pending for them. */
export function demandNow(selected: readonly ParsedMachine[], machines: MachineStates, pending: readonly PendingPod[], podsOn: (m: string) => k8s.V1Pod[]): DemandSample {
  let cpu = 0n;
  let mem = 0n;
  for (const m of selected) {
    if (!ON.has(machines.get(m.name)?.phase ?? '') && machines.get(m.name)?.phase !== 'Draining') continue;
    for (const p of podsOn(m.name)) {
      if (isDaemonSetPod(p) || isMirrorPod(p)) continue;
      const r = podRequests(p);
      cpu += r.get('cpu') ?? 0n;
      mem += r.get('memory') ?? 0n;
    }
  }
  for (const p of pending) {
    cpu += p.requests.cpu ?? 0n;
    mem += p.requests.memory ?? 0n;
  }
  return { cpuMillis: Number(cpu), memoryMiB: Number(mem / MIB_MILLI) };
}

/**
 * Pre-warming: with spec.scaleUp.predictive on, the demand seen now goes into the profile,
 * and a ramp learned within (expected boot time + lookaheadSeconds) powers machines on now:
 * enough for the demand seen now plus the learned rise, within maxMachines and the
 * concurrency caps, never while demand already powers machines on. Once per ramp.
 */
export function preWarmStep(input: PreWarmInput): PreWarm {
  const { spec, now } = input;
  const predictive = spec.scaleUp.predictive;
  if (!predictive?.enabled) return { choices: [], wakeAts: [] };
  const seen = demandNow(input.selected, input.machines, input.pending, input.podsOn);
  let profile = observeDemand(input.profile, now, seen);
  const out: PreWarm = { profile, choices: [], wakeAts: [now + 60_000] };
  const { decision, budget } = input;
  if (budget.demandBlocked || decision.powerOn.length > 0 || decision.waiting.length > 0) return out;
  const off = input.selected.filter((m) => input.machines.get(m.name)?.phase === 'Off' && !input.busy(m.name) && input.resting(m.name) === undefined);
  if (off.length === 0) return out;
  const bootMs = Math.max(...off.map((m) => expectedBootSeconds(m, input.machines.get(m.name)))) * 1000;
  const ramp = forecastRamp(profile, now, bootMs + predictive.lookaheadSeconds * 1000);
  if (!ramp || profile.preWarmedFor === ramp.bucket) return out;
  // Capacity on or coming against the demand seen now plus the learned rise.
  const deficit: ResourceVector = { cpu: BigInt(Math.round(seen.cpuMillis + ramp.rise.cpuMillis)), memory: BigInt(Math.round(seen.memoryMiB + ramp.rise.memoryMiB)) * MIB_MILLI };
  for (const m of input.selected) {
    if (!ON.has(input.machines.get(m.name)?.phase ?? '')) continue;
    deficit.cpu = (deficit.cpu ?? 0n) - (m.capacity.cpu ?? 0n);
    deficit.memory = (deficit.memory ?? 0n) - (m.capacity.memory ?? 0n);
  }
  let room = budget.budget.machines - decision.powerOn.length;
  let candidates = off.map((m) => ({ name: m.name, capacity: m.capacity, powerCyclesToday: 0, ...(m.power?.maxWatts ?? m.power?.idleWatts ? { powerCost: m.power?.maxWatts ?? m.power?.idleWatts } : {}) }));
  const why = `demand learned for ${describeBucket(ramp.at)} rises by ${(ramp.rise.cpuMillis / 1000).toFixed(1)} cpu and ${Math.round(ramp.rise.memoryMiB / 1024)}Gi memory over now (requested now ${(seen.cpuMillis / 1000).toFixed(1)} cpu)`;
  while (room > 0 && candidates.length > 0 && ((deficit.cpu ?? 0n) > 0n || (deficit.memory ?? 0n) > 0n)) {
    const want: ResourceVector = { cpu: (deficit.cpu ?? 0n) > 0n ? (deficit.cpu ?? 0n) : 0n, memory: (deficit.memory ?? 0n) > 0n ? (deficit.memory ?? 0n) : 0n };
    const best = scoreCandidates(want, candidates, spec.scoring).ranked[0];
    const chosen = candidates.find((c) => c.name === best?.name);
    if (!best || !chosen) break;
    candidates = candidates.filter((c) => c !== chosen);
    room--;
    deficit.cpu = (deficit.cpu ?? 0n) - (chosen.capacity.cpu ?? 0n);
    deficit.memory = (deficit.memory ?? 0n) - (chosen.capacity.memory ?? 0n);
    out.choices.push({ machine: chosen.name, reason: 'PreWarm', pods: [], score: best.score, detail: `${why}; the ramp starts ${iso(ramp.at)}, Ready ~${predictive.lookaheadSeconds}s before it` });
  }
  if (out.choices.length > 0) out.profile = profile = { ...profile, preWarmedFor: ramp.bucket };
  return out;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function describeBucket(at: number): string {
  const d = new Date(at);
  return `${DAYS[(d.getUTCDay() + 6) % 7] ?? '?'} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')} UTC`;
}
