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
  /** Attach tcp:tcp_retransmit_skb too. Default true. */
  retransmits?: boolean;
  objectPath?: string;
  /**
   * The raw tracepoints the optional hooks attach to. Their kernel names; a test gives a
   * name the kernel does not have to see the agent degrade.
   */
  tracepoints?: { rmdir?: string; retransmit?: string };
}

/** An optional hook that could not be attached: what it is for, and what is lost without it. */
export interface DegradedHook {
  program: string;
  /** Where it would have attached: `raw_tp/<tracepoint>`. */
  hook: string;
  /** Why it failed (libbpf's error: errno and code). */
  reason: string;
  /** What the agent does without it. */
  consequence: string;
}

export interface Overflow {
  /** Packets of cgroups that found the counters map full (raise maxCgroups). */
  countersFull: number;
  /** HTTP/2 flows whose frame boundaries were lost (no longer counted). */
  h2Resync: number;
}

export const PROGRAMS = { ingress: 'count_ingress', egress: 'count_egress', rmdir: 'cgroup_gone', retransmit: 'tcp_retransmit' } as const;

/** The kernel tracepoints of the optional hooks (raw tracepoints: attached by name, no tracefs). */
export const TRACEPOINTS = { rmdir: 'cgroup_rmdir', retransmit: 'tcp_retransmit_skb' } as const;

const CONSEQUENCES = {
  rmdir: 'traffic is still counted; the counters of removed cgroups are dropped by the agent when it no longer finds the cgroup in the hierarchy',
  retransmit: 'traffic is still counted; TCP retransmissions are not (retransmits stay 0)',
} as const;

function isPermission(err: unknown): err is LibbpfError {
  const code = (err as LibbpfError | undefined)?.code;
  return code === 'EPERM' || code === 'EACCES';
}

/**
 * The traffic programs of bpf/traffic.bpf.c, loaded and attached: the cgroup_skb pair at the
 * cgroup v2 root, the cgroup_rmdir raw tracepoint that drops a removed cgroup's counters, and
 * (optionally) the tcp_retransmit_skb raw tracepoint. Raw tracepoints attach by name, so
 * nodes without tracefs mounted work; if one still cannot be attached, the probe counts
 * traffic without it and says so in `degraded`. `close()` detaches everything; a failure
 * half-way through `open` detaches what was attached before it throws, so nothing is left
 * behind.
 */
export class TrafficProbe {
  private constructor(
    private readonly obj: BpfObject,
    private readonly links: Link[],
    private readonly degradedHooks: readonly DegradedHook[],
  ) {}

  static open(opts: TrafficProbeOptions): TrafficProbe {
    const { BpfObject } = loadAddon();
    let obj: BpfObject | undefined;
    const links: Link[] = [];
    const degraded: DegradedHook[] = [];
    try {
      obj = new BpfObject(opts.objectPath ?? trafficObjectPath(), {
        tunables: { parse_l7: opts.parseL7 === false ? 0 : 1 },
        maxEntries: { counters: opts.maxCgroups ?? 16384 },
      });
      obj.load();
      // The hooks that only clean up or add detail: a failure degrades, it does not stop the agent.
      const optional = (which: 'rmdir' | 'retransmit'): void => {
        const tracepoint = opts.tracepoints?.[which] ?? TRACEPOINTS[which];
        try {
          links.push((obj as BpfObject).attachRawTracepoint(PROGRAMS[which], tracepoint));
        } catch (err) {
          const e = err as LibbpfError;
          degraded.push({
            program: PROGRAMS[which],
            hook: `raw_tp/${tracepoint}`,
            reason: `${e.code ?? 'error'}: ${(e.message.split('\n')[0] ?? '').trim()}`,
            consequence: CONSEQUENCES[which],
          });
        }
      };
      optional('rmdir');
      if (opts.retransmits !== false) optional('retransmit');
      links.push(obj.attachCgroup(PROGRAMS.ingress, opts.cgroupRoot));
      links.push(obj.attachCgroup(PROGRAMS.egress, opts.cgroupRoot));
      return new TrafficProbe(obj, links, degraded);
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

  /**
   * The optional hooks that could not be attached (empty when all are). Without the
   * cgroup_rmdir hook, whoever reads the counters must drop those of removed cgroups itself
   * (the agent does: `removesCgroupCounters` is false).
   */
  get degraded(): readonly DegradedHook[] {
    return this.degradedHooks;
  }

  /** Whether the kernel drops a removed cgroup's counters (the cgroup_rmdir hook is attached). */
  get removesCgroupCounters(): boolean {
    return !this.degradedHooks.some((d) => d.program === PROGRAMS.rmdir);
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
