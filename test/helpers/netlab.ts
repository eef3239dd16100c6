import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findCgroup2Root } from '../../bpf/cgroups.js';

/**
 * The test hosts of the eBPF tests, made by the test itself: a network namespace per server
 * joined to the host by a veth pair, a cgroup (named the way the kubelet names pod cgroups)
 * the server process lives in, and the server (test/fixtures/traffic/server.mjs). Every
 * address is on a /30 of the test's own veth pair. `cleanup()` removes all of it, whatever
 * state a failed test left it in.
 */

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const SERVER_SCRIPT = join(here, '..', 'fixtures', 'traffic', 'server.mjs');

/** Why the eBPF tests cannot run here, or undefined when they can. */
export function bpfSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (loads eBPF programs, makes network namespaces and cgroups); CI runs as root';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'the kernel has no BTF (/sys/kernel/btf/vmlinux)';
  try {
    findCgroup2Root();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/*
 * Unmounts every tracefs and debugfs (deepest first) in the calling mount namespace, checks
 * that no tracepoint id can be read any more (exit 97 when one can), then execs its arguments.
 */
const UNMOUNT_TRACEFS = `set -e
for m in $(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "tracefs" || $(i + 1) == "debugfs") print $5; break } }' /proc/self/mountinfo | sort -r); do
  umount -l "$m"
done
if grep -qE ' - (tracefs|debugfs) ' /proc/self/mountinfo; then echo "tracefs is still mounted" >&2; exit 97; fi
if [ -e /sys/kernel/tracing/events ] || [ -e /sys/kernel/debug/tracing/events ]; then echo "tracepoints are still reachable" >&2; exit 97; fi
exec "$@"`;

/**
 * `argv` run in a private mount namespace of its own where tracefs is not mounted, whatever
 * the host mounts: a node without tracefs, made by the test (nothing outside it changes).
 */
export function withoutTracefs(argv: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', UNMOUNT_TRACEFS, 'sh', ...argv];
}

export async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(cmd, args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

export interface ServerStats {
  connections: number;
  http1Connections: number;
  http2Connections: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface TestHost {
  netns: string;
  /** The server's address (inside its namespace) and the host side's. */
  address: string;
  hostAddress: string;
  http1Port: number;
  http2Port: number;
  /** Absolute cgroup directory of the server process. */
  cgroup: string;
  process: ChildProcess;
  stats(): Promise<ServerStats>;
}

export class NetLab {
  readonly id = `${process.pid % 10000}${Math.random().toString(36).slice(2, 5)}`;
  readonly cgroupRoot = findCgroup2Root();
  /** The lab's own cgroup subtree: everything it makes lives below it. */
  readonly cgroupBase = join(this.cgroupRoot, `bamel-test-${this.id}`);
  private readonly hosts: TestHost[] = [];
  private readonly netnses: string[] = [];
  private readonly cgroups: string[] = [];
  private readonly subnet = 200 + Math.floor(Math.random() * 50);
  private readonly subnetB = Math.floor(Math.random() * 250);

  /** Makes the cgroup directories (relative to the lab's base) and returns the leaf. */
  makeCgroup(relative: string): string {
    let dir = this.cgroupBase;
    for (const part of ['', ...relative.split('/').filter(Boolean)]) {
      dir = part ? join(dir, part) : dir;
      if (!existsSync(dir)) {
        mkdirSync(dir);
        this.cgroups.push(dir);
      }
    }
    return dir;
  }

  /** A network namespace joined to this one by a veth pair: its name and the two addresses. */
  async makeHost(): Promise<{ netns: string; address: string; hostAddress: string }> {
    const n = this.netnses.length;
    const netns = `bml${this.id}${n}`;
    const hostIf = `bh${this.id}${n}`;
    const nsIf = `bn${this.id}${n}`;
    const a = `10.${this.subnet}.${this.subnetB}.${n * 4}`.split('.').map(Number);
    const hostAddress = `${a[0]}.${a[1]}.${a[2]}.${(a[3] as number) + 1}`;
    const address = `${a[0]}.${a[1]}.${a[2]}.${(a[3] as number) + 2}`;
    await run('ip', ['netns', 'add', netns]);
    this.netnses.push(netns);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    await run('ip', ['link', 'set', nsIf, 'netns', netns]);
    await run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostIf]);
    await run('ip', ['link', 'set', hostIf, 'up']);
    await run('ip', ['-n', netns, 'addr', 'add', `${address}/30`, 'dev', nsIf]);
    await run('ip', ['-n', netns, 'link', 'set', nsIf, 'up']);
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    return { netns, address, hostAddress };
  }

  /** A server in its own namespace and in the cgroup `relative` (kubelet-style path). */
  async startServer(relative: string): Promise<TestHost> {
    const { netns, address, hostAddress: host } = await this.makeHost();
    const cgroup = this.makeCgroup(relative);
    const port = 18080;
    // The process joins its cgroup before it exists as a server: its sockets are created there.
    const child = spawn('sh', ['-c', `echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "$2" "$3" "$4" "$5"`, cgroup, netns, process.execPath, SERVER_SCRIPT, address, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const queue: string[] = [];
    const waiters: ((line: string) => void)[] = [];
    lines.on('line', (l) => {
      const w = waiters.shift();
      if (w) w(l);
      else queue.push(l);
    });
    const nextLine = (what: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const q = queue.shift();
        if (q !== undefined) return resolve(q);
        const timer = setTimeout(() => reject(new Error(`server in ${netns}: no ${what} within 15s`)), 15_000);
        waiters.push((l) => {
          clearTimeout(timer);
          resolve(l);
        });
      });
    const testHost: TestHost = {
      netns,
      address,
      hostAddress: host,
      http1Port: port,
      http2Port: port + 1,
      cgroup,
      process: child,
      async stats() {
        child.stdin?.write('stats\n');
        return JSON.parse(await nextLine('stats')) as ServerStats;
      },
    };
    this.hosts.push(testHost);
    const ready = JSON.parse(await nextLine('ready line')) as { ready?: boolean };
    if (!ready.ready) throw new Error(`server in ${netns} did not start`);
    const procs = readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').trim().split('\n');
    if (!procs.includes(String(child.pid))) throw new Error(`server ${child.pid} is not in ${cgroup} (has ${procs.join(',')})`);
    return testHost;
  }

  /** Stops the servers, removes the namespaces (and with them the veth pairs) and the cgroups. */
  async cleanup(): Promise<void> {
    for (const h of this.hosts) {
      if (h.process.exitCode === null && h.process.signalCode === null) {
        const exited = new Promise((r) => h.process.once('exit', r));
        h.process.kill('SIGKILL');
        await exited;
      }
    }
    for (const ns of this.netnses) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    for (const dir of [...this.cgroups].reverse()) {
      // A cgroup can be removed once its processes are gone (they leave it as they exit).
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }
}
