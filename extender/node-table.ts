import type { V1Node } from '@kubernetes/client-node';
import { candidateFromNode, type ReadonlyResourceList } from '../scheduling/index.js';
import { baseAmounts, type BaseAmounts } from './score.js';
import { drainingTaint, refusalOf, type Refusal, type Standing, type Standings, type WatchedCache } from './standings.js';

/**
 * The filter's answer for every Node, kept ready between requests. It depends on the Node
 * (its draining taint) and on the autoscalers' standings, never on the pod (the DaemonSet
 * exemption is decided per request, before any Node is looked at), so a request costs one
 * map lookup per name. Kept from the informers' events: a Node's taint and allocatable are
 * read when the Node changes; the refusals are rebuilt, once, on the first request after the
 * standings or a Node's taint changed (drains: rare), from the standings and the tainted
 * Nodes only (O(machines), not O(Nodes)).
 */
/** What prioritize reads of a Node, worked out when the Node changes. */
export interface NodeRecord {
  /** The name as a JSON string: every answer writes it. */
  quoted: string;
  allocatable: ReadonlyResourceList;
  /** allocatable's cpu and memory as numbers (score.ts baseFullness). */
  base: BaseAmounts;
}

export class NodeTable {
  private readonly tainted = new Set<string>();
  private readonly records = new Map<string, NodeRecord>();
  private refusals = new Map<string, Refusal>();
  /** The standings version the refusals were built from; -1 after a taint changed. */
  private builtFrom = -1;

  constructor(
    nodes: WatchedCache<V1Node>,
    private readonly standings: Standings,
  ) {
    nodes.on('add', (n) => this.set(n));
    nodes.on('update', (n) => this.set(n));
    nodes.on('delete', (n) => this.remove(n.metadata?.name ?? ''));
    for (const n of nodes.list()) this.set(n);
  }

  /** Why the filter refuses the Node (by name); undefined when it passes. */
  refusal(name: string): Refusal | undefined {
    const version = this.standings.version();
    if (version !== this.builtFrom) this.rebuild(version);
    return this.refusals.get(name);
  }

  /** The standing of the machine the Node is, if an autoscaler lists it. */
  standing(name: string): Standing | undefined {
    return this.standings.get(name);
  }

  /** The Node's record; undefined for a name no Node in the cache has. */
  record(name: string): NodeRecord | undefined {
    return this.records.get(name);
  }

  private set(node: V1Node): void {
    const name = node.metadata?.name;
    if (!name) return;
    const allocatable = candidateFromNode(node).allocatable;
    this.records.set(name, { quoted: this.records.get(name)?.quoted ?? JSON.stringify(name), allocatable, base: baseAmounts(allocatable) });
    const tainted = drainingTaint(node) !== undefined;
    if (tainted === this.tainted.has(name)) return;
    if (tainted) this.tainted.add(name);
    else this.tainted.delete(name);
    this.builtFrom = -1;
  }

  private remove(name: string): void {
    this.records.delete(name);
    if (this.tainted.delete(name)) this.builtFrom = -1;
  }

  private rebuild(version: number): void {
    const next = new Map<string, Refusal>();
    for (const [name, standing] of this.standings.entries()) {
      const r = refusalOf(standing, this.tainted.has(name));
      if (r !== undefined) next.set(name, r);
    }
    for (const name of this.tainted) {
      if (next.has(name)) continue;
      const r = refusalOf(undefined, true);
      if (r !== undefined) next.set(name, r);
    }
    this.refusals = next;
    this.builtFrom = version;
  }
}
