import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatIssue, parseInventoryText } from '../api/inventory.js';
import { errorMessage } from '../kube/errors.js';

export interface InventoryValidateIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Reads all of standard input; the default reads process.stdin. */
  readStdin?: () => Promise<string>;
}

export function registerInventoryCommand(program: Command): void {
  const inventory = program.command('inventory').description('work with machine inventories (the machines.yaml ConfigMap)');
  inventory
    .command('validate')
    .description('check an inventory ConfigMap or machines.yaml document before applying it; exits 1 if it has errors')
    .argument('<file>', 'the file to check, or - for standard input')
    .action(async (file: string) => {
      process.exitCode = await runInventoryValidate(file, { stdout: process.stdout, stderr: process.stderr });
    });
}

/** Validates one inventory file and prints the outcome; returns the exit code. */
export async function runInventoryValidate(file: string, io: InventoryValidateIo): Promise<number> {
  const shown = file === '-' ? '<stdin>' : file;
  let text: string;
  try {
    text = file === '-' ? await (io.readStdin ?? readProcessStdin)() : await readFile(file, 'utf8');
  } catch (err) {
    io.stderr.write(`${shown}: cannot read: ${errorMessage(err)}\n`);
    io.stderr.write(`${shown}: 1 error\n`);
    return 1;
  }

  const result = parseInventoryText(text, { source: shown });
  for (const warning of result.warnings) io.stdout.write(`warning: ${formatIssue(warning)}\n`);
  if (result.ok) {
    io.stdout.write(`${shown}: valid inventory, ${plural(result.inventory.machines.length, 'machine')}\n`);
    return 0;
  }
  for (const error of result.errors) io.stderr.write(`${shown}: ${formatIssue(error)}\n`);
  io.stderr.write(`${shown}: ${plural(result.errors.length, 'error')}\n`);
  return 1;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
