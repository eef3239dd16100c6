import type { V1Pod } from '@kubernetes/client-node';
import { compilePod, HOSTNAME_LABEL, podRequests, type CompiledPod, type ResourceList } from '../scheduling/index.js';
import { isMovable } from './blockers.js';

/**
 * A scale-down candidate's pods as the free-room index (controller/free-room.ts) places
 * them: the pods a drain would move, each compiled once per cache object, largest first,
 * with the shape that says which Nodes' classes could take it.
 */

/** The resources the free-room index keeps the largest free amount of, per range of Nodes. */
export const INDEXED = ['cpu', 'memory', 'pods'] as const;

/** A pod as the planner moves it: compiled once per cache object (replaced, never changed). */
export interface Movable {
  pod: V1Pod;
  compiled: CompiledPod;
  req: ResourceList;
  /** Equal keys: the same answer from every Node of a class. */
  shape: string;
  /** The shape reads the hostname label or the Node's name, so classes do not decide it. */
  nameSensitive: boolean;
  /** The amounts of INDEXED the fit checks, -Infinity where it checks none. */
  need: readonly number[];
  /** Equal keys: the same fit everywhere and the same room taken (the shape and the requests). */
  key: string;
}

function movable(pod: V1Pod, compiled: CompiledPod, req: ResourceList): Movable {
  const spec = pod.spec;
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const nameSensitive =
    compiled.nodeName !== undefined ||
    (spec?.nodeSelector !== undefined && Object.prototype.hasOwnProperty.call(spec.nodeSelector, HOSTNAME_LABEL)) ||
    (required?.nodeSelectorTerms ?? []).some((t) => (t.matchFields?.length ?? 0) > 0 || (t.matchExpressions ?? []).some((e) => e.key === HOSTNAME_LABEL));
  const shape = JSON.stringify([compiled.invalid.length > 0, compiled.tolerations, spec?.nodeSelector ?? null, required ?? null]);
  const need = INDEXED.map((r) => {
    const i = compiled.checkedResources.indexOf(r);
    return i < 0 ? -Infinity : Number(compiled.checkedAmounts[i]);
  });
  const key = `${shape} ${[...req].map(([r, v]) => `${r}=${v}`).join(',')}`;
  return { pod, compiled, req, shape, nameSensitive, need, key };
}

/** The pods a drain would move off one Node: as they are, and compiled, largest first. */
export interface Moving {
  pods: V1Pod[];
  largestFirst: Movable[];
  /** Equal signatures: placed alike, pod for pod (the pods' keys, largest first). */
  signature: string;
}

/**
 * Kept by pod list (the reconciler's pod index keeps a Node's list while its pods stay the
 * same objects) and by pod (cache objects are replaced, never changed).
 */
const movingOf = new WeakMap<readonly V1Pod[], Moving>();
const movableOf = new WeakMap<V1Pod, Movable>();

export function moving(pods: readonly V1Pod[]): Moving {
  let hit = movingOf.get(pods);
  if (hit !== undefined) return hit;
  const moved = pods.filter(isMovable);
  const items = moved.map((pod) => {
    let m = movableOf.get(pod);
    // A bound pod's nodeName says where it runs now, not where its replacement may go.
    if (m === undefined) movableOf.set(pod, (m = movable(pod, compilePod(unbound(pod)), podRequests(pod))));
    return m;
  });
  const largestFirst = items.sort(bySize);
  movingOf.set(pods, (hit = { pods: moved, largestFirst, signature: largestFirst.map((m) => m.key).join('\n') }));
  return hit;
}

function unbound(pod: V1Pod): V1Pod {
  const { nodeName: _n, ...spec } = pod.spec ?? { containers: [] };
  return { ...pod, spec };
}

/** Largest first: by cpu, then memory (a stable sort keeps the pods' order among equals). */
function bySize(a: { req: ResourceList }, b: { req: ResourceList }): number {
  const d = (b.req.get('cpu') ?? 0n) - (a.req.get('cpu') ?? 0n);
  if (d !== 0n) return d > 0n ? 1 : -1;
  const m = (b.req.get('memory') ?? 0n) - (a.req.get('memory') ?? 0n);
  return m > 0n ? 1 : m < 0n ? -1 : 0;
}
