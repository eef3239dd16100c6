import type { Command } from 'commander';
import { AgentMetrics, TrafficAgent } from '../bpf/agent.js';
import { findCgroup2Root, podUidFromCgroupPath, walkCgroups } from '../bpf/cgroups.js';
import { BpfPermissionError, TrafficProbe, type DegradedHook } from '../bpf/probe.js';
import { loadKubeAccess } from '../kube/kubeconfig.js';
import { serveAgentMetrics, type MetricsServer } from './agent-metrics.js';
import { createLogger } from './log.js';

interface AgentFlags {
  kubeconfig?: string;
  nodeName?: string;
  pollInterval: string;
  reportInterval: string;
  metricsBindAddress: string;
  cgroupRoot?: string;
  standalone: boolean;
  duration: string;
  json: boolean;
  maxCgroups: string;
  l7: boolean;
}

/** Exit code when the kernel refuses to load or attach the programs (no root, no CAP_BPF). */
export const EXIT_NO_BPF_PERMISSION = 3;

function positive(flag: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= min) throw new Error(`--${flag} must be a number greater than ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the per-node eBPF traffic agent (or, with --standalone, count for a while and print per-cgroup totals)')
    .option('--kubeconfig <file>', 'kubeconfig when running outside the cluster (default: in-cluster, or $KUBECONFIG)')
    .option('--node-name <name>', 'the node this agent runs on (its TrafficReport is named after it)', process.env.NODE_NAME)
    .option('--poll-interval <s>', 'seconds between reads of the kernel counters (the rate interval)', '5')
    .option('--report-interval <s>', 'at least this many seconds between two writes of the TrafficReport', '15')
    .option('--metrics-bind-address <addr>', 'address of /metrics and /healthz ("0" to disable)', ':8095')
    .option('--cgroup-root <dir>', 'the cgroup v2 hierarchy to attach to (default: found in /proc/self/mountinfo)')
    .option('--max-cgroups <n>', 'bound of the kernel counters map (cgroups counted at once)', '16384')
    .option('--no-l7', 'count packets, bytes and SYNs only (no HTTP parsing)')
    .option('--standalone', 'no cluster: attach, count for --duration seconds, print per-cgroup totals, detach', false)
    .option('--duration <s>', 'with --standalone: how long to count', '10')
    .option('--json', 'with --standalone: print JSON', false)
    .action(async (flags: AgentFlags) => {
      try {
        if (flags.standalone) await runStandalone(flags);
        else await runAgent(flags);
      } catch (err) {
        if (err instanceof BpfPermissionError) {
          process.stderr.write(`bamel agent: ${err.message}\n`);
          process.exitCode = EXIT_NO_BPF_PERMISSION;
          return;
        }
        throw err;
      }
    });
}

function openProbe(flags: AgentFlags): { probe: TrafficProbe; cgroupRoot: string } {
  const cgroupRoot = findCgroup2Root(flags.cgroupRoot);
  const probe = TrafficProbe.open({ cgroupRoot, parseL7: flags.l7, maxCgroups: positive('max-cgroups', flags.maxCgroups) });
  return { probe, cgroupRoot };
}

/** One warning for every optional hook that could not be attached; undefined when all are. */
export function degradedWarning(degraded: readonly DegradedHook[]): string | undefined {
  if (degraded.length === 0) return undefined;
  const each = degraded.map((d) => `${d.hook} (program ${d.program}) not attached (${d.reason}): ${d.consequence}`);
  return `counting with reduced hooks: ${each.join('; ')}`;
}

function untilSignal(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

async function runStandalone(flags: AgentFlags): Promise<void> {
  const seconds = positive('duration', flags.duration);
  const { probe, cgroupRoot } = openProbe(flags);
  let totals;
  const started = Date.now();
  const warning = degradedWarning(probe.degraded);
  if (warning) process.stderr.write(`bamel agent: warning: ${warning}\n`);
  process.stderr.write(`bamel agent: attached at ${cgroupRoot}, counting for ${seconds}s (SIGINT ends it early)\n`);
  try {
    await untilSignal(seconds * 1000);
    totals = probe.read();
  } finally {
    probe.close();
  }
  const paths = walkCgroups(cgroupRoot);
  const rows = [...totals]
    .map(([id, c]) => {
      const path = paths.get(id);
      const podUid = path ? podUidFromCgroupPath(path) : undefined;
      return {
        cgroupId: id.toString(),
        path: path ?? null,
        ...(podUid ? { podUid } : {}),
        packets: c.rxPackets + c.txPackets,
        bytes: c.rxBytes + c.txBytes,
        syns: c.syns,
        httpRequests: c.httpRequests,
        http2Requests: c.http2Requests,
        rxPackets: c.rxPackets,
        rxBytes: c.rxBytes,
        txPackets: c.txPackets,
        txBytes: c.txBytes,
        retransmits: c.retransmits,
      };
    })
    .sort((a, b) => b.bytes - a.bytes || (a.cgroupId < b.cgroupId ? -1 : 1));
  const elapsed = (Date.now() - started) / 1000;
  if (flags.json) {
    const degraded = probe.degraded.map((d) => d.hook);
    process.stdout.write(`${JSON.stringify({ cgroupRoot, seconds: elapsed, ...(degraded.length > 0 ? { degraded } : {}), cgroups: rows }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`cgroup v2 root ${cgroupRoot}, ${elapsed.toFixed(1)}s\n`);
  process.stdout.write(`${'CGROUP ID'.padEnd(12)} ${'PACKETS'.padStart(9)} ${'BYTES'.padStart(12)} ${'SYNS'.padStart(6)} ${'HTTP/1'.padStart(7)} ${'HTTP/2'.padStart(7)}  PATH\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.cgroupId.padEnd(12)} ${String(r.packets).padStart(9)} ${String(r.bytes).padStart(12)} ${String(r.syns).padStart(6)} ${String(r.httpRequests).padStart(7)} ${String(r.http2Requests).padStart(7)}  ${r.path ?? '(removed)'}\n`,
    );
  }
}

async function runAgent(flags: AgentFlags): Promise<void> {
  const nodeName = flags.nodeName;
  if (!nodeName) throw new Error('--node-name is required (or set NODE_NAME, e.g. from the downward API spec.nodeName)');
  const pollIntervalMs = positive('poll-interval', flags.pollInterval) * 1000;
  const reportIntervalMs = positive('report-interval', flags.reportInterval) * 1000;
  const logger = createLogger('agent');
  const kc = loadKubeAccess(flags.kubeconfig);
  const { probe, cgroupRoot } = openProbe(flags);
  const metrics = new AgentMetrics();
  const agent = new TrafficAgent({ source: probe, cgroupRoot, nodeName, pollIntervalMs, reportIntervalMs, kc, metrics, logger });
  let server: MetricsServer | undefined;
  const warning = degradedWarning(probe.degraded);
  if (warning) logger.warn({ degraded: probe.degraded.map((d) => d.hook) }, warning);
  try {
    await agent.start();
    server = await serveAgentMetrics(flags.metricsBindAddress, metrics.registry, logger);
    logger.info({ nodeName, cgroupRoot, attached: probe.attachments(), metrics: server ? [server.address()] : undefined }, 'agent started');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } finally {
    logger.info('stopping: detaching the programs');
    await agent.stop();
    await server?.close();
    probe.close();
    logger.flush();
  }
}
