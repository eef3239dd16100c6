import type { Command } from 'commander';
import { parseQuantity } from '../api/quantity.js';
import { Manager } from '../manager/manager.js';
import { parseNamespaceList } from '../kube/namespaced-informers.js';
import { certRotationOptions, registerCertRotationFlags, type CertRotationFlags } from './manager-certs.js';
import { loadKubeConfig } from './kube.js';
import { createLogger } from './log.js';

interface ManagerFlags extends CertRotationFlags {
  kubeconfig?: string;
  namespace: string;
  leaderElect: boolean;
  leaderElectionId: string;
  powerReadingInterval: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  extenderBindAddress: string;
  extenderCertDir?: string;
  maxTotalMachines?: string;
  maxTotalCpu?: string;
  maxTotalMemory?: string;
  settleGrace: string;
  quarantineBase: string;
  gracefulPowerOffTimeout: string;
  bmcOperationTimeout: string;
  fencingMargin: string;
  reconcileWatchdog: string;
  watchStaleAfter: string;
  identity?: string;
  autoscalerSelector?: string;
  webhookBindAddress: string;
  webhookCertDir?: string;
  inventoryNamespaces?: string;
}

function seconds(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a number of seconds, got ${JSON.stringify(v)}`);
  return n * 1000;
}

export function registerManagerCommand(program: Command): void {
  const command = program
    .command('manager')
    .description('run the controller (leader-elected), webhook and extender servers')
    .option('--kubeconfig <file>', 'kubeconfig when running outside the cluster (default: in-cluster, or $KUBECONFIG)')
    .option('--namespace <ns>', "the manager's namespace (its leader Lease lives here)", process.env.POD_NAMESPACE ?? 'bamel-system')
    .option('--leader-elect', 'elect a leader among replicas; only the leader reconciles and talks to BMCs', false)
    .option('--leader-election-id <name>', 'name of the leader Lease', 'bamel-manager')
    .option('--lease-duration <s>', 'seconds a non-leader waits before taking over an unrenewed lease', '15')
    .option('--renew-deadline <s>', 'seconds the leader retries renewing before it steps down', '10')
    .option('--retry-period <s>', 'seconds between lease acquire/renew attempts', '2')
    .option('--metrics-bind-address <addr>', 'address of /metrics ("0" to disable)', ':8080')
    .option('--health-probe-bind-address <addr>', 'address of /healthz and /readyz', ':8081')
    .option('--extender-bind-address <addr>', 'address of the kube-scheduler extender, POST /extender/filter and /extender/prioritize ("0" to disable)', ':8090')
    .option('--extender-cert-dir <dir>', 'serve the extender over HTTPS with tls.crt and tls.key from this directory')
    .option('--max-total-machines <n>', 'cluster-wide cap: machines powered on across all autoscalers')
    .option('--max-total-cpu <quantity>', 'cluster-wide cap: cpu of the machines powered on across all autoscalers')
    .option('--max-total-memory <quantity>', 'cluster-wide cap: memory of the machines powered on across all autoscalers')
    .option('--settle-grace <s>', 'after a leader change, an intent the BMC has not confirmed counts as in flight for --bmc-operation-timeout plus this, then is dropped', '15')
    .option('--quarantine-base <s>', 'first quarantine of a failed machine; doubles per consecutive failure up to an hour', '60')
    .option('--graceful-power-off-timeout <s>', 'how long a graceful shutdown may take before the power is forced off', '180')
    .option('--bmc-operation-timeout <s>', 'how long one power operation may take, end to end', '300')
    .option('--power-reading-interval <s>', "seconds between two power readings of one BMC (a BMC without readings: ten times that); 0 turns readings off and the inventory's watts stand in", '60')
    .option('--fencing-margin <s>', 'a BMC call needs the leader lease held with this much time left before the renew deadline', '1')
    .option('--reconcile-watchdog <s>', '/healthz fails while one reconcile has run longer than this', '300')
    .option('--watch-stale-after <s>', '/readyz fails while a watch of the API server has been down longer than this', '30')
    .option('--identity <id>', 'leader election identity (default: hostname and a random suffix)')
    .option('--autoscaler-selector <selector>', 'only manage BareMetalAutoscalers with these labels (e.g. shard=a)')
    .option('--webhook-bind-address <addr>', 'address of the admission webhook server (HTTPS)', ':9443')
    .option('--webhook-cert-dir <dir>', 'directory with the webhook serving certificate (tls.crt, tls.key), reloaded when it changes; without it the webhook server stays off')
    .option('--inventory-namespaces <list>', 'comma-separated namespaces holding inventories and their credentials Secrets; ConfigMaps and Secrets are watched there only (default: every namespace)');
  registerCertRotationFlags(command);
  command.action(async (flags: ManagerFlags) => {
      await runManager(flags);
    });
}

async function runManager(flags: ManagerFlags): Promise<void> {
  const logger = createLogger('manager');
  const kc = loadKubeConfig(flags.kubeconfig);
  const caps = {
    ...(flags.maxTotalMachines !== undefined ? { machines: Number.parseInt(flags.maxTotalMachines, 10) } : {}),
    ...(flags.maxTotalCpu !== undefined ? { cpu: parseQuantity(flags.maxTotalCpu) } : {}),
    ...(flags.maxTotalMemory !== undefined ? { memory: parseQuantity(flags.maxTotalMemory) } : {}),
  };
  if (caps.machines !== undefined && !(caps.machines >= 0)) throw new Error(`--max-total-machines must be a whole number, got ${flags.maxTotalMachines}`);
  const inventoryNamespaces = parseNamespaceList(flags.inventoryNamespaces, '--inventory-namespaces');
  const rotator = certRotationOptions(flags, { kc, namespace: flags.namespace, logger });
  let exitCode = 0;
  let stopping = false;
  const manager = new Manager({
    kc,
    namespace: flags.namespace,
    leaderElect: flags.leaderElect,
    ...(flags.identity ? { identity: flags.identity } : {}),
    leaseName: flags.leaderElectionId,
    leaseDurationMs: seconds('lease-duration', flags.leaseDuration),
    renewDeadlineMs: seconds('renew-deadline', flags.renewDeadline),
    retryPeriodMs: seconds('retry-period', flags.retryPeriod),
    metricsBindAddress: flags.metricsBindAddress,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    extenderBindAddress: flags.extenderBindAddress,
    ...(flags.extenderCertDir ? { extenderCertDir: flags.extenderCertDir } : {}),
    caps,
    ...(flags.autoscalerSelector ? { autoscalerSelector: flags.autoscalerSelector } : {}),
    ...(inventoryNamespaces ? { inventoryNamespaces } : {}),
    settleGraceMs: seconds('settle-grace', flags.settleGrace),
    quarantineBaseMs: seconds('quarantine-base', flags.quarantineBase),
    gracefulTimeoutMs: seconds('graceful-power-off-timeout', flags.gracefulPowerOffTimeout),
    bmcTimeouts: { operationMs: seconds('bmc-operation-timeout', flags.bmcOperationTimeout) },
    fencingMarginMs: seconds('fencing-margin', flags.fencingMargin),
    powerReadingIntervalMs: seconds('power-reading-interval', flags.powerReadingInterval),
    reconcileWatchdogMs: seconds('reconcile-watchdog', flags.reconcileWatchdog),
    watchStaleMs: seconds('watch-stale-after', flags.watchStaleAfter),
    logger,
    webhookBindAddress: flags.webhookBindAddress,
    ...(flags.webhookCertDir ? { webhookCertDir: flags.webhookCertDir } : {}),
    onLeadershipLost: () => {
      // A replica that lost its lease starts anew (its caches and in-memory state are suspect).
      exitCode = 1;
      void shutdown();
    },
  });
  const done = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  let resolveShutdown!: () => void;
  const shutdownRequested = new Promise<void>((r) => (resolveShutdown = r));
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    resolveShutdown();
  };
  try {
    // The certificate files exist before the servers that read them start.
    await rotator?.ensure();
    rotator?.start();
    await manager.start();
  } catch (err) {
    // A server that cannot start (a port in use, no webhook certificate): stop what did
    // start (informers, other servers) so that the process exits with the error.
    await manager.stop(0);
    await rotator?.stop();
    logger.flush();
    throw err;
  }
  logger.info({ identity: manager.identity, addresses: manager.addresses() }, 'manager started');
  await Promise.race([done, shutdownRequested]);
  stopping = true;
  logger.info('shutting down');
  await manager.stop();
  await rotator?.stop();
  logger.info('stopped');
  logger.flush();
  process.exitCode = exitCode;
}
