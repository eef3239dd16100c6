import t from 'tap';
import http from 'node:http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { AgentMetrics, TrafficAgent } from '../../bpf/agent.js';
import { cgroupId } from '../../bpf/cgroups.js';
import { PROGRAMS, TrafficProbe } from '../../bpf/probe.js';
import { NetLab, bpfSkipReason, type TestHost } from '../helpers/netlab.js';

/**
 * The probe's optional hooks, for real: the cgroup_rmdir raw tracepoint drops a removed
 * cgroup's counters; when a hook cannot be attached the probe still counts, says which hook
 * is missing, and the agent drops removed cgroups' counters itself.
 */

const skip = bpfSkipReason() ?? false;

async function requests(host: TestHost, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: false });
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      http.get({ host: host.address, port: host.http1Port, path: `/p/${i}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      }).on('error', reject);
    });
  }
  agent.destroy();
}

/** Stops the server and removes its cgroup (after its last packets have landed). */
async function removeHost(lab: NetLab, host: TestHost): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const exited = new Promise((r) => host.process.once('exit', r));
  host.process.kill('SIGKILL');
  await exited;
  await new Promise((r) => setTimeout(r, 300));
  await lab.cleanup();
}

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('the cgroup_rmdir raw tracepoint drops a removed cgroup\'s counters', { skip }, async (t) => {
  const lab = new NetLab();
  t.teardown(() => lab.cleanup());
  const host = await lab.startServer('kubepods/besteffort/pod1d2e3f40-5555-4666-8777-888899990000/rm');
  const id = cgroupId(host.cgroup);
  const probe = TrafficProbe.open({ cgroupRoot: lab.cgroupRoot });
  t.teardown(() => probe.close());
  t.same(probe.degraded, [], 'every hook attached');
  t.equal(probe.removesCgroupCounters, true);
  t.ok(probe.attachments().some((a) => a.includes(`${PROGRAMS.rmdir} to raw tracepoint cgroup_rmdir`)), 'attached as a raw tracepoint');

  await requests(host, 5);
  t.equal(probe.read().get(id)?.httpRequests, 5, 'the cgroup is counted');
  await removeHost(lab, host);
  await until('the counters of the removed cgroup to go', 5000, () => !probe.read().has(id));
  t.pass('gone from the counters map once the cgroup was removed');
});

t.test('a hook that cannot attach: counting goes on, one hook named as degraded, the agent sweeps', { skip }, async (t) => {
  const lab = new NetLab();
  t.teardown(() => lab.cleanup());
  const host = await lab.startServer('kubepods/besteffort/pod2e3f4051-6666-4777-8888-9999aaaabbbb/sw');
  const id = cgroupId(host.cgroup);
  const probe = TrafficProbe.open({ cgroupRoot: lab.cgroupRoot, tracepoints: { rmdir: 'bamel_no_such_tracepoint' } });
  t.teardown(() => probe.close());
  t.equal(probe.degraded.length, 1, 'one hook degraded');
  t.match(probe.degraded[0], { program: PROGRAMS.rmdir, hook: 'raw_tp/bamel_no_such_tracepoint', reason: /ENOENT|ESRCH|EINVAL/ });
  t.match(probe.degraded[0]?.consequence, /traffic is still counted/);
  t.equal(probe.removesCgroupCounters, false, 'the kernel no longer drops removed cgroups');
  t.ok(probe.attachments().some((a) => a.includes('tcp_retransmit_skb')), 'the other hook is attached');

  const metrics = new AgentMetrics(new Registry(), { defaultMetrics: false });
  const agent = new TrafficAgent({ source: probe, cgroupRoot: lab.cgroupRoot, nodeName: 'n1', pollIntervalMs: 3_600_000, reportIntervalMs: 3_600_000, metrics, logger: pino({ level: 'silent' }), sweepIntervalMs: 0 });
  await agent.start();
  t.teardown(() => agent.stop());
  await requests(host, 7);
  t.equal(probe.read().get(id)?.httpRequests, 7, 'traffic counted without the hook');
  await agent.poll();
  t.equal(agent.pathOf(id), host.cgroup.slice(lab.cgroupRoot.length), 'resolved to its path');

  await removeHost(lab, host);
  t.ok(probe.read().has(id), 'nothing in the kernel removed the counters');
  await agent.poll();
  t.notOk(probe.read().has(id), 'the agent\'s sweep dropped them');
});
