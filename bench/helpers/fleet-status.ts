import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import { DO_NOT_DISRUPT_ANNOTATION, type BareMetalAutoscalerSpec, type BareMetalAutoscalerStatus, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { refreshBreakEven, breakEvenSettings } from '../../controller/break-even.js';
import { powerEntry } from '../../controller/energy.js';
import { advance, type LifecycleSettings } from '../../controller/lifecycle.js';
import { afterIntents, scaleDownEnergy } from '../../controller/reconcile/energy-policy.js';
import { applyIntents } from '../../controller/reconcile/intents.js';
import { scaleDownStep } from '../../controller/reconcile/scale-down-step.js';
import { buildStatus } from '../../controller/reconcile/status.js';
import type { Intent, Store } from '../../controller/reconcile/types.js';
import { refreshCycles } from '../../controller/wear.js';
import { checkAutoscalerStructure } from '../../webhook/structure.js';

/**
 * The status a large fleet has after a week under bamel, built by the controller's own
 * steps (intents, lifecycle, boot times, break-even, wear, the scale-down plan, power
 * entries, buildStatus): every machine powered on and off several times (a full boot ring,
 * recent power-offs, a break-even hold), BMC readings for the machines on, a few hundred
 * Ready machines with blockers, some Failed with messages, operations in flight. A
 * realistic worst case for the size of status.machines[] (bench/status-size.bench.ts and
 * its CI test).
 */

export const WEEK_NOW = Date.parse('2026-12-07T12:00:00.000Z');
const HOUR = 3_600_000;
const IDENTITY = 'bamel-manager-7d9f8c6b5-x2k4q';
const LIFE: LifecycleSettings = { joinTimeoutMs: 600_000, settleGraceMs: 30_000, quarantineBaseMs: 60_000, quarantineMaxMs: 3_600_000 };

export interface Fleet {
  spec: BareMetalAutoscalerSpec;
  selected: ParsedMachine[];
  /** The status as buildStatus makes it (before the writer). */
  status: BareMetalAutoscalerStatus;
}

/** Phase shares of the fleet (the rest is Off). */
const FINAL: { phase: MachineStatus['phase']; per10k: number }[] = [
  { phase: 'Ready', per10k: 4000 },
  { phase: 'PoweringOn', per10k: 60 },
  { phase: 'Joining', per10k: 60 },
  { phase: 'PoweringOff', per10k: 40 },
  { phase: 'Failed', per10k: 150 },
];

export interface FleetProfile {
  /**
   * Power cycles of each machine over the week. daily: the elastic 60 % of the fleet once a
   * day, the base 40 % twice in the week (a diurnal fleet); heavy: every machine 2 to 4 times a day.
   */
  cycles: 'daily' | 'heavy';
  /** Machine names: short (`dc1-r042-n17`, 12 characters) or long (`dc1-rack-042-node-17`, 20). */
  names: 'short' | 'long';
}

/** The realistic worst case: every machine cycled daily for a week, names as a rack/node scheme gives them. */
export const REALISTIC: FleetProfile = { cycles: 'daily', names: 'short' };

export function machineName(i: number, names: FleetProfile['names']): string {
  const rack = String(Math.floor(i / 40)).padStart(3, '0');
  const node = String(i % 40).padStart(2, '0');
  return names === 'long' ? `dc1-rack-${rack}-node-${node}` : `dc1-r${rack}-n${node}`;
}

function parsed(i: number, names: FleetProfile['names']): ParsedMachine {
  const name = machineName(i, names);
  return {
    index: i,
    name,
    bmc: { address: `redfish+https://10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/redfish/v1/Systems/1`, parsedAddress: {} as ParsedMachine['bmc']['parsedAddress'], credentialsSecret: 'bmc', insecureSkipVerify: false },
    labels: { rack: `r${Math.floor(i / 40)}` },
    taints: [],
    capacity: { cpu: 32_000n, memory: 128n * 1024n ** 3n * 1000n, pods: 110_000n },
    capacityText: { cpu: '32', memory: '128Gi', pods: '110' },
    power: { idleWatts: 140 + (i % 5) * 10, maxWatts: 420 + (i % 3) * 40 },
    bootSeconds: 240,
  };
}

function specOf(): BareMetalAutoscalerSpec {
  const { defaulted, issues } = checkAutoscalerStructure({
    apiVersion: 'autoscaling.bamel.io/v1alpha1',
    kind: 'BareMetalAutoscaler',
    metadata: { name: 'fleet' },
    spec: { inventory: { namespace: 'bamel-system', name: 'machines' }, maxMachines: 10_000 },
  });
  if (issues.length > 0) throw new Error(issues.map((x) => x.message).join('; '));
  return defaulted.spec;
}

/** One machine's week: power-ons for pending pods and power-offs, through the real steps, ending in `final`. */
function history(m: ParsedMachine, i: number, spec: BareMetalAutoscalerSpec, final: MachineStatus['phase'], profile: FleetProfile): MachineStatus {
  const be = breakEvenSettings(spec.scaleDown);
  let map = new Map<string, MachineStatus>([[m.name, { name: m.name, phase: 'Off', since: new Date(WEEK_NOW - 7 * 24 * HOUR).toISOString() }]]);
  const get = (): MachineStatus => map.get(m.name) as MachineStatus;
  const act = (action: 'PowerOn' | 'PowerOff', at: number): void => {
    const intent: Intent = action === 'PowerOn'
      ? { machine: m, action, reason: 'PendingPods', message: `powering on for ${1 + (i % 9)} pending pod(s): best fit for cpu 24, memory 96Gi (score 0.${String(i % 97).padStart(2, '0')})` }
      : { machine: m, action, reason: 'ScaleDown', message: 'drained: unneeded for 600s' };
    const applied = applyIntents(map, [intent], undefined, IDENTITY, at);
    map = applied.machines;
    afterIntents(map, [intent], [m], spec, at);
  };
  const settle = (at: number, facts: Parameters<typeof advance>[2]): void => {
    const s = get();
    map.set(m.name, refreshCycles(refreshBreakEven(m, advance(m.name, s, facts, LIFE, at).status, be, at), at));
  };
  const done = (at: number): void => settle(at, { outcome: { id: get().operation?.id ?? '', done: true, ok: true } });
  // Daily: 7 cycles over the week (2 for the base of the fleet). Heavy: 12 to 24, the last few in the last 24 hours.
  const cycles = profile.cycles === 'daily' ? (i % 5 < 3 ? 7 : 2) : 12 + (i % 13);
  let t = WEEK_NOW - 7 * 24 * HOUR + (i % 60) * 60_000;
  const step = (6.5 * 24 * HOUR) / cycles;
  for (let c = 0; c < cycles; c++) {
    const boot = 200_000 + ((i * 7 + c * 13) % 90) * 1000;
    act('PowerOn', t);
    done(t + 15_000);
    settle(t + boot, { node: { ready: true, exists: true } });
    if (c === cycles - 1 && final === 'Ready') return get();
    act('PowerOff', t + step * 0.55);
    done(t + step * 0.55 + 20_000);
    t += step;
  }
  const at = WEEK_NOW - 40_000 - (i % 30) * 1000;
  if (final === 'Off') return get();
  act('PowerOn', at);
  if (final === 'PoweringOn') return get();
  done(at + 15_000);
  if (final === 'Joining') return get();
  if (final === 'Failed') {
    map.set(m.name, { ...get(), phase: 'Joining', since: new Date(at - 700_000).toISOString() });
    settle(at + 15_000, { node: { ready: false, exists: false } });
    // The join timeout's power-off, then the quarantine.
    map.set(m.name, { ...get(), reason: 'JoinTimeout', message: `its Node did not become Ready within the join timeout (600s) after power-on ${get().boot?.startedAt ?? ''}; powered off again` });
    act('PowerOff', at + 16_000);
    map.set(m.name, { ...get(), reason: 'JoinTimeout', message: `its Node did not become Ready within the join timeout (600s); powered off again` });
    done(at + 30_000);
    return get();
  }
  settle(at + 30_000, { node: { ready: true, exists: true } });
  act('PowerOff', WEEK_NOW - 5_000);
  return get();
}

function finalPhase(i: number, n: number): MachineStatus['phase'] {
  let from = 0;
  const slot = (i * 7919) % n;
  for (const f of FINAL) {
    const to = from + Math.round((f.per10k * n) / 10_000);
    if (slot >= from && slot < to) return f.phase;
    from = to;
  }
  return 'Off';
}

function pod(node: string, j: number, cpu: number, annotations?: Record<string, string>): k8s.V1Pod {
  return {
    metadata: { name: `web-7f9c${j}-${node.slice(-5)}`, namespace: `team-${j % 7}`, uid: `${node}-${j}`, ...(annotations ? { annotations } : {}), ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7f9c', uid: 'rs', controller: true }] },
    spec: { nodeName: node, containers: [{ name: 'c', resources: { requests: { cpu: String(cpu), memory: `${cpu * 2}Gi` } } }] },
    status: { phase: 'Running' },
  };
}

function store<T>(items: Map<string, T>): Store<T> {
  return { get: (k) => items.get(k), list: () => [...items.values()] };
}

/** The week-old fleet of `n` machines (10,000 for the realistic worst case). */
export function weekOldFleet(n = 10_000, profile: FleetProfile = REALISTIC): Fleet {
  const spec = specOf();
  const now = WEEK_NOW;
  const selected = Array.from({ length: n }, (_, i) => parsed(i, profile.names));
  const machines = new Map<string, MachineStatus>();
  for (const m of selected) machines.set(m.name, history(m, m.index, spec, finalPhase(m.index, n), profile));

  // Ready machines: most busy; every fourth unneeded (some for longer than unneededSeconds), a
  // few hundred of those held by a pod that must not be disrupted.
  const nodes = new Map<string, k8s.V1Node>();
  const pods = new Map<string, k8s.V1Pod[]>();
  let readyIndex = 0;
  for (const m of selected) {
    const s = machines.get(m.name) as MachineStatus;
    if (s.phase !== 'Ready') continue;
    const k = readyIndex++;
    nodes.set(m.name, { metadata: { name: m.name, labels: m.labels }, status: { allocatable: { cpu: '32', memory: '128Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] } });
    const unneeded = k % 4 === 0;
    if (unneeded) machines.set(m.name, { ...s, unneededSince: new Date(now - (k % 8 === 0 ? 900_000 : 240_000)).toISOString() });
    const blocked = unneeded && k % 12 === 0;
    pods.set(m.name, unneeded ? [pod(m.name, 0, 2, blocked ? { [DO_NOT_DISRUPT_ANNOTATION]: 'true' } : undefined)] : [pod(m.name, 0, 8), pod(m.name, 1, 8), pod(m.name, 2, 8)]);
  }
  const down = scaleDownStep({
    spec,
    previous: {},
    selected,
    machines,
    nodes: store(nodes),
    pdbs: [],
    podsOn: (name) => pods.get(name) ?? [],
    untaint: [],
    pendingCount: 0,
    pressured: [],
    rising: [],
    scaleUpInFlight: 0,
    unread: 0,
    onCount: [...machines.values()].filter((s) => s.phase !== 'Off' && s.phase !== 'Failed').length,
    deleting: false,
    energy: scaleDownEnergy(machines, spec, now),
    now,
  });

  // Power entries: a fresh BMC reading for machines on, the inventory's figure otherwise.
  const powered = new Map<string, MachineStatus>();
  for (const m of selected) {
    const s = down.machines.get(m.name) as MachineStatus;
    const on = s.phase === 'Ready' || s.phase === 'Joining' || s.phase === 'Draining';
    const reading = on ? { kind: 'reading' as const, watts: 150 + ((m.index * 37) % 2500) / 10, observedAt: new Date(now - 5_000 - (m.index % 25) * 1000), source: 'redfish-powersubsystem' as const } : undefined;
    const { power: _p, ...rest } = s;
    const entry = powerEntry({ phase: s.phase, since: s.since, reading, inventory: m.power, maxAgeMs: 120_000, now });
    powered.set(m.name, entry ? { ...rest, power: entry } : rest);
  }
  const status = buildStatus({
    generation: 3,
    conditions: [],
    selected,
    machines: powered,
    deletionBlocked: [],
    deleting: false,
    dryRun: false,
    decision: { powerOn: [], unplaceable: [], waiting: [] } as unknown as Parameters<typeof buildStatus>[0]['decision'],
    degraded: [],
    unschedulablePods: 0,
    readings: [{ category: 'cpu', level: 0.61, ratePerMinute: 0.002, pressured: false }, { category: 'memory', level: 0.48, ratePerMinute: -0.001, pressured: false }] as Parameters<typeof buildStatus>[0]['readings'],
    lastScaleEvent: { time: new Date(now - 5_000).toISOString(), direction: 'Down', machine: selected[0]?.name ?? '', reason: 'drained: unneeded for 600s' },
    lastScaleDownFailure: undefined,
    now,
    energy: { since: new Date(now - 7 * 24 * HOUR).toISOString(), consumedKWh: 123456.789012, savedKWh: 45678.901234, method: 'mixed', updatedAt: new Date(now).toISOString() },
  });
  return { spec, selected, status };
}

/** Bytes of the status as JSON, and each part's share: per-machine fields by name, the rest by top-level key. */
export function sizeReport(status: BareMetalAutoscalerStatus): { bytes: number; fields: { field: string; bytes: number; share: number }[] } {
  const bytes = Buffer.byteLength(JSON.stringify(status));
  const sums = new Map<string, number>();
  const add = (k: string, v: number): void => void sums.set(k, (sums.get(k) ?? 0) + v);
  for (const m of status.machines ?? []) {
    add('machines[] (braces, commas)', 2 + 1);
    for (const [k, v] of Object.entries(m)) add(`machines[].${k}`, Buffer.byteLength(`${JSON.stringify(k)}:${JSON.stringify(v)},`));
  }
  for (const [k, v] of Object.entries(status)) if (k !== 'machines') add(k, Buffer.byteLength(`${JSON.stringify(k)}:${JSON.stringify(v)},`));
  const fields = [...sums].map(([field, b]) => ({ field, bytes: b, share: Math.round((b / bytes) * 1000) / 10 })).sort((a, b) => b.bytes - a.bytes);
  return { bytes, fields };
}
