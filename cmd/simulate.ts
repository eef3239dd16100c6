import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command} from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { formatIssue, INVENTORY_DATA_KEY, parseInventoryText, type ParsedMachine } from '../api/inventory.js';
import { selectorMatches } from '../api/selector.js';
import { KIND, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { errorMessage } from '../kube/errors.js';
import { simulate, parseTrace, type Policy, type SimulateResult } from '../sim/simulate/index.js';
import { writeOutputs } from '../sim/simulate/output.js';
import { checkAutoscalerStructure } from '../webhook/structure.js';

/**
 * `bamel simulate`: the real controller on a virtual clock over a workload trace
 * (sim/simulate/). Prints one JSON object; with --out, also summary.json, timeline.csv and
 * the timeline chart (svg and png).
 */

export interface SimulateIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export interface SimulateArgs {
  trace: string;
  inventory: string;
  autoscaler: string;
  policy: Policy;
  out?: string;
  seed: number;
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('run the real decision code on a virtual clock over a workload trace: machine-hours, energy, pending times and power cycles against always-on and the oracle')
    .requiredOption('--trace <file>', 'the workload: CSV with the columns at,name,cpu,memory,duration (and optional tolerations,nodeSelector as JSON)')
    .requiredOption('--inventory <file>', 'the machines: a machines.yaml document or the inventory ConfigMap holding it')
    .requiredOption('--autoscaler <file>', 'the BareMetalAutoscaler (YAML) whose settings to simulate')
    .addOption(new Option('--policy <policy>', 'bamel (the controller decides) or always-on (every machine on)').choices(['bamel', 'always-on']).default('bamel'))
    .option('--out <dir>', 'also write summary.json, timeline.csv, timeline.svg and timeline.png there')
    .option('--seed <n>', 'the seed of boot-time jitter and scheduling ties', seedOf, 1)
    .action(async (opts: SimulateArgs) => {
      process.exitCode = await runSimulate(opts, { stdout: process.stdout, stderr: process.stderr });
    });
}

function seedOf(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError('a whole number from 0 to 4294967295');
  return n;
}

export class InputError extends Error {}

export interface SimulationInputs {
  pods: ReturnType<typeof parseTrace>;
  machines: ParsedMachine[];
  machinesYaml: string;
  autoscaler: BareMetalAutoscaler;
}

/** Reads and checks the three input files; throws an InputError naming the file and the place. */
export async function loadInputs(args: Pick<SimulateArgs, 'trace' | 'inventory' | 'autoscaler'>): Promise<SimulationInputs> {
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new InputError(`${file}: cannot read: ${errorMessage(err)}`);
    }
  };
  const [traceText, inventoryText, autoscalerText] = await Promise.all([read(args.trace), read(args.inventory), read(args.autoscaler)]);
  let pods;
  try {
    pods = parseTrace(traceText, args.trace);
  } catch (err) {
    throw new InputError(errorMessage(err));
  }
  const inv = parseInventoryText(inventoryText, { source: args.inventory });
  if (!inv.ok) throw new InputError(inv.errors.map((e) => `${args.inventory}: ${formatIssue(e)}`).join('\n'));
  const autoscaler = parseAutoscaler(autoscalerText, args.autoscaler);
  const machines = inv.inventory.machines.filter((m) => selectorMatches(autoscaler.spec.machineSelector, m.labels));
  if (machines.length === 0) throw new InputError(`${args.autoscaler}: spec.machineSelector selects none of the ${inv.inventory.machines.length} machines of ${args.inventory}`);
  return { pods, machines, machinesYaml: machinesYamlOf(inventoryText), autoscaler };
}

/** The machines.yaml text: the file itself, or the ConfigMap's data key (parseInventoryText accepted it). */
function machinesYamlOf(text: string): string {
  const doc = parseYaml(text, { merge: true }) as { kind?: unknown; data?: Record<string, string> } | null;
  return doc?.kind === 'ConfigMap' ? (doc.data?.[INVENTORY_DATA_KEY] ?? '') : text;
}

/** A BareMetalAutoscaler, checked and defaulted with the webhook's own schema check. */
function parseAutoscaler(text: string, file: string): BareMetalAutoscaler {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new InputError(`${file}: not valid YAML: ${errorMessage(err)}`);
  }
  const kind = (doc as { kind?: unknown } | null)?.kind;
  if (kind !== KIND) throw new InputError(`${file}: expected a ${KIND} (kind: ${KIND}), got ${kind === undefined ? 'no kind' : `kind ${JSON.stringify(kind)}`}`);
  const { defaulted, issues } = checkAutoscalerStructure(doc);
  if (issues.length > 0) throw new InputError(issues.map((i) => `${file}: ${i.field}: ${i.message}`).join('\n'));
  return defaulted;
}

export async function runSimulate(args: SimulateArgs, io: SimulateIo): Promise<number> {
  let result: SimulateResult;
  try {
    const inputs = await loadInputs(args);
    result = await simulate({ ...inputs, policy: args.policy, seed: args.seed });
    for (const m of result.details.machinesWithoutPower) io.stderr.write(`warning: machine ${m} has no power figures in the inventory: its energy counts as 0 W\n`);
    if (args.out !== undefined) await writeOutputs(args.out, result, `bamel simulate: ${basename(args.trace)} (${args.policy})`);
  } catch (err) {
    io.stderr.write(`bamel simulate: ${errorMessage(err)}\n`);
    return 1;
  }
  io.stdout.write(`${JSON.stringify(result.summary)}\n`);
  return 0;
}
