import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The libbpf addon (bpf/addon/bpf_addon.cc), typed. Built by `make bpf` into bpf/build/;
 * BAMEL_BPF_DIR points elsewhere (a container image ships the addon and the object there).
 */

/** A libbpf failure: the errno, its code (EPERM, ...), and what libbpf printed (the verifier's log). */
export interface LibbpfError extends Error {
  errno?: number;
  code?: string;
  operation?: string;
  libbpfLog?: string;
}

export interface Link {
  /** Detaches the program; idempotent. */
  destroy(): void;
  readonly attached: boolean;
  readonly description: string;
}

export interface MapSnapshot {
  keySize: number;
  valueSize: number;
  /** Bytes per CPU slot of a per-CPU value (valueSize rounded up to 8); valueSize otherwise. */
  slotSize: number;
  /** Possible CPUs for per-CPU maps, else 1. */
  cpus: number;
  count: number;
  keys: Buffer;
  values: Buffer;
}

export interface ProgramStats {
  id: number;
  runTimeNs: bigint;
  runCount: bigint;
  xlatedBytes: number;
}

export interface BpfObjectOptions {
  /** `const volatile` globals of the object, set before load. */
  tunables?: Record<string, number | bigint | boolean>;
  /** Map name → max_entries, set before load. */
  maxEntries?: Record<string, number>;
}

export interface BpfObject {
  load(): void;
  attachCgroup(program: string, cgroupPath: string): Link;
  /** A classic tracepoint: libbpf finds its id in tracefs, which must be mounted. */
  attachTracepoint(program: string, category: string, name: string): Link;
  /** A raw tracepoint, attached by name (BPF_RAW_TRACEPOINT_OPEN): no tracefs needed. */
  attachRawTracepoint(program: string, name: string): Link;
  readMap(map: string): MapSnapshot;
  deleteKeys(map: string, keys: Buffer): number;
  programStats(program: string): ProgramStats;
  /** Detaches every link made from this object and unloads it; idempotent. */
  destroy(): void;
  readonly programs: string[];
  readonly maps: string[];
}

interface Addon {
  BpfObject: new (path: string, options?: BpfObjectOptions) => BpfObject;
  possibleCpus(): number;
}

/** The directory holding `Release/bamel_bpf.node` and `bpf/traffic.bpf.o`. */
export function bpfBuildDir(): string {
  const override = process.env.BAMEL_BPF_DIR;
  if (override) return override;
  // From bpf/addon.ts or dist/bpf/addon.js: the repository root is where bpf/binding.gyp is.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'bpf', 'binding.gyp'))) return join(dir, 'bpf', 'build');
    dir = dirname(dir);
  }
  throw new Error('cannot find the eBPF build directory (bpf/build from the repository root); set BAMEL_BPF_DIR');
}

export function trafficObjectPath(): string {
  return join(bpfBuildDir(), 'bpf', 'traffic.bpf.o');
}

let cached: Addon | undefined;

export function loadAddon(): Addon {
  if (cached) return cached;
  const path = join(bpfBuildDir(), 'Release', 'bamel_bpf.node');
  if (!existsSync(path)) throw new Error(`the eBPF addon ${path} is not built: run make bpf (needs clang, bpftool and libbpf-dev: make system-deps)`);
  cached = createRequire(import.meta.url)(path) as Addon;
  return cached;
}
