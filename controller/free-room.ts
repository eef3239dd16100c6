import type { V1Pod } from '@kubernetes/client-node';
import { fits, HOSTNAME_LABEL, type CompiledCandidate, type CompiledPod, type ResourceList } from '../scheduling/index.js';

/**
 * The free room of the Ready Nodes a scale-down candidate's pods could move to, indexed so
 * that placing a pod does not scan every Node. The answer is the one a scan would give: the
 * first Node in the planner's order (fullest first) that is not excluded and on which the
 * feasibility engine's `fits` says yes, given the room already spent.
 *
 * Nodes are grouped in classes that the engine cannot tell apart for most pods: the same
 * blocking taints and the same labels but for kubernetes.io/hostname. A pod shape (its
 * tolerations, nodeSelector and required node affinity) is checked once per class, not once
 * per Node; a shape that reads the hostname label or the Node's name is checked Node by Node.
 * Within a class, a tree keeps the most free cpu, memory and pods of each range of Nodes, so
 * whole ranges without the room a pod needs are skipped. Every Node the search lands on is
 * still confirmed with `fits`: the index only rules out Nodes that could not fit.
 */

/** What the tree keeps per range of Nodes: the largest free amount of each. */
const INDEXED = ['cpu', 'memory', 'pods'] as const;

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
}

export function movable(pod: V1Pod, compiled: CompiledPod, req: ResourceList): Movable {
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
  return { pod, compiled, req, shape, nameSensitive, need };
}

/** One class of Nodes in the planner's order, with its tree of largest free amounts. */
interface NodeClass {
  /** The Nodes' positions in the planner's order, ascending. */
  positions: number[];
  /** The first Node: the one a shape is checked against. */
  representative: CompiledCandidate;
  /** Leaves in the tree (a power of two, at least positions.length). */
  width: number;
  /** Per INDEXED resource: a heap-ordered tree, leaves at width + slot, -Infinity past the end. */
  max: Float64Array[];
}

/** A candidate whose free room this plan spends, in place (the cached one stays as it was). */
type Spendable = CompiledCandidate & { free: ResourceList };

const classKeys = new WeakMap<CompiledCandidate, string>();

function classKey(c: CompiledCandidate): string {
  let key = classKeys.get(c);
  if (key !== undefined) return key;
  const labels = [...c.labels].filter(([k]) => k !== HOSTNAME_LABEL).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  key = JSON.stringify([c.blockingTaints.map((t) => [t.key, t.value ?? null, t.effect]), labels]);
  classKeys.set(c, key);
  return key;
}

export class FreeRoom {
  private readonly rooms: (CompiledCandidate | Spendable)[];
  private readonly spendable: boolean[];
  private readonly classOf: Int32Array;
  private readonly slotOf: Int32Array;
  private readonly classes: NodeClass[] = [];
  /** Per shape, the classes whose Nodes it may run on (resources aside). */
  private readonly allowed = new Map<string, readonly NodeClass[]>();
  /** What spending changed, to be put back: position, resource, amount before (undefined: absent). */
  private readonly journal: { pos: number; resource: string; before: bigint | undefined }[] = [];

  /** `rooms` in the order pods are placed in. */
  constructor(rooms: readonly CompiledCandidate[]) {
    this.rooms = [...rooms];
    this.spendable = rooms.map(() => false);
    this.classOf = new Int32Array(rooms.length);
    this.slotOf = new Int32Array(rooms.length);
    const byKey = new Map<string, number>();
    rooms.forEach((room, pos) => {
      const key = classKey(room);
      let id = byKey.get(key);
      if (id === undefined) {
        byKey.set(key, (id = this.classes.length));
        this.classes.push({ positions: [], representative: room, width: 0, max: [] });
      }
      const cls = this.classes[id] as NodeClass;
      this.classOf[pos] = id;
      this.slotOf[pos] = cls.positions.length;
      cls.positions.push(pos);
    });
    for (const cls of this.classes) {
      let width = 1;
      while (width < cls.positions.length) width *= 2;
      cls.width = width;
      cls.max = INDEXED.map(() => new Float64Array(2 * width).fill(-Infinity));
      cls.positions.forEach((pos, slot) => this.setLeaf(cls, slot, pos));
      for (const tree of cls.max) for (let i = width - 1; i >= 1; i--) tree[i] = Math.max(tree[2 * i] as number, tree[2 * i + 1] as number);
    }
  }

  name(pos: number): string {
    return (this.rooms[pos] as CompiledCandidate).name;
  }

  /** The first Node, in order, not excluded, where the pod fits now; -1 when there is none. */
  find(m: Movable, exclude: (name: string) => boolean): number {
    let best = -1;
    for (const cls of this.classesFor(m)) {
      const limit = best < 0 ? Infinity : best;
      if ((cls.positions[0] as number) >= limit) continue;
      const slot = this.first(cls, 1, 0, cls.width, m, exclude, limit);
      if (slot >= 0) best = cls.positions[slot] as number;
    }
    return best;
  }

  /** Takes the pod's requests from the Node's free room. */
  spend(pos: number, req: ResourceList): void {
    const room = this.own(pos);
    for (const [resource, amount] of req) {
      const before = room.free.get(resource);
      this.journal.push({ pos, resource, before });
      room.free.set(resource, (before ?? 0n) - amount);
    }
    this.update(pos);
  }

  /** A point to roll back to. */
  mark(): number {
    return this.journal.length;
  }

  /** Gives back the room spent since the mark. */
  rollback(mark: number): void {
    const touched = new Set<number>();
    while (this.journal.length > mark) {
      const { pos, resource, before } = this.journal.pop() as (typeof this.journal)[number];
      const free = (this.rooms[pos] as Spendable).free;
      if (before === undefined) free.delete(resource);
      else free.set(resource, before);
      touched.add(pos);
    }
    for (const pos of touched) this.update(pos);
  }

  private classesFor(m: Movable): readonly NodeClass[] {
    if (m.nameSensitive) return this.classes;
    let list = this.allowed.get(m.shape);
    if (list === undefined) {
      // Resources aside: the same pod with nothing to check but its placement rules.
      const rules: CompiledPod = { ...m.compiled, checkedResources: [], checkedAmounts: [] };
      list = this.classes.filter((cls) => fits(rules, cls.representative));
      this.allowed.set(m.shape, list);
    }
    return list;
  }

  /** The first slot under tree node `node` (covering slots lo..hi) where the pod fits, before position `limit`. */
  private first(cls: NodeClass, node: number, lo: number, hi: number, m: Movable, exclude: (name: string) => boolean, limit: number): number {
    if (lo >= cls.positions.length || (cls.positions[lo] as number) >= limit) return -1;
    for (let r = 0; r < INDEXED.length; r++) if (((cls.max[r] as Float64Array)[node] as number) < (m.need[r] as number)) return -1;
    if (hi - lo === 1) {
      const room = this.rooms[cls.positions[lo] as number] as CompiledCandidate;
      return !exclude(room.name) && fits(m.compiled, room) ? lo : -1;
    }
    const mid = (lo + hi) >> 1;
    const left = this.first(cls, 2 * node, lo, mid, m, exclude, limit);
    return left >= 0 ? left : this.first(cls, 2 * node + 1, mid, hi, m, exclude, limit);
  }

  /** The Node's room as this plan spends it: its free amounts copied on the first spend. */
  private own(pos: number): Spendable {
    const room = this.rooms[pos] as CompiledCandidate;
    if (this.spendable[pos]) return room as Spendable;
    const copy: Spendable = { ...room, free: new Map(room.free) };
    this.rooms[pos] = copy;
    this.spendable[pos] = true;
    return copy;
  }

  private setLeaf(cls: NodeClass, slot: number, pos: number): void {
    const free = (this.rooms[pos] as CompiledCandidate).free;
    INDEXED.forEach((r, i) => ((cls.max[i] as Float64Array)[cls.width + slot] = Number(free.get(r) ?? 0n)));
  }

  private update(pos: number): void {
    const cls = this.classes[this.classOf[pos] as number] as NodeClass;
    const slot = this.slotOf[pos] as number;
    this.setLeaf(cls, slot, pos);
    for (const tree of cls.max) {
      for (let i = (cls.width + slot) >> 1; i >= 1; i >>= 1) tree[i] = Math.max(tree[2 * i] as number, tree[2 * i + 1] as number);
    }
  }
}
