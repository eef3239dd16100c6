/**
 * The eBPF traffic programs' cost, printed:
 *  1. per packet: kernel.bpf_stats_enabled=1 and each program's run_time_ns / run_cnt, under
 *     bulk TCP (iperf3) and under HTTP/1.1 and HTTP/2 requests (the L7 parsing path);
 *  2. veth throughput (iperf3 from Debian, one TCP stream into a network namespace) without
 *     and with the programs attached, alternated in the same run, as a ratio;
 *  3. the agent's CPU and RSS while it polls 500 pods' cgroups (kubelet-named, each with
 *     traffic every second).
 * Needs root. Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/traffic.bench.ts [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PROGRAMS, TrafficProbe } from '../bpf/probe.js';
import { NetLab, bpfSkipReason, run } from '../test/helpers/netlab.js';

const skip = bpfSkipReason();
if (skip) {
  process.stdout.write(`traffic bench skipped: ${skip}\n`);
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ bench: 'traffic', skipped: skip })}\n`);
  process.exit(0);
}

const lab = new NetLab();
const children: ChildProcess[] = [];
const statsPath = '/proc/sys/kernel/bpf_stats_enabled';
const statsBefore = readFileSync(statsPath, 'utf8').trim();
let probe: TrafficProbe | undefined;
/** With --json: the figures, printed as the last line once everything is cleaned up. */
let jsonLine: string | undefined;

async function cleanup(): Promise<void> {
  probe?.close();
  probe = undefined;
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  writeFileSync(statsPath, statsBefore);
  await lab.cleanup();
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

/** The agent container's NODE_OPTIONS in config/agent/daemonset.yaml ('' when it sets none). */
function daemonSetNodeOptions(): string {
  const ds = parseYaml(readFileSync(join(process.cwd(), 'config', 'agent', 'daemonset.yaml'), 'utf8')) as {
    spec?: { template?: { spec?: { containers?: { name?: string; env?: { name?: string; value?: string }[] }[] } } };
  };
  const container = ds.spec?.template?.spec?.containers?.find((c) => c.name === 'agent');
  return container?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function iperf(address: string, port: number, seconds: number): Promise<number> {
  const out = JSON.parse(await run('iperf3', ['-c', address, '-p', String(port), '-t', String(seconds), '-J'])) as { end: { sum_received: { bits_per_second: number } } };
  return out.end.sum_received.bits_per_second;
}

function perPacket(p: TrafficProbe, before: Record<string, { t: bigint; n: bigint }>): Record<string, { ns: number; runs: number }> {
  const out: Record<string, { ns: number; runs: number }> = {};
  for (const prog of [PROGRAMS.ingress, PROGRAMS.egress]) {
    const s = p.stats(prog);
    const t = s.runTimeNs - (before[prog]?.t ?? 0n);
    const n = s.runCount - (before[prog]?.n ?? 0n);
    out[prog] = { ns: n > 0n ? Number(t) / Number(n) : 0, runs: Number(n) };
  }
  return out;
}

function snapshot(p: TrafficProbe): Record<string, { t: bigint; n: bigint }> {
  const out: Record<string, { t: bigint; n: bigint }> = {};
  for (const prog of [PROGRAMS.ingress, PROGRAMS.egress]) {
    const s = p.stats(prog);
    out[prog] = { t: s.runTimeNs, n: s.runCount };
  }
  return out;
}

async function httpLoad(address: string, port1: number, port2: number, requests: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let next = 0;
  const h1 = async (): Promise<void> => {
    while (next < requests) {
      next++;
      await new Promise<void>((resolve, reject) => {
        http.get({ host: address, port: port1, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        }).on('error', reject);
      });
    }
  };
  await Promise.all([h1(), h1(), h1(), h1()]);
  agent.destroy();
  const session = http2.connect(`http://${address}:${port2}`);
  let n2 = 0;
  const h2 = async (): Promise<void> => {
    while (n2 < requests) {
      n2++;
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        s.on('error', reject);
        s.resume();
        s.on('end', () => resolve());
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, h2));
  await new Promise<void>((r) => session.close(() => r()));
}

try {
  writeFileSync(statsPath, '1');
  const root = lab.cgroupRoot;
  const host = await lab.makeHost();
  const iperfPort = 15201;
  const server = spawn('ip', ['netns', 'exec', host.netns, 'iperf3', '-s', '-p', String(iperfPort)], { stdio: 'ignore' });
  children.push(server);
  await new Promise((r) => setTimeout(r, 500));

  // 2. Throughput, alternated: without, with, without, with, ...
  const seconds = 3;
  const without: number[] = [];
  const withProgs: number[] = [];
  let bulk: Record<string, { ns: number; runs: number }> = {};
  for (let i = 0; i < 3; i++) {
    without.push(await iperf(host.address, iperfPort, seconds));
    probe = TrafficProbe.open({ cgroupRoot: root });
    const before = snapshot(probe);
    withProgs.push(await iperf(host.address, iperfPort, seconds));
    bulk = perPacket(probe, before);
    probe.close();
    probe = undefined;
  }
  const gbps = (x: number): string => `${(x / 1e9).toFixed(2)} Gbit/s`;
  process.stdout.write(`veth throughput (iperf3, 1 TCP stream, ${seconds}s × 3 each, alternated):\n`);
  process.stdout.write(`  without programs: median ${gbps(median(without))}  [${without.map(gbps).join(', ')}]\n`);
  process.stdout.write(`  with programs:    median ${gbps(median(withProgs))}  [${withProgs.map(gbps).join(', ')}]\n`);
  process.stdout.write(`  ratio with/without: ${(median(withProgs) / median(without)).toFixed(3)}\n`);

  // 1. Per packet.
  process.stdout.write(`per-packet cost (bpf_stats run_time_ns / run_cnt):\n`);
  process.stdout.write(`  bulk TCP (iperf3):  ingress ${bulk[PROGRAMS.ingress]?.ns.toFixed(0)} ns over ${bulk[PROGRAMS.ingress]?.runs} packets, egress ${bulk[PROGRAMS.egress]?.ns.toFixed(0)} ns over ${bulk[PROGRAMS.egress]?.runs}\n`);
  const web = await lab.startServer('kubepods/besteffort/pod00000000-0000-4000-8000-000000000001/web');
  children.push(web.process);
  probe = TrafficProbe.open({ cgroupRoot: root });
  let before = snapshot(probe);
  await httpLoad(web.address, web.http1Port, web.http2Port, 2000);
  const l7 = perPacket(probe, before);
  process.stdout.write(`  HTTP/1.1 + HTTP/2:  ingress ${l7[PROGRAMS.ingress]?.ns.toFixed(0)} ns over ${l7[PROGRAMS.ingress]?.runs} packets (L7 parsing), egress ${l7[PROGRAMS.egress]?.ns.toFixed(0)} ns\n`);
  probe.close();
  probe = TrafficProbe.open({ cgroupRoot: root, parseL7: false });
  before = snapshot(probe);
  await httpLoad(web.address, web.http1Port, web.http2Port, 2000);
  const l4 = perPacket(probe, before);
  process.stdout.write(`  same, --no-l7:      ingress ${l4[PROGRAMS.ingress]?.ns.toFixed(0)} ns over ${l4[PROGRAMS.ingress]?.runs} packets\n`);
  probe.close();
  probe = undefined;

  // 3. The agent with 500 pods' cgroups, each sending a datagram every second.
  const pods = 500;
  const cgroups: string[] = [];
  for (let i = 0; i < pods; i++) {
    const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    cgroups.push(lab.makeCgroup(`kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-c${i}.scope`));
  }
  // One process moves itself through the 500 cgroups, opening a UDP socket in each (a socket
  // belongs to the cgroup it was created in), then sends a datagram from each every second.
  const senderScript = `
    const dgram = require('node:dgram'); const fs = require('node:fs');
    const dirs = JSON.parse(process.argv[1]); const home = fs.readFileSync('/proc/self/cgroup','utf8').match(/^0::(.*)$/m)[1];
    (async () => {
      const sockets = [];
      for (const d of dirs) {
        fs.writeFileSync(d + '/cgroup.procs', String(process.pid));
        const s = dgram.createSocket('udp4');
        await new Promise((r) => s.bind(0, '127.0.0.1', r));
        sockets.push(s);
      }
      fs.writeFileSync(${JSON.stringify(root)} + home + '/cgroup.procs', String(process.pid));
      const sink = dgram.createSocket('udp4');
      await new Promise((r) => sink.bind(0, '127.0.0.1', r));
      const port = sink.address().port; sink.on('message', () => {});
      setInterval(() => { for (const s of sockets) s.send('x', port, '127.0.0.1'); }, 1000);
      process.stdout.write('ready\\n');
    })();`;
  const sender = spawn(process.execPath, ['-e', senderScript, JSON.stringify(cgroups)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(sender);
  await new Promise<void>((resolve) => sender.stdout.once('data', () => resolve()));

  const agentScript = `
    const { TrafficProbe } = await import(${JSON.stringify(join(process.cwd(), 'dist/bpf/probe.js'))});
    const { TrafficAgent, AgentMetrics } = await import(${JSON.stringify(join(process.cwd(), 'dist/bpf/agent.js'))});
    const { pino } = await import('pino');
    const probe = TrafficProbe.open({ cgroupRoot: ${JSON.stringify(root)} });
    const agent = new TrafficAgent({ source: probe, cgroupRoot: ${JSON.stringify(root)}, nodeName: 'bench', pollIntervalMs: 1000, reportIntervalMs: 1000, metrics: new AgentMetrics(), logger: pino({ level: 'warn' }) });
    await agent.start();
    process.stdout.write('started\\n');
    setInterval(() => process.stdout.write(JSON.stringify({ pods: agent.current().length }) + '\\n'), 1000);
    process.on('SIGTERM', async () => { await agent.stop(); probe.close(); process.exit(0); });`;
  // With the NODE_OPTIONS the DaemonSet gives the agent (its V8 heap settings).
  const nodeOptions = daemonSetNodeOptions();
  process.stdout.write(`agent NODE_OPTIONS (config/agent/daemonset.yaml): ${nodeOptions || '(none)'}\n`);
  const agent = spawn(process.execPath, ['--input-type=module', '-e', agentScript], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: nodeOptions } });
  children.push(agent);
  let lastPods = 0;
  agent.stdout.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line.startsWith('{')) lastPods = (JSON.parse(line) as { pods: number }).pods;
  });
  await new Promise<void>((resolve) => agent.stdout.once('data', () => resolve()));
  const ticks = (): number => {
    const f = readFileSync(`/proc/${agent.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(f[11]) + Number(f[12]);
  };
  await new Promise((r) => setTimeout(r, 3000)); // past start-up
  const t0 = ticks();
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, 20_000));
  const cpuSeconds = (ticks() - t0) / 100;
  const wall = (Date.now() - w0) / 1000;
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  // The process's own pages; the rest of VmRSS is file-backed (node's binary), shared by every node process.
  const rssAnon = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  process.stdout.write(`agent with ${pods} pods' cgroups (poll every 1s, ${lastPods} pods with traffic at the last poll):\n`);
  process.stdout.write(`  CPU ${((cpuSeconds / wall) * 100).toFixed(1)} % of one core over ${wall.toFixed(0)}s; RSS ${rss.toFixed(0)} MiB (${rssAnon.toFixed(0)} MiB anonymous)\n`);
  if (process.argv.includes('--json')) {
    const ns = (x: { ns: number } | undefined): number | null => (x === undefined ? null : Number(x.ns.toFixed(1)));
    const figures = {
      bench: 'traffic',
      ingressNsPerPacket: ns(bulk[PROGRAMS.ingress]),
      egressNsPerPacket: ns(bulk[PROGRAMS.egress]),
      l7IngressNsPerPacket: ns(l7[PROGRAMS.ingress]),
      vethRatio: Number((median(withProgs) / median(without)).toFixed(3)),
      agentRssMiB: Number(rss.toFixed(1)),
      agentRssAnonMiB: Number(rssAnon.toFixed(1)),
      agentCpuPercent: Number(((cpuSeconds / wall) * 100).toFixed(1)),
    };
    jsonLine = JSON.stringify(figures);
  }
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  sender.kill('SIGKILL');
  await new Promise((r) => sender.once('exit', r));
} finally {
  await cleanup();
}
if (jsonLine !== undefined) process.stdout.write(`${jsonLine}\n`);
