import { Command } from 'commander';
import { VERSION } from '../api/version.js';
import { registerAgentCommand } from './agent.js';
import { registerBmcCommand } from './bmc.js';
import { registerInventoryCommand } from './inventory.js';
import { registerManagerCommand } from './manager.js';
import { registerSimCommand } from './sim.js';
import { registerSimulateCommand } from './simulate.js';

/**
 * The `bamel` CLI. Each subcommand lives in its own module under cmd/ and is registered
 * here; a subcommand whose capability has not landed yet says so and exits 2 rather
 * than pretending to work.
 */
export function buildProgram(): Command {
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

  registerInventoryCommand(program);
  registerBmcCommand(program);
  registerManagerCommand(program);
  registerSimCommand(program);
  registerSimulateCommand(program);
  registerAgentCommand(program);

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
