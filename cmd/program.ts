import { Command } from 'commander';
import { VERSION } from '../api/version.js';

type Register = (program: Command) => void;

/**
 * Each subcommand's module, loaded only when needed: `bamel agent` runs on every node, and
 * loading the manager's modules beside it (client-node, the controller, fastify) would more
 * than double its memory for nothing. In the order `bamel --help` lists them.
 */
const SUBCOMMANDS: Record<string, () => Promise<Register>> = {
  inventory: async () => (await import('./inventory.js')).registerInventoryCommand,
  bmc: async () => (await import('./bmc.js')).registerBmcCommand,
  manager: async () => (await import('./manager.js')).registerManagerCommand,
  sim: async () => (await import('./sim.js')).registerSimCommand,
  simulate: async () => (await import('./simulate.js')).registerSimulateCommand,
  agent: async () => (await import('./agent.js')).registerAgentCommand,
};

/** The subcommand argv asks for (its first word after the script), when it is one of ours. */
export function requestedSubcommand(argv: readonly string[]): string | undefined {
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  return word !== undefined && Object.hasOwn(SUBCOMMANDS, word) ? word : undefined;
}

/**
 * The `bamel` CLI. Each subcommand lives in its own module under cmd/ and is registered
 * here; a subcommand whose capability has not landed yet says so and exits 2 rather
 * than pretending to work. With `argv`, only the subcommand it names is loaded (all of
 * them for --help, version, or an unknown word).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('bamel')
    .description('bamel-autoscaler: powers idle bare-metal machines off through their BMC and back on when workloads need room')
    .version(VERSION, '--version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`bamel ${VERSION}\n`);
    });

  const requested = requestedSubcommand(argv);
  for (const [name, load] of Object.entries(SUBCOMMANDS)) {
    if (requested === undefined || requested === name) (await load())(program);
  }

  for (const [name, what] of [
    ['manager', 'run the controller (leader-elected), webhook and extender servers'],
    ['agent', 'run the per-node eBPF traffic agent'],
    ['bmc', 'talk to one BMC the way the controller does: status|on|off'],
    ['sim', 'run the simulated machines and BMCs of the local datacenter'],
  ] as const) {
    if (program.commands.some((c) => c.name() === name)) continue;
    program
      .command(name)
      .description(`${what} (not in this build yet)`)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        process.stderr.write(`bamel ${name}: not available in bamel ${VERSION} yet\n`);
        process.exitCode = 2;
      });
  }
  return program;
}
