import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { DRAINING_TAINT, type BareMetalAutoscaler, type Disruption, type MachinePhase } from '../api/v1alpha1/baremetalautoscaler.js';

/**
 * Where the extender learns what the controller intends for each machine: the autoscalers'
 * status.machines[] (machine name == Node name) and the Nodes' draining taint. Read from the
 * manager's informer caches, never from the API server per request.
 */

/** What the extender needs of an informer: its cache and its change events. */
export interface WatchedCache<T> {
  list(): T[];
  get(key: string): T | undefined;
  hasSynced(): boolean;
  on(event: 'add' | 'delete', handler: (obj: T) => void): unknown;
  on(event: 'update', handler: (obj: T, old: T) => void): unknown;
}

/** One machine as an autoscaler's status describes it. */
export interface Standing {
  autoscaler: string;
  phase: MachinePhase;
  disruption?: Disruption;
  reason?: string;
}

/** Why a Node must not receive new pods; undefined when it may. */
export type Refusal = { kind: 'Draining' | 'PoweringOff' | 'Quarantined' | 'DrainNext' | 'DrainingTaint'; message: string };

const REFUSING_PHASES: ReadonlyMap<MachinePhase, Refusal['kind']> = new Map([
  ['Draining', 'Draining'],
  ['PoweringOff', 'PoweringOff'],
  ['Failed', 'Quarantined'],
] as const);

/** How strongly a standing keeps pods away: the strongest wins when autoscalers overlap. */
function weight(s: Standing): number {
  if (REFUSING_PHASES.has(s.phase)) return 3;
  if (s.disruption === 'Next') return 2;
  if (s.disruption === 'Candidate') return 1;
  return 0;
}

/**
 * Machine name → standing, rebuilt from the autoscaler cache after it changed (once, on the
 * next request), so a request costs a map lookup per Node.
 */
export class Standings {
  private byMachine = new Map<string, Standing>();
  private dirty = true;
  private builds = 0;

  constructor(private readonly autoscalers: WatchedCache<BareMetalAutoscaler>) {
    const changed = (): void => {
      this.dirty = true;
    };
    autoscalers.on('add', changed);
    autoscalers.on('update', changed);
    autoscalers.on('delete', changed);
  }

  get(machine: string): Standing | undefined {
    if (this.dirty) this.rebuild();
    return this.byMachine.get(machine);
  }

  /** Counts the rebuilds: what was derived from the standings is stale when it moved. */
  version(): number {
    if (this.dirty) this.rebuild();
    return this.builds;
  }

  /** Every machine an autoscaler lists, with its strongest standing. */
  entries(): IterableIterator<[string, Standing]> {
    if (this.dirty) this.rebuild();
    return this.byMachine.entries();
  }

  private rebuild(): void {
    this.dirty = false;
    this.builds++;
    const next = new Map<string, Standing>();
    for (const a of this.autoscalers.list()) {
      for (const m of a.status?.machines ?? []) {
        const s: Standing = {
          autoscaler: a.metadata.name,
          phase: m.phase,
          ...(m.disruption !== undefined ? { disruption: m.disruption } : {}),
          ...(m.reason !== undefined ? { reason: m.reason } : {}),
        };
        const prior = next.get(m.name);
        if (prior === undefined || weight(s) > weight(prior)) next.set(m.name, s);
      }
    }
    this.byMachine = next;
  }
}

/** The draining taint, whatever its value and effect: bamel put it there to empty the Node. */
export function drainingTaint(node: V1Node | undefined): { value?: string; effect: string } | undefined {
  const t = node?.spec?.taints?.find((x) => x.key === DRAINING_TAINT);
  return t === undefined ? undefined : { ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect };
}

/**
 * Whether a Node may receive the pod. The messages are the same for every Node failing for
 * the same cause, because kube-scheduler counts Nodes by message in its FailedScheduling
 * event ("0/5 nodes are available: 2 bamel: ...").
 */
export function refusal(standing: Standing | undefined, node: V1Node | undefined): Refusal | undefined {
  return refusalOf(standing, drainingTaint(node) !== undefined);
}

/** refusal() with the Node reduced to what it depends on: whether it has the draining taint. */
export function refusalOf(standing: Standing | undefined, hasDrainingTaint: boolean): Refusal | undefined {
  const why = standing?.reason !== undefined ? `: ${standing.reason}` : '';
  if (standing !== undefined) {
    const kind = REFUSING_PHASES.get(standing.phase);
    switch (kind) {
      case 'Draining':
        return { kind, message: `bamel: machine is being drained (autoscaler ${standing.autoscaler}${why})` };
      case 'PoweringOff':
        return { kind, message: `bamel: machine is being powered off (autoscaler ${standing.autoscaler}${why})` };
      case 'Quarantined':
        return { kind, message: `bamel: machine is quarantined after a failure (autoscaler ${standing.autoscaler}${why})` };
      default:
        break;
    }
    if (standing.disruption === 'Next') {
      return { kind: 'DrainNext', message: `bamel: machine is chosen to be drained next (autoscaler ${standing.autoscaler}${why})` };
    }
  }
  if (hasDrainingTaint) {
    return { kind: 'DrainingTaint', message: `bamel: Node has the ${DRAINING_TAINT} taint, it is being drained` };
  }
  return undefined;
}

/**
 * DaemonSet pods are exempt: each is pinned to one Node, stays there until the Node goes (a
 * drain leaves it), and kept off would only sit Pending and be counted as demand.
 */
export function isDaemonSetPod(pod: V1Pod): boolean {
  return pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.controller === true) ?? false;
}
