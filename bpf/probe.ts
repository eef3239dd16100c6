import { loadAddon, trafficObjectPath, type BpfObject, type LibbpfError, type Link, type ProgramStats } from './addon.js';
import { decodeCounters, decodePerCpuU64Array, type TrafficCounters } from './counters.js';

/** The agent may not load or attach eBPF programs here (EPERM/EACCES from the kernel). */
export class BpfPermissionError extends Error {
  constructor(readonly libbpf: LibbpfError) {
    super(
      `no permission to load eBPF programs (${libbpf.code ?? 'EPERM'}): bamel agent needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN ` +
        `(CAP_SYS_ADMIN on kernels before 5.8); in a Pod, run it privileged or with those capabilities. ${libbpf.operation ?? ''}`.trim(),
    );
    this.name = 'BpfPermissionError';
  }
}

export interface TrafficProbeOptions {
  /** The cgroup v2 root the cgroup_skb programs attach to. */
  cgroupRoot: string;
  /** Look at payloads (HTTP/1.x and HTTP/2 requests). Default true. */
  parseL7?: boolean;
  /** Bound of the counters map (cgroups counted at once). Default 16384. */
  maxCgroups?: number;
  /** Bound of the per-flow LRU map. Default 65536. */
  maxFlows?: number;
  /** Attach tcp:tcp_retransmit_skb too. Default true. */
  retransmits?: boolean;
  objectPath?: string;
}

export interface Overflow {
  /** Packets of cgroups that found the counters map full (raise maxCgroups). */
  countersFull: number;
  /** HTTP/2 flows whose frame boundaries were lost (no longer counted). */
  h2Resync: number;
}

export const PROGRAMS = { ingress: 'count_ingress', egress: 'count_egress', rmdir: 'cgroup_gone', retransmit: 'tcp_retransmit' } as const;

function isPermission(err: unknown): err is LibbpfError {
  const code = (err as LibbpfError | undefined)?.code;
  return code === 'EPERM' || code === 'EACCES';
}

/**
 * The traffic programs of bpf/traffic.bpf.c, loaded and attached: the cgroup_skb pair at the
 * cgroup v2 root, the cgroup_rmdir tracepoint that drops a removed cgroup's counters, and
 * (optionally) tcp:tcp_retransmit_skb. `close()` detaches everything; a failure half-way
 * through `open` detaches what was attached before it throws, so nothing is left behind.
 */
export class TrafficProbe {
  private constructor(
    private readonly obj: BpfObject,
    private readonly links: Link[],
  ) {}

  static open(opts: TrafficProbeOptions): TrafficProbe {
    const { BpfObject } = loadAddon();
    let obj: BpfObject | undefined;
    const links: Link[] = [];
    try {
      obj = new BpfObject(opts.objectPath ?? trafficObjectPath(), {
        tunables: { parse_l7: opts.parseL7 === false ? 0 : 1 },
        maxEntries: { counters: opts.maxCgroups ?? 16384, flows: opts.maxFlows ?? 65536 },
      });
      obj.load();
      links.push(obj.attachTracepoint(PROGRAMS.rmdir, 'cgroup', 'cgroup_rmdir'));
      if (opts.retransmits !== false) links.push(obj.attachTracepoint(PROGRAMS.retransmit, 'tcp', 'tcp_retransmit_skb'));
      links.push(obj.attachCgroup(PROGRAMS.ingress, opts.cgroupRoot));
      links.push(obj.attachCgroup(PROGRAMS.egress, opts.cgroupRoot));
      return new TrafficProbe(obj, links);
    } catch (err) {
      for (const l of links) {
        try {
          l.destroy();
        } catch {
          // Already detached; the object's destroy below covers the rest.
        }
      }
      obj?.destroy();
      if (isPermission(err)) throw new BpfPermissionError(err);
      throw err;
    }
  }

  /** Totals since load, per cgroup id. */
  read(): Map<bigint, TrafficCounters> {
    return decodeCounters(this.obj.readMap('counters'));
  }

  overflow(): Overflow {
    const [countersFull = 0, h2Resync = 0] = decodePerCpuU64Array(this.obj.readMap('overflow'));
    return { countersFull, h2Resync };
  }

  /** Drops the counters of cgroups that are gone (when the rmdir tracepoint missed them). */
  forget(ids: bigint[]): number {
    if (ids.length === 0) return 0;
    const keys = Buffer.alloc(ids.length * 8);
    ids.forEach((id, i) => keys.writeBigUInt64LE(id, i * 8));
    return this.obj.deleteKeys('counters', keys);
  }

  stats(program: string): ProgramStats {
    return this.obj.programStats(program);
  }

  attachments(): string[] {
    return this.links.filter((l) => l.attached).map((l) => l.description);
  }

  close(): void {
    for (const l of this.links) l.destroy();
    this.obj.destroy();
  }
}
