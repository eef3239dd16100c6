import t from 'tap';
import { cgroup2Mounts, findCgroup2Root, podUidFromCgroupPath } from '../../bpf/cgroups.js';

t.test('the cgroup v2 mount: alone, hybrid, none', async (t) => {
  const hybrid = [
    '25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
    '26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
    '27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  ].join('\n');
  t.same(cgroup2Mounts(hybrid), ['/sys/fs/cgroup/unified']);
  const unified = '30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n' +
    '99 30 0:40 / /run/other\\040cg rw,relatime - cgroup2 none rw';
  t.same(cgroup2Mounts(unified), ['/sys/fs/cgroup', '/run/other cg'], '/sys/fs/cgroup first; octal escapes decoded');
  t.same(cgroup2Mounts('25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw'), []);
  t.throws(() => findCgroup2Root('/nonexistent/cg'), /--cgroup-root \/nonexistent\/cg is not a cgroup v2 directory/);
});

t.test('pod UID from kubelet cgroup paths, both drivers', async (t) => {
  const uid = '0a1b2c3d-1111-4222-8333-444455556666';
  const u = uid.replace(/-/g, '_');
  const cases: [string, string | undefined][] = [
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u}.slice/cri-containerd-abc.scope`, uid],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${u}.slice`, uid],
    [`/kubepods.slice/kubepods-pod${u}.slice/docker-1234.scope`, uid],
    [`/kubepods/burstable/pod${uid}/0123456789abcdef`, uid],
    [`/kubepods/pod${uid}/abc`, uid],
    [`/kubepods/besteffort/pod${uid}`, uid],
    [`/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${u}.slice/x.scope`, undefined],
    ['/system.slice/containerd.service', undefined],
    ['/kubepods.slice/kubepods-burstable.slice', undefined],
    [`/system.slice/pod${uid}.service`, undefined],
    ['/', undefined],
  ];
  for (const [path, want] of cases) t.equal(podUidFromCgroupPath(path), want, path);
});
