import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseInventoryConfigMap, type InventoryResult } from '../api/inventory.js';
import { inventoriesOf, inventoryKey, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import type { ParsedMachine } from '../api/inventory.js';
import {
  candidateFromMachine,
  check,
  compileCandidate,
  compilePod,
  summarizeInfeasible,
  type CompiledCandidate,
  type CompiledPod,
  type MachineVerdict,
} from '../scheduling/index.js';
import { podRef, type EventType, type InvolvedObject } from '../kube/events.js';
import { compiledSignature, unschedulableSince } from './observe.js';
import { TokenBucket } from '../kube/rate-limit.js';
import { systemClock } from '../kube/clock.js';
import { errorMessage } from '../kube/errors.js';

/**
 * The feasibility verdict of each unschedulable pod against the powered-off machines: the
 * scheduler does not call extenders when its own filters leave no Node, so the pods it
 * cannot place are flagged here, from the pod watch, with the same feasibility engine the
 * scale-up decision uses (scheduling/). Each such pod gets one annotation (the mark, JSON)
 * and an event saying which powered-off machines could host it and why each other cannot.
 * Leader only; debounced; a pod is written only when its mark changes, at a bounded rate.
 */

/** The pod mark: JSON, see PodMark. Removed once the pod is scheduled. */
export const FEASIBILITY_ANNOTATION = 'autoscaling.bamel.io/feasibility';
export const FEASIBILITY_EVENT_REASON = 'MachineFeasibility';

/** Names listed per list of the mark before the rest are only counted. */
const MAX_NAMES = 50;
const MAX_GROUPS = 20;

/**
 * The mark's JSON: by autoscaler name, the verdict against that autoscaler's powered-off
 * machines. Each manager (a shard, with --autoscaler-selector) writes the entries of its own
 * autoscalers and leaves the others', so shards never undo each other's writes.
 */
export type PodMark = Record<string, AutoscalerVerdict>;

/**
 * `machines`: powered-off machines checked (phase Off, and Failed = quarantined).
 * `feasible`: those that could host the pod once powered on. `infeasible`: the others grouped
 * by their reasons (the feasibility engine's words, or "quarantined ..."), largest group
 * first. Lists are cut at 50 names, groups at 20; `count` and `more` say how many in all.
 */
export interface AutoscalerVerdict {
  machines: number;
  feasible: { count: number; names: string[] };
  infeasible: { count: number; reasons: string[]; names: string[] }[];
  /** Machines in groups beyond the first 20. */
  more?: number;
}

/** One powered-off machine as the verdict sees it. */
export interface OffMachine {
  name: string;
  autoscaler: string;
  candidate: CompiledCandidate;
  /** Set for a quarantined (Failed) machine: why, in words. */
  quarantined?: string;
}

const NAME_ORDER = new Intl.Collator('en', { numeric: true });

/** The verdict of one pod against the powered-off machines: the mark and the event message. */
export function podVerdict(pod: k8s.V1Pod | CompiledPod, machines: readonly OffMachine[]): { verdict: AutoscalerVerdict; message: string; feasible: boolean } {
  const compiled = 'invalid' in pod ? pod : compilePod(pod);
  const feasible: string[] = [];
  const results: MachineVerdict[] = [];
  const groups = new Map<string, { reasons: string[]; names: string[] }>();
  const addGroup = (reasons: string[], name: string): void => {
    const key = reasons.join('\n');
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { reasons, names: [] }));
    g.names.push(name);
  };
  const quarantined: string[] = [];
  for (const m of machines) {
    if (m.quarantined !== undefined) {
      addGroup([m.quarantined], m.name);
      quarantined.push(m.name);
      continue;
    }
    const verdict = check(compiled, m.candidate);
    results.push({ machine: m.name, verdict });
    if (verdict.feasible) feasible.push(m.name);
    else addGroup(verdict.reasons.map((r) => r.message), m.name);
  }
  feasible.sort(NAME_ORDER.compare);
  const sorted = [...groups.values()]
    .map((g) => ({ ...g, names: g.names.sort(NAME_ORDER.compare) }))
    .sort((a, b) => b.names.length - a.names.length || NAME_ORDER.compare(a.names[0] ?? '', b.names[0] ?? ''));
  const shown = sorted.slice(0, MAX_GROUPS);
  const more = sorted.slice(MAX_GROUPS).reduce((n, g) => n + g.names.length, 0);
  const verdict: AutoscalerVerdict = {
    machines: machines.length,
    feasible: { count: feasible.length, names: feasible.slice(0, MAX_NAMES) },
    infeasible: shown.map((g) => ({ count: g.names.length, reasons: g.reasons, names: g.names.slice(0, MAX_NAMES) })),
    ...(more > 0 ? { more } : {}),
  };
  const parts: string[] = [];
  if (machines.length === 0) parts.push('no machine is powered off');
  else if (feasible.length > 0) parts.push(`could run on ${feasible.length} of ${machines.length} powered-off machines: ${listNames(feasible)}`);
  else parts.push(`fits none of the ${machines.length} powered-off machines`);
  const why = summarizeInfeasible(results, { maxBytes: 600 });
  if (why !== '') parts.push(`not on ${why}`);
  if (quarantined.length > 0) parts.push(`quarantined: ${listNames(quarantined.sort(NAME_ORDER.compare))}`);
  return { verdict, message: parts.join('; '), feasible: feasible.length > 0 };
}

function listNames(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} (+${names.length - 5} more)`;
}

export interface PodVerdictsDeps {
  autoscalers: { list(): BareMetalAutoscaler[] };
  inventories: { get(key: string): k8s.V1ConfigMap | undefined };
  pods: { list(): k8s.V1Pod[]; get(key: string): k8s.V1Pod | undefined };
  /**
   * Sets (a string) or removes (null) the mark on a pod: a merge patch of its annotations,
   * conditional on the resourceVersion the new value was computed from (409 when stale).
   */
  writeMark(namespace: string, name: string, resourceVersion: string, value: string | null): Promise<void>;
  emit(obj: InvolvedObject, type: EventType, reason: string, message: string): void;
  logger: Logger;
  /** Quiet time after the last change before marks are computed; at most maxDelayMs after the first. */
  idleMs?: number;
  maxDelayMs?: number;
  /** Mark writes per second (a burst of `burst` goes at once). */
  writesPerSecond?: number;
  burst?: number;
}

interface Write {
  namespace: string;
  name: string;
  resourceVersion: string;
  value: string | null;
  event?: { type: EventType; message: string };
}

/** Parses a mark; anything else (absent, not ours, hand-edited into garbage) counts as empty. */
export function parseMark(text: string | undefined): PodMark {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as PodMark) : {};
  } catch {
    return {};
  }
}

/** Keeps every unschedulable pod's mark in line with the powered-off machines. */
export class PodVerdicts {
  private readonly dirty = new Set<string>();
  private everything = false;
  private firstAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly writes = new Map<string, Write>();
  private writing: Promise<void> | undefined;
  private readonly bucket: TokenBucket;
  private readonly inventoryCache = new Map<string, { rv: string; result: InventoryResult }>();
  private readonly candidateCache = new Map<string, { key: string; compiled: CompiledCandidate }>();
  private lastFingerprint = '';
  private stopped = false;

  constructor(private readonly deps: PodVerdictsDeps) {
    this.bucket = new TokenBucket(deps.writesPerSecond ?? 10, deps.burst ?? 20, systemClock);
  }

  /** From the pod informer: the pod's mark may have to be set, changed or removed. */
  podChanged(pod: k8s.V1Pod): void {
    const pending = unschedulableSince(pod) !== undefined;
    if (!pending && pod.metadata?.annotations?.[FEASIBILITY_ANNOTATION] === undefined) return;
    this.dirty.add(`${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`);
    this.schedule();
  }

  /** Autoscalers or inventories changed: the powered-off machines may be others now. */
  machinesChanged(): void {
    this.everything = true;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writes.clear();
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.firstAt ??= now;
    if (this.timer) clearTimeout(this.timer);
    const due = Math.min(now + (this.deps.idleMs ?? 500), this.firstAt + (this.deps.maxDelayMs ?? 2000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.firstAt = undefined;
      try {
        this.flush();
      } catch (err) {
        this.deps.logger.error({ err: errorMessage(err) }, 'computing pod feasibility marks failed');
      }
    }, Math.max(0, due - now));
  }

  private flush(): void {
    const byAutoscaler = this.offMachines();
    const fingerprint = [...byAutoscaler].map(([a, ms]) => `${a}:${ms.map((m) => `${m.name}${m.quarantined ?? ''}`).join(',')}`).join(';') + `#${this.inventoryVersions()}`;
    let keys: Iterable<string> = this.dirty;
    if (this.everything && fingerprint !== this.lastFingerprint) {
      keys = this.deps.pods
        .list()
        .filter((p) => unschedulableSince(p) !== undefined || p.metadata?.annotations?.[FEASIBILITY_ANNOTATION] !== undefined)
        .map((p) => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`);
    }
    this.lastFingerprint = fingerprint;
    this.everything = false;
    const bySignature = new Map<string, Map<string, ReturnType<typeof podVerdict>>>();
    for (const key of keys) {
      const pod = this.deps.pods.get(key);
      if (pod === undefined) continue;
      const w = this.wanted(pod, byAutoscaler, bySignature);
      if (w === undefined) this.writes.delete(key);
      else this.writes.set(key, w);
    }
    this.dirty.clear();
    if (this.writes.size > 0 && this.writing === undefined) {
      this.writing = this.drain().finally(() => {
        this.writing = undefined;
      });
    }
  }

  /** The write that brings the pod's mark in line, or undefined when it is. */
  private wanted(pod: k8s.V1Pod, byAutoscaler: Map<string, OffMachine[]>, cache: Map<string, Map<string, ReturnType<typeof podVerdict>>>): Write | undefined {
    if (pod.metadata?.deletionTimestamp) return undefined;
    const current = pod.metadata?.annotations?.[FEASIBILITY_ANNOTATION];
    const base = { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', resourceVersion: pod.metadata?.resourceVersion ?? '' };
    // Scheduled (or no longer unschedulable): the mark has nothing left to say.
    if (unschedulableSince(pod) === undefined) return current === undefined ? undefined : { ...base, value: null };
    if (byAutoscaler.size === 0) return undefined;
    const compiled = compilePod(pod);
    const signature = compiledSignature(pod, compiled);
    let mine = cache.get(signature);
    if (mine === undefined) {
      mine = new Map([...byAutoscaler].map(([a, machines]) => [a, podVerdict(compiled, machines)]));
      cache.set(signature, mine);
    }
    const before = parseMark(current);
    const merged: PodMark = { ...before };
    const changed: string[] = [];
    for (const [a, v] of mine) {
      if (JSON.stringify(before[a]) !== JSON.stringify(v.verdict)) changed.push(a);
      merged[a] = v.verdict;
    }
    const value = JSON.stringify(Object.fromEntries(Object.keys(merged).sort(NAME_ORDER.compare).map((a) => [a, merged[a]])));
    if (value === current) return undefined;
    const parts = changed.map((a) => `${a}: ${mine.get(a)?.message ?? ''}`);
    const anyFeasible = [...mine.values()].some((v) => v.feasible);
    return { ...base, value, ...(changed.length > 0 ? { event: { type: anyFeasible ? 'Normal' : 'Warning', message: parts.join(' | ') } } : {}) };
  }

  /** One write at a time, each waiting for its token; the newest wanted mark of a pod wins. */
  private async drain(): Promise<void> {
    while (!this.stopped && this.writes.size > 0) {
      const [key, w] = this.writes.entries().next().value as [string, Write];
      this.writes.delete(key);
      const wait = this.bucket.reserve();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.stopped) return;
      try {
        await this.deps.writeMark(w.namespace, w.name, w.resourceVersion, w.value);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 404) continue; // the pod is gone
        // 409: the pod changed since; its update event brings it back here with the new state.
        if (code !== 409) {
          this.deps.logger.warn({ pod: key, err: errorMessage(err) }, 'writing the pod feasibility mark failed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
        }
        this.dirty.add(key);
        this.schedule();
        continue;
      }
      if (w.event !== undefined) {
        const pod = this.deps.pods.get(key);
        this.deps.emit(
          podRef({ metadata: { name: w.name, namespace: w.namespace, ...(pod?.metadata?.uid ? { uid: pod.metadata.uid } : {}) } }),
          w.event.type,
          FEASIBILITY_EVENT_REASON,
          w.event.message,
        );
      }
    }
  }

  private inventoryVersions(): string {
    return this.deps.autoscalers
      .list()
      .map((a) => inventoriesOf(a.spec).map((r) => this.deps.inventories.get(inventoryKey(r))?.metadata?.resourceVersion ?? '-').join('+'))
      .join(',');
  }

  /**
   * By autoscaler (this manager's: its --autoscaler-selector), its powered-off machines: Off,
   * or Failed (quarantined), from its valid inventories. An autoscaler none of whose
   * inventories is usable is left out (its conditions say why).
   */
  private offMachines(): Map<string, OffMachine[]> {
    const out = new Map<string, OffMachine[]>();
    for (const a of this.deps.autoscalers.list()) {
      const byName = this.machinesOf(a);
      if (byName === undefined) continue;
      const list: OffMachine[] = [];
      out.set(a.metadata.name, list);
      for (const s of a.status?.machines ?? []) {
        if (s.phase !== 'Off' && s.phase !== 'Failed') continue;
        const hit = byName.get(s.name);
        if (hit === undefined) continue;
        const { machine: m, key } = hit;
        let c = this.candidateCache.get(s.name);
        if (c === undefined || c.key !== key) this.candidateCache.set(s.name, (c = { key, compiled: compileCandidate(candidateFromMachine(m)) }));
        list.push({
          name: s.name,
          autoscaler: a.metadata.name,
          candidate: c.compiled,
          ...(s.phase === 'Failed' ? { quarantined: `quarantined${s.retryAfter ? ` until ${s.retryAfter}` : ''}${s.reason ? ` (${s.reason})` : ''}` } : {}),
        });
      }
      list.sort((x, y) => NAME_ORDER.compare(x.name, y.name));
    }
    return out;
  }

  /**
   * The machines of an autoscaler's valid inventories by name, each with its inventory's
   * version; a name two inventories list is left out (the controller does not act on it).
   * Undefined when none of its inventories is usable.
   */
  private machinesOf(a: BareMetalAutoscaler): Map<string, { machine: ParsedMachine; key: string }> | undefined {
    const byName = new Map<string, { machine: ParsedMachine; key: string }>();
    const twice = new Set<string>();
    let usable = false;
    for (const ref of inventoriesOf(a.spec)) {
      const invKey = inventoryKey(ref);
      const cm = this.deps.inventories.get(invKey);
      if (cm === undefined) continue;
      const rv = cm.metadata?.resourceVersion ?? '';
      let hit = this.inventoryCache.get(invKey);
      if (hit === undefined || hit.rv !== rv) this.inventoryCache.set(invKey, (hit = { rv, result: parseInventoryConfigMap(cm) }));
      if (!hit.result.ok) continue;
      usable = true;
      for (const m of hit.result.inventory.machines) {
        if (byName.has(m.name)) twice.add(m.name);
        else byName.set(m.name, { machine: m, key: `${invKey}@${rv}` });
      }
    }
    for (const n of twice) byName.delete(n);
    return usable ? byName : undefined;
  }
}
