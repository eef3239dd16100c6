import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as k8s from '@kubernetes/client-node';
import { formatIssue, parseInventoryText } from '../api/inventory.js';
import type { BmcCredentials } from '../power/credentials.js';
import { readCredentialsSecret } from '../power/secrets.js';
import { controlServer, Datacenter } from '../sim/datacenter.js';
import { runningKubelets, startKubelet, stopKubelet } from '../sim/nodes.js';
import { loadKubeConfig } from './kube.js';
import { createLogger } from './log.js';
import { parseBindAddress } from '../kube/net.js';
import { makeApiClient } from '../kube/client.js';

interface SimFlags {
  inventory: string;
  namespace?: string;
  kubeconfig?: string;
  controlAddress: string;
  bootScale: string;
  bootJitter: string;
  defaultBootSeconds: string;
  gracefulShutdownSeconds: string;
}

function number(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('run the simulated machines and BMCs of the local datacenter (until stopped)')
    .requiredOption('--inventory <file>', 'the inventory (ConfigMap manifest or machines.yaml); one BMC per machine on its address')
    .option('--namespace <ns>', "namespace of the credentials Secrets (default: the ConfigMap's, else bamel-system)")
    .option('--kubeconfig <file>', 'kubeconfig of the cluster the machines join (default: $KUBECONFIG)')
    .option('--control-address <host:port>', 'address of the control API (faults, power buttons)', '127.0.0.1:0')
    .option('--boot-scale <factor>', "multiplies each machine's bootSeconds", '1')
    .option('--boot-jitter <fraction>', 'relative jitter on boot times', '0.2')
    .option('--default-boot-seconds <s>', 'boot time of machines without bootSeconds', '60')
    .option('--graceful-shutdown-seconds <s>', 'how long a simulated OS takes to shut down on a graceful power-off', '2')
    .action(async (flags: SimFlags) => {
      await runSim(flags);
    });
}

async function runSim(flags: SimFlags): Promise<void> {
  const logger = createLogger('sim');
  // One JSON line per event, `event` and `time` first: {"event":"power","time":...,"machine":...}.
  const emit = (e: object): void => {
    const { event, ...rest } = e as { event: string };
    process.stdout.write(`${JSON.stringify({ event, time: new Date().toISOString(), ...rest })}\n`);
  };
  const text = await readFile(flags.inventory, 'utf8');
  const parsed = parseInventoryText(text, { source: flags.inventory });
  if (!parsed.ok) {
    throw new Error(`${flags.inventory} is not a valid inventory:\n${parsed.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`);
  }
  const inventory = parsed.inventory;
  const namespace = flags.namespace ?? inventory.namespace ?? 'bamel-system';
  const kc = loadKubeConfig(flags.kubeconfig);
  const core = makeApiClient(kc, k8s.CoreV1Api);

  // Each Secret read once and the Nodes listed once: an inventory may have thousands of machines.
  const credentials = new Map<string, BmcCredentials>();
  const secrets = new Map<string, BmcCredentials>();
  const kubelets = await runningKubelets(core);
  const running = new Set<string>();
  for (const m of inventory.machines) {
    let creds = secrets.get(m.bmc.credentialsSecret);
    if (creds === undefined) secrets.set(m.bmc.credentialsSecret, (creds = await readCredentialsSecret(core, namespace, m.bmc.credentialsSecret, `machines[${m.index}] (${m.name})`)));
    credentials.set(m.name, creds);
    if (kubelets.has(m.name)) running.add(m.name);
  }
  const dc = await Datacenter.start({
    inventory,
    credentials,
    kubelet: { start: (m) => startKubelet(core, m), stop: (n) => stopKubelet(core, n) },
    running,
    bootScale: number('boot-scale', flags.bootScale, 0),
    bootJitter: number('boot-jitter', flags.bootJitter, 0),
    defaultBootSeconds: number('default-boot-seconds', flags.defaultBootSeconds, 0),
    gracefulShutdownMs: number('graceful-shutdown-seconds', flags.gracefulShutdownSeconds, 0) * 1000,
    emit,
    logger,
  });
  const app = await controlServer(dc, logger);
  const { host, port } = parseBindAddress(flags.controlAddress, '--control-address', { requireHost: true });
  const url = await app.listen({ host, port });
  emit({
    event: 'ready',
    control: url,
    machines: inventory.machines.map((m) => ({ machine: m.name, address: m.bmc.address, power: dc.machine(m.name).power })),
  });

  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  await dc.stop();
  emit({ event: 'stopped' });
  logger.flush();
}
