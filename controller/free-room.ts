import type { V1Pod } from '@kubernetes/client-node';
import { fits, HOSTNAME_LABEL, type CompiledCandidate, type CompiledPod, type ResourceList } from '../scheduling/index.js';
import { INDEXED, type Movable } from './placement.js';

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

/** A Node's room as one placement spends it: a copy, its free amounts changed in place. */
type Spendable = CompiledCandidate & { free: ResourceList };

/** The Nodes one placement has taken room on so far, and their room now (parallel arrays). */
interface Spent {
  at: number[];
  rooms: Spendable[];
}

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
  /** The Nodes' room as this plan has spent it so far (the cached candidates are never changed). */
  private readonly rooms: CompiledCandidate[];
  private readonly classOf: Int32Array;
  private readonly slotOf: Int32Array;
  private readonly classes: NodeClass[] = [];
  /** Per shape, the classes whose Nodes it may run on (resources aside). */
  private readonly allowed = new Map<string, readonly NodeClass[]>();
  /** Per signature of pods, where each went with nothing excluded, as long as no room is kept spent. */
  private readonly trials = new Map<string, Int32Array>();

  /** `rooms` in the order pods are placed in. */
  constructor(rooms: readonly CompiledCandidate[]) {
    this.rooms = [...rooms];
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

  /**
   * Places the pods, in the order given, each on the first Node (in order, not excluded)
   * where it fits with the room the pods before it took; keeps that room spent when
   * `commit`. Returns the pods that fit nowhere.
   */
  place(pods: readonly Movable[], exclude: (name: string) => boolean, commit: boolean): V1Pod[] {
    const at = this.run(pods, exclude, commit);
    return pods.filter((_, i) => (at[i] as number) < 0).map((m) => m.pod);
  }

  /**
   * place(pods, the Node named `self` excluded, nothing kept), shared by the machines whose
   * pods are alike. Placed with nothing excluded, pods that land on no Node named `self`
   * land where they would with it excluded, pod for pod; otherwise they are placed again.
   */
  trial(pods: readonly Movable[], signature: string, self: string): V1Pod[] {
    let at = this.trials.get(signature);
    if (at === undefined) this.trials.set(signature, (at = this.run(pods, () => false, false)));
    for (const pos of at) if (pos >= 0 && this.name(pos) === self) return this.place(pods, (n) => n === self, false);
    return pods.filter((_, i) => (at[i] as number) < 0).map((m) => m.pod);
  }

  /** Where each pod goes (a position, -1 for nowhere). */
  private run(pods: readonly Movable[], exclude: (name: string) => boolean, commit: boolean): Int32Array {
    // The room this call spends, apart: less than the tree's, so the tree only rules out Nodes still.
    const spent: Spent = { at: [], rooms: [] };
    const targets = new Int32Array(pods.length);
    for (let k = 0; k < pods.length; k++) {
      const m = pods[k] as Movable;
      const pos = this.find(m, exclude, spent);
      targets[k] = pos;
      if (pos < 0) continue;
      const i = spent.at.indexOf(pos);
      let room = spent.rooms[i];
      if (room === undefined) {
        const before = this.rooms[pos] as CompiledCandidate;
        room = { ...before, free: new Map(before.free) };
        spent.at.push(pos);
        spent.rooms.push(room);
      }
      for (const [resource, amount] of m.req) room.free.set(resource, (room.free.get(resource) ?? 0n) - amount);
    }
    if (commit && spent.at.length > 0) {
      spent.at.forEach((pos, i) => {
        this.rooms[pos] = spent.rooms[i] as CompiledCandidate;
        this.update(pos);
      });
      this.trials.clear();
    }
    return targets;
  }

  /** The first Node, in order, not excluded, where the pod fits now; -1 when there is none. */
  private find(m: Movable, exclude: (name: string) => boolean, spent: Spent): number {
    let best = -1;
    for (const cls of this.classesFor(m)) {
      const limit = best < 0 ? Infinity : best;
      if ((cls.positions[0] as number) >= limit) continue;
      const slot = this.first(cls, 1, 0, cls.width, m, exclude, limit, spent);
      if (slot >= 0) best = cls.positions[slot] as number;
    }
    return best;
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
  private first(cls: NodeClass, node: number, lo: number, hi: number, m: Movable, exclude: (name: string) => boolean, limit: number, spent: Spent): number {
    if (lo >= cls.positions.length || (cls.positions[lo] as number) >= limit) return -1;
    for (let r = 0; r < INDEXED.length; r++) if (((cls.max[r] as Float64Array)[node] as number) < (m.need[r] as number)) return -1;
    if (hi - lo === 1) {
      const pos = cls.positions[lo] as number;
      const room = spent.at.length > 0 ? (spent.rooms[spent.at.indexOf(pos)] ?? this.rooms[pos]) : this.rooms[pos];
      return !exclude((room as CompiledCandidate).name) && fits(m.compiled, room as CompiledCandidate) ? lo : -1;
    }
    const mid = (lo + hi) >> 1;
    const left = this.first(cls, 2 * node, lo, mid, m, exclude, limit, spent);
    return left >= 0 ? left : this.first(cls, 2 * node + 1, mid, hi, m, exclude, limit, spent);
  }

  private setLeaf(cls: NodeClass, slot: number, pos: number): void {
    const free = (this.rooms[pos] as CompiledCandidate).free;
    for (let r = 0; r < INDEXED.length; r++) (cls.max[r] as Float64Array)[cls.width + slot] = Number(free.get(INDEXED[r] as string) ?? 0n);
  }

  private update(pos: number): void {
    const cls = this.classes[this.classOf[pos] as number] as NodeClass;
    const slot = this.slotOf[pos] as number;
    this.setLeaf(cls, slot, pos);
    for (const tree of cls.max) {
      for (let i = (cls.width + slot) >> 1; i >= 1; i >>= 1) {
        const max = Math.max(tree[2 * i] as number, tree[2 * i + 1] as number);
        if (tree[i] === max) break; // nothing above changes either
        tree[i] = max;
      }
    }
  }
}
