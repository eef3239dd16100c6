#!/usr/bin/env node
import { CommanderError } from 'commander';
import { installFatalHandlers } from './log.js';
import { buildProgram } from './program.js';
import { errorMessage } from '../kube/errors.js';

async function main(): Promise<void> {
  const program = await buildProgram(process.argv);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`bamel: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  }
}

// A rejection nobody handled, or an exception nobody caught: log it (flushed) and exit non-zero.
installFatalHandlers();
await main();
