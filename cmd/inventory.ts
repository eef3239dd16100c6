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
    .description(
      'check inventory ConfigMaps or machines.yaml documents before applying them; several files are the inventories of one autoscaler (spec.inventories), and a machine name listed in two of them is an error; exits 1 if there are errors',
    )
    .argument('<file...>', 'the files to check, or - for standard input')
    .action(async (files: string[]) => {
      process.exitCode = await runInventoryValidateAll(files, { stdout: process.stdout, stderr: process.stderr });
    });
}

/**
 * Validates several inventory files, each as runInventoryValidate does, then the names across
 * them: an autoscaler reading these inventories leaves a machine listed twice alone. Returns
 * 1 if any file has errors or a name is listed twice.
 */
export async function runInventoryValidateAll(files: readonly string[], io: InventoryValidateIo): Promise<number> {
  if (files.length === 1) return runInventoryValidate(files[0]!, io);
  let code = 0;
  const listedIn = new Map<string, string[]>();
  for (const file of files) {
    const seen: string[] = [];
    if ((await runInventoryValidate(file, io, seen)) !== 0) code = 1;
    const shown = file === '-' ? '<stdin>' : file;
    for (const name of seen) listedIn.set(name, [...(listedIn.get(name) ?? []), shown]);
  }
  const duplicates = [...listedIn].filter(([, where]) => where.length > 1);
  for (const [name, where] of duplicates) io.stderr.write(`machine ${name} is listed in ${where.join(' and ')}; a machine belongs in one inventory\n`);
  if (duplicates.length > 0) {
    io.stderr.write(`${plural(duplicates.length, 'machine name')} listed in more than one file\n`);
    code = 1;
  }
  return code;
}

/** Validates one inventory file and prints the outcome; returns the exit code. `names` receives the machine names of a valid file. */
export async function runInventoryValidate(file: string, io: InventoryValidateIo, names?: string[]): Promise<number> {
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
    names?.push(...result.inventory.machines.map((m) => m.name));
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
