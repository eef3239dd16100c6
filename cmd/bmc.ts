import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as k8s from '@kubernetes/client-node';
import { formatIssue, parseInventoryText, type ParsedMachine } from '../api/inventory.js';
import { BmcAddressError, parseBmcAddress } from '../power/address.js';
import { BmcCredentials, CredentialsError, readPasswordFile } from '../power/credentials.js';
import type { PowerDriver } from '../power/driver.js';
import { isBmcError, type BmcErrorCode } from '../power/errors.js';
import { createPowerDriver } from '../power/factory.js';
import { readCredentialsSecret } from '../power/secrets.js';
import { loadKubeConfig } from './kube.js';
import { createLogger } from './log.js';
import { errorMessage } from '../kube/errors.js';
import { makeApiClient } from '../kube/client.js';

interface BmcFlags {
  address?: string;
  username?: string;
  passwordFile?: string;
  insecure?: boolean;
  caFile?: string;
  inventory?: string;
  machine?: string;
  namespace?: string;
  kubeconfig?: string;
  timeout: string;
  gracefulTimeout: string;
  force?: boolean;
  json?: boolean;
}

/** Exit codes by error type, so scripts can tell a wrong password from a dead BMC. */
export const BMC_EXIT_CODES: Record<BmcErrorCode | 'USAGE' | 'NO_READING', number> = {
  USAGE: 2,
  BMC_UNREACHABLE: 3,
  BMC_AUTH: 4,
  BMC_REFUSED: 5,
  BMC_TIMEOUT: 6,
  BMC_PROTOCOL: 7,
  BMC_DEGRADED: 8,
  NO_READING: 9,
};

const EXIT_CODE_HELP = [
  'Exit codes:',
  '  0  done',
  '  1  any other failure',
  ...Object.entries(BMC_EXIT_CODES).map(([code, n]) => `  ${n}  ${code === 'NO_READING' ? 'NO_READING: power: the BMC offers no power reading' : code}`),
].join('\n');

type BmcAction = 'status' | 'on' | 'off' | 'power';

class UsageError extends Error {}

export function registerBmcCommand(program: Command): void {
  const bmc = program.command('bmc').description('talk to one BMC the way the controller does: status|on|off|power').addHelpText('after', `\n${EXIT_CODE_HELP}`);
  for (const [action, what] of [
    ['status', 'print the power state (on or off)'],
    ['on', 'power the machine on and wait until it is on'],
    ['off', 'shut the machine down gracefully, then force it off after --graceful-timeout'],
    ['power', 'print what the machine draws, in watts, and where the BMC reads it (Redfish PowerSubsystem, EnvironmentMetrics or Power; IPMI DCMI)'],
  ] as const) {
    const cmd = bmc
      .command(action)
      .description(what)
      .option('--address <url>', 'BMC address, e.g. ipmi://10.0.0.12 or redfish+https://10.0.0.11/redfish/v1/Systems/1')
      .option('--username <user>', 'BMC user (with --address)')
      .option('--password-file <file>', 'file holding the BMC password (with --address); never pass a password as an argument')
      .option('--insecure', 'do not verify the Redfish TLS certificate')
      .option('--ca-file <file>', 'CA bundle (PEM) for the Redfish TLS certificate')
      .option('--inventory <file>', 'an inventory (ConfigMap manifest or machines.yaml) instead of --address')
      .option('--machine <name>', 'the machine in --inventory; its credentials Secret is read through the kubeconfig')
      .option('--namespace <ns>', "namespace of the credentials Secret (default: the inventory ConfigMap's, else bamel-system)")
      .option('--kubeconfig <file>', 'kubeconfig for reading the credentials Secret (default: $KUBECONFIG)')
      .option('--timeout <seconds>', 'give up after this long', '300')
      .option('--graceful-timeout <seconds>', 'off: how long to wait for a graceful shutdown before forcing', '180');
    if (action === 'off') cmd.option('--force', 'power off at once, without a graceful shutdown');
    if (action === 'power') cmd.option('--json', 'print {"watts", "source", "observedAt"} as one JSON line');
    cmd.addHelpText('after', `\n${EXIT_CODE_HELP}`);
    cmd.action(async (flags: BmcFlags) => {
      process.exitCode = await runBmc(action, flags);
    });
  }
}

export async function runBmc(action: BmcAction, flags: BmcFlags, io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const logger = createLogger('bmc', process.env.BAMEL_LOG_LEVEL ?? 'warn');
  let driver: PowerDriver | undefined;
  try {
    const timeoutS = Number(flags.timeout);
    const gracefulS = Number(flags.gracefulTimeout);
    if (!(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got ${flags.timeout}`);
    if (!(gracefulS >= 0)) throw new UsageError(`--graceful-timeout must be a number of seconds, got ${flags.gracefulTimeout}`);
    const target = await resolveTarget(flags);
    driver = createPowerDriver(target, {
      timeouts: { operationMs: timeoutS * 1000 },
      gracefulTimeoutMs: gracefulS * 1000,
      logger,
    });
    // The driver's own operation deadline (--timeout) ends the command with a typed BMC_TIMEOUT.
    if (action === 'status') {
      io.out.write(`${await driver.status()}\n`);
    } else if (action === 'power') {
      return await printReading(driver, flags.json === true, io);
    } else if (action === 'on') {
      const r = await driver.powerOn();
      io.out.write(`${r.state}\n`);
    } else {
      const r = await driver.powerOff(flags.force ? { force: true } : {});
      io.out.write(`${r.state}\n`);
    }
    return 0;
  } catch (err) {
    if (isBmcError(err)) {
      io.err.write(`bamel bmc ${action}: ${err.code}: ${err.message}\n`);
      return BMC_EXIT_CODES[err.code];
    }
    if (err instanceof UsageError || err instanceof BmcAddressError || err instanceof CredentialsError) {
      io.err.write(`bamel bmc ${action}: ${err.message}\n`);
      return BMC_EXIT_CODES.USAGE;
    }
    io.err.write(`bamel bmc ${action}: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await driver?.close().catch(() => undefined);
    logger.flush();
  }
}

async function printReading(driver: PowerDriver, json: boolean, io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Promise<number> {
  const result = driver.reading ? await driver.reading() : { kind: 'none' as const, reason: `the ${driver.kind} driver reads no power` };
  if (result.kind === 'none') {
    io.err.write(`bamel bmc power: NO_READING: ${driver.endpoint} offers no power reading: ${result.reason}\n`);
    return BMC_EXIT_CODES.NO_READING;
  }
  const { watts, source, observedAt } = result;
  io.out.write(json ? `${JSON.stringify({ watts, source, observedAt: observedAt.toISOString() })}\n` : `${watts} W (${source})\n`);
  return 0;
}

interface Target {
  address: string;
  credentials: BmcCredentials;
  insecureSkipVerify?: boolean;
  caBundle?: string;
}

async function resolveTarget(flags: BmcFlags): Promise<Target> {
  if (flags.address && flags.inventory) throw new UsageError('use either --address or --inventory with --machine, not both');
  if (flags.address) {
    parseBmcAddress(flags.address);
    if (!flags.username) throw new UsageError('--username is required with --address');
    if (!flags.passwordFile) throw new UsageError('--password-file is required with --address (passwords are never taken as arguments)');
    const password = await readPasswordFile(flags.passwordFile);
    return {
      address: flags.address,
      credentials: new BmcCredentials(flags.username, password),
      ...(flags.insecure ? { insecureSkipVerify: true } : {}),
      ...(flags.caFile ? { caBundle: await readFile(flags.caFile, 'utf8') } : {}),
    };
  }
  if (!flags.inventory || !flags.machine) throw new UsageError('give --address, --username and --password-file, or --inventory and --machine');
  const parsed = parseInventoryText(await readFile(flags.inventory, 'utf8'), { source: flags.inventory });
  if (!parsed.ok) {
    throw new UsageError(`${flags.inventory} is not a valid inventory:\n${parsed.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`);
  }
  const machine: ParsedMachine | undefined = parsed.inventory.machines.find((m) => m.name === flags.machine);
  if (!machine) {
    throw new UsageError(`no machine ${flags.machine} in ${flags.inventory}; it has ${parsed.inventory.machines.map((m) => m.name).join(', ')}`);
  }
  const namespace = flags.namespace ?? parsed.inventory.namespace ?? 'bamel-system';
  const core = makeApiClient(loadKubeConfig(flags.kubeconfig), k8s.CoreV1Api);
  const credentials = await readCredentialsSecret(core, namespace, machine.bmc.credentialsSecret, `machines[${machine.index}] (${machine.name})`);
  return {
    address: machine.bmc.address,
    credentials,
    insecureSkipVerify: flags.insecure ?? machine.bmc.insecureSkipVerify,
    ...(machine.bmc.caBundle ? { caBundle: machine.bmc.caBundle } : {}),
    ...(flags.caFile ? { caBundle: await readFile(flags.caFile, 'utf8') } : {}),
  };
}
