import t from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import { NetLab, bpfSkipReason, run, withoutTracefs } from '../helpers/netlab.js';

/**
 * The eBPF programs for real, through `bamel agent --standalone --json`: two cgroups, each
 * with a server in its own network namespace behind a veth pair, and this process as the
 * client sending a known number of HTTP/1.1 and HTTP/2 requests to each. Requests and SYNs
 * per cgroup are exact; bytes are the servers' socket bytes plus one IP and TCP header per
 * packet (20 to 60 bytes of TCP header).
 */

const skip = bpfSkipReason() ?? false;
const ours = ['count_ingress', 'count_egress', 'cgroup_gone', 'tcp_retransmit'];

interface Row {
  cgroupId: string;
  path: string | null;
  podUid?: string;
  packets: number;
  bytes: number;
  syns: number;
  httpRequests: number;
  http2Requests: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

function bamelAgent(args: string[], opts: { unprivileged?: boolean; withoutTracefs?: boolean } = {}) {
  const node = [process.execPath, ...process.execArgv, 'cmd/bamel.ts', 'agent', ...args];
  const [cmd, ...argv] = opts.unprivileged
    ? ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--ambient-caps=-all', ...node]
    : opts.withoutTracefs
      ? withoutTracefs(node)
      : node;
  const child = spawn(cmd as string, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const attached = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('attached at')) resolve();
    });
    child.once('exit', () => reject(new Error(`agent exited before attaching: ${stderr}`)));
  });
  attached.catch(() => undefined);
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, attached, exited };
}

/**
 * Programs of ours loaded before these tests began belong to another agent on the machine
 * (a node's own DaemonSet pod, another checkout's tests): not the agents these tests start.
 */
const foreign = new Set<number>(
  skip ? [] : (JSON.parse(await run('bpftool', ['-j', 'prog', 'show'])) as { id: number; name?: string }[]).filter((p) => ours.includes(p.name ?? '')).map((p) => p.id),
);

async function ourBpfObjects(cgroupRoot: string): Promise<{ progs: number[]; attachedAtRoot: number }> {
  const progs = (JSON.parse(await run('bpftool', ['-j', 'prog', 'show'])) as { id: number; name?: string }[]).filter((p) => ours.includes(p.name ?? '') && !foreign.has(p.id)).map((p) => p.id);
  const cg = JSON.parse((await run('bpftool', ['-j', 'cgroup', 'show', cgroupRoot])).trim() || '[]') as { id: number; name?: string }[];
  return { progs: progs.sort(), attachedAtRoot: cg.filter((p) => ours.includes(p.name ?? '') && !foreign.has(p.id)).length };
}

async function http1Requests(host: string, port: number, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await new Promise<void>((resolve, reject) => {
        const body = i % 3 === 0 ? JSON.stringify({ i, pad: 'y'.repeat(100) }) : undefined;
        const req = http.request({ host, port, agent, method: body ? 'POST' : 'GET', path: `/r/${i}`, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end(body);
      });
    }
  };
  await Promise.all([worker(), worker()]);
  agent.destroy();
}

async function http2Requests(host: string, port: number, count: number): Promise<void> {
  const session = http2.connect(`http://${host}:${port}`);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await new Promise<void>((resolve, reject) => {
        const post = i % 4 === 0;
        const stream = session.request({ ':method': post ? 'POST' : 'GET', ':path': `/s/${i}` }, { endStream: !post });
        stream.on('response', () => undefined);
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => resolve());
        if (post) stream.end(Buffer.alloc(300, 'z'));
      });
    }
  };
  // Ten streams in flight: several HEADERS frames share a packet.
  await Promise.all(Array.from({ length: 10 }, worker));
  await new Promise<void>((resolve) => session.close(() => resolve()));
}

t.test('per-cgroup counts: two servers in their own namespaces, HTTP/1.1 and HTTP/2', { skip }, async (t) => {
  const lab = new NetLab();
  t.teardown(() => lab.cleanup());
  const uidA = '0a1b2c3d-1111-4222-8333-444455556666';
  const uidB = '9f8e7d6c-aaaa-4bbb-8ccc-ddddeeeeffff';
  // The kubelet's names: systemd driver for A, cgroupfs driver for B.
  const a = await lab.startServer(`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidA.replace(/-/g, '_')}.slice/cri-containerd-aaaa.scope`);
  const b = await lab.startServer(`kubepods/besteffort/pod${uidB}/bbbb`);

  const agent = bamelAgent(['--standalone', '--duration', '120', '--json']);
  t.teardown(() => agent.child.kill('SIGKILL'));
  await agent.attached;

  const plan = [
    { host: a, h1: 37, h2: 53 },
    { host: b, h1: 21, h2: 80 },
  ];
  for (const p of plan) {
    await http1Requests(p.host.address, p.host.http1Port, p.h1);
    await http2Requests(p.host.address, p.host.http2Port, p.h2);
  }
  // Let the last FINs and ACKs land before the counters are read.
  await new Promise((r) => setTimeout(r, 300));
  const stats = [await a.stats(), await b.stats()];
  agent.child.kill('SIGINT');
  const out = await agent.exited;
  t.equal(out.code, 0, `agent exit code (stderr: ${out.stderr})`);
  const report = JSON.parse(out.stdout) as { cgroupRoot: string; cgroups: Row[] };
  t.equal(report.cgroupRoot, lab.cgroupRoot, 'attached at the detected cgroup v2 root');

  for (const [i, p] of plan.entries()) {
    const s = stats[i]!;
    const rel = p.host.cgroup.slice(lab.cgroupRoot.length);
    const row = report.cgroups.find((r) => r.path === rel);
    if (!t.ok(row, `a row for ${rel}`) || !row) continue;
    t.equal(row.podUid, i === 0 ? uidA : uidB, 'pod UID from the kubelet-style path');
    t.equal(row.httpRequests, p.h1, `${rel}: HTTP/1.1 requests exact`);
    t.equal(row.http2Requests, p.h2, `${rel}: HTTP/2 requests exact`);
    t.equal(s.http1Connections, 2, 'two HTTP/1.1 connections (keep-alive, two at a time)');
    t.equal(s.http2Connections, 1, 'one HTTP/2 connection');
    t.equal(row.syns, s.connections, `${rel}: SYNs exact (one per connection the server accepted)`);
    // Bytes: the payload the server's sockets read (wrote), plus one IPv4 header (20) and
    // one TCP header (20..60, 32 with timestamps) per packet.
    t.ok(row.rxBytes >= s.bytesRead + 40 * row.rxPackets && row.rxBytes <= s.bytesRead + 80 * row.rxPackets,
      `${rel}: rx bytes ${row.rxBytes} = payload ${s.bytesRead} + headers of ${row.rxPackets} packets (${row.rxBytes - s.bytesRead} bytes)`);
    t.ok(row.txBytes >= s.bytesWritten + 40 * row.txPackets && row.txBytes <= s.bytesWritten + 80 * row.txPackets,
      `${rel}: tx bytes ${row.txBytes} = payload ${s.bytesWritten} + headers of ${row.txPackets} packets (${row.txBytes - s.bytesWritten} bytes)`);
    t.equal(row.packets, row.rxPackets + row.txPackets);
    t.equal(row.bytes, row.rxBytes + row.txBytes);
  }
  const after = await ourBpfObjects(lab.cgroupRoot);
  t.equal(after.attachedAtRoot, 0, 'the agent detached its programs from the cgroup root');
});

t.test('without permission: a clear error, a non-zero exit, nothing left attached', { skip }, async (t) => {
  const lab = new NetLab();
  const before = await ourBpfObjects(lab.cgroupRoot);
  const agent = bamelAgent(['--standalone', '--duration', '1', '--json'], { unprivileged: true });
  const out = await agent.exited;
  t.equal(out.code, 3, 'exit code 3 (no permission)');
  t.match(out.stderr, /no permission to load eBPF programs \(EPERM\): bamel agent needs root, or CAP_BPF/);
  t.equal(out.stdout, '', 'nothing on stdout');
  const after = await ourBpfObjects(lab.cgroupRoot);
  t.same(after, before, 'bpftool shows no new program, nothing attached at the cgroup root');
});

t.test('tracefs not mounted: the agent attaches every program and counts exactly', { skip }, async (t) => {
  const lab = new NetLab();
  t.teardown(() => lab.cleanup());
  const uid = '5e6f7a8b-2222-4333-8444-555566667777';
  const host = await lab.startServer(`kubepods/burstable/pod${uid}/cccc`);

  // Its own mount namespace, tracefs and debugfs unmounted there: no tracepoint id can be read.
  const before = new Set((JSON.parse(await run('bpftool', ['-j', 'link', 'show'])) as { id: number }[]).map((l) => l.id));
  const agent = bamelAgent(['--standalone', '--duration', '120', '--json'], { withoutTracefs: true });
  t.teardown(() => agent.child.kill('SIGKILL'));
  await agent.attached;
  const during = await ourBpfObjects(lab.cgroupRoot);
  t.ok(during.attachedAtRoot >= 2, 'the cgroup_skb pair attached at the cgroup root');
  // Links made since the agent started (another agent on the machine may have its own).
  const links = (JSON.parse(await run('bpftool', ['-j', 'link', 'show'])) as { id: number; type?: string; prog_id?: number; tp_name?: string }[]).filter((l) => !before.has(l.id));
  const rawTp = links.filter((l) => l.type === 'raw_tracepoint' && during.progs.includes(l.prog_id ?? -1)).map((l) => l.tp_name);
  t.ok(rawTp.includes('cgroup_rmdir') && rawTp.includes('tcp_retransmit_skb'), `both hooks attached as raw tracepoints, by name (${rawTp.join(', ')})`);

  await http1Requests(host.address, host.http1Port, 29);
  await http2Requests(host.address, host.http2Port, 41);
  await new Promise((r) => setTimeout(r, 300));
  const s = await host.stats();
  agent.child.kill('SIGINT');
  const out = await agent.exited;
  t.equal(out.code, 0, `agent exit code (stderr: ${out.stderr})`);
  t.notMatch(out.stderr, /warning/, 'no degraded-hook warning: nothing needed tracefs');
  const report = JSON.parse(out.stdout) as { cgroupRoot: string; degraded?: string[]; cgroups: Row[] };
  t.notOk(report.degraded, 'no hook reported as degraded');
  const rel = host.cgroup.slice(lab.cgroupRoot.length);
  const row = report.cgroups.find((r) => r.path === rel);
  if (!t.ok(row, `a row for ${rel}`) || !row) return;
  t.equal(row.podUid, uid, 'pod UID from the kubelet-style path');
  t.equal(row.httpRequests, 29, 'HTTP/1.1 requests exact');
  t.equal(row.http2Requests, 41, 'HTTP/2 requests exact');
  t.equal(row.syns, s.connections, 'SYNs exact (one per connection the server accepted)');
  t.ok(row.rxBytes >= s.bytesRead + 40 * row.rxPackets && row.rxBytes <= s.bytesRead + 80 * row.rxPackets, `rx bytes ${row.rxBytes} = payload ${s.bytesRead} + headers`);
  const after = await ourBpfObjects(lab.cgroupRoot);
  t.equal(after.attachedAtRoot, 0, 'the agent detached its programs from the cgroup root');
});
