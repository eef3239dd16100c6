import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The cgroup v2 hierarchy: where it is mounted (alone at /sys/fs/cgroup, or in hybrid mode
 * beside v1 controllers, e.g. /sys/fs/cgroup/unified), the cgroup id of each directory (its
 * inode number, which is what bpf_skb_cgroup_id() returns), and the pod a cgroup belongs to,
 * from the names the kubelet gives under both cgroup drivers.
 */

/** The cgroup2 mount points in /proc/self/mountinfo, /sys/fs/cgroup first when it is one. */
export function cgroup2Mounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const mounts: string[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) mounts.push(mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return mounts.sort((a, b) => (a === '/sys/fs/cgroup' ? -1 : b === '/sys/fs/cgroup' ? 1 : a.length - b.length));
}

export class NoCgroup2Error extends Error {
  constructor() {
    super('no cgroup v2 hierarchy is mounted (looked for fstype cgroup2 in /proc/self/mountinfo); mount one, or pass --cgroup-root');
    this.name = 'NoCgroup2Error';
  }
}

/**
 * The cgroup v2 root: `override` when given (checked), else the first cgroup2 mount. An
 * override that is the host's /sys/fs/cgroup mounted into a pod may be a hybrid one: its
 * `unified` directory is then the v2 hierarchy.
 */
export function findCgroup2Root(override?: string): string {
  if (override) {
    const isCgroupDir = (dir: string): boolean => {
      try {
        return statSync(join(dir, 'cgroup.procs')).isFile();
      } catch {
        return false;
      }
    };
    if (isCgroupDir(override)) return override;
    if (isCgroupDir(join(override, 'unified'))) return join(override, 'unified');
    throw new Error(`--cgroup-root ${override} is not a cgroup v2 directory (no cgroup.procs in it)`);
  }
  const first = cgroup2Mounts()[0];
  if (!first) throw new NoCgroup2Error();
  return first;
}

/** A cgroup's id: the inode number of its directory in the cgroup2 file system. */
export function cgroupId(path: string): bigint {
  return statSync(path, { bigint: true }).ino;
}

/**
 * Cgroup id → path relative to the root ("/" for the root), walking the hierarchy. Cgroups
 * that vanish during the walk are skipped. `maxDepth` bounds the walk (kubelet's pod
 * cgroups are at depth 3 to 5).
 */
export function walkCgroups(root: string, maxDepth = 12): Map<bigint, string> {
  const out = new Map<bigint, string>();
  const visit = (abs: string, rel: string, depth: number): void => {
    try {
      out.set(cgroupId(abs), rel === '' ? '/' : rel);
    } catch {
      return;
    }
    if (depth >= maxDepth) return;
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) visit(join(abs, e.name), `${rel}/${e.name}`, depth + 1);
  };
  visit(root, '', 0);
  return out;
}

const UID = '([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})';
// systemd driver: .../kubepods-burstable-pod<uid with _>.slice/...; cgroupfs: .../kubepods/burstable/pod<uid>/...
const POD_SEGMENT = new RegExp(`^(?:kubepods(?:-[a-z]+)?-)?pod${UID}(?:\\.slice)?$`);

/**
 * The pod UID a cgroup path belongs to, under both kubelet cgroup drivers; undefined for a
 * cgroup outside any pod (system services, the kubelet itself, the pod-level parents).
 * The segment must sit below a `kubepods` segment, so that a service named pod<...> is not
 * taken for a pod.
 */
export function podUidFromCgroupPath(path: string): string | undefined {
  const segments = path.split('/');
  const kubepods = segments.findIndex((s) => s === 'kubepods' || s === 'kubepods.slice');
  if (kubepods < 0) return undefined;
  for (let i = kubepods + 1; i < segments.length; i++) {
    const m = POD_SEGMENT.exec(segments[i] as string);
    if (m) return (m[1] as string).replace(/_/g, '-');
  }
  return undefined;
}
