// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/table.ts [bench/results.json]
// (hack/bench.sh runs it after the benches.)
//
// The performance goals of the project next to the figures `make bench` measured in one run:
// one row per goal, "now" from bench/results.json, and whether the goal is met. A figure a
// bench did not produce (skipped: no root for eBPF, a subset run) shows as "–".
import { readFileSync } from 'node:fs';

type Results = Record<string, Record<string, unknown> | undefined>;

export interface GoalRow {
  measure: string;
  goal: string;
  /** The figure from the benches' JSON, or undefined when not measured in this run. */
  now: (r: Results) => number | undefined;
  met: (v: number) => boolean;
  unit: string;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function entries(r: Results, bench: string, key: string): Record<string, unknown>[] {
  const list = r[bench]?.[key];
  return Array.isArray(list) ? list.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null) : [];
}

/** One entry of a bench's size list: the first whose fields pass `match`. */
function sized(r: Results, bench: string, key: string, match: (e: Record<string, unknown>) => boolean, field: string): number | undefined {
  const hit = entries(r, bench, key).find(match);
  return hit ? num(hit[field]) : undefined;
}

/** The decision bench's recorded sizes: the 30,000-pod case is told apart by its pod count. */
const recorded = (machines: number, manyPods: boolean) => (e: Record<string, unknown>) => e.machines === machines && (e.pods === 30000) === manyPods;
const nodes = (n: number) => (e: Record<string, unknown>) => e.nodes === n;
const machines = (n: number) => (e: Record<string, unknown>) => e.machines === n;

const at = (bench: string, field: string) => (r: Results) => num(r[bench]?.[field]);
const atMost = (goal: number) => (v: number) => v <= goal;
const atLeast = (goal: number) => (v: number) => v >= goal;

export const GOALS: GoalRow[] = [
  { measure: 'kube-scheduler pods/s with the extender ÷ without, 5,000 kwok Nodes', goal: '≥ 0.90', unit: '', now: (r) => sized(r, 'extender', 'sizes', nodes(5000), 'ratio'), met: atLeast(0.9) },
  { measure: 'the same, 1,000 kwok Nodes', goal: '≥ 0.95', unit: '', now: (r) => sized(r, 'extender', 'sizes', nodes(1000), 'ratio'), met: atLeast(0.95) },
  { measure: 'eBPF ns per packet: bulk ingress', goal: '≤ 150', unit: ' ns', now: at('traffic', 'ingressNsPerPacket'), met: atMost(150) },
  { measure: 'eBPF ns per packet: egress', goal: '≤ 100', unit: ' ns', now: at('traffic', 'egressNsPerPacket'), met: atMost(100) },
  { measure: 'eBPF ns per packet: ingress with HTTP parsing', goal: '≤ 300', unit: ' ns', now: at('traffic', 'l7IngressNsPerPacket'), met: atMost(300) },
  { measure: 'veth throughput with the programs ÷ without', goal: '≥ 0.97', unit: '', now: at('traffic', 'vethRatio'), met: atLeast(0.97) },
  { measure: 'agent RSS with 500 pods’ cgroups', goal: '≤ 64', unit: ' MiB', now: at('traffic', 'agentRssMiB'), met: atMost(64) },
  { measure: 'webhook handler p99: autoscaler', goal: '≤ 5', unit: ' ms', now: at('webhook', 'autoscalerP99Ms'), met: atMost(5) },
  { measure: 'webhook handler p99: inventory of 100 machines', goal: '≤ 10', unit: ' ms', now: at('webhook', 'inventoryP99Ms'), met: atMost(10) },
  { measure: 'reconcile p50, recorded state, 10,000 pending pods, 1,000 machines', goal: '≤ 100', unit: ' ms', now: (r) => sized(r, 'decision', 'recorded', recorded(1000, false), 'reconcileP50Ms'), met: atMost(100) },
  { measure: 'the same, 10,000 machines', goal: '≤ 400', unit: ' ms', now: (r) => sized(r, 'decision', 'recorded', recorded(10000, false), 'reconcileP50Ms'), met: atMost(400) },
  { measure: 'first reconcile at 10,000 machines', goal: '≤ 2000', unit: ' ms', now: (r) => sized(r, 'decision', 'recorded', recorded(10000, false), 'firstReconcileMs'), met: atMost(2000) },
  { measure: 'manager RSS: 1,000 machines + 30,000 pods', goal: '≤ 150', unit: ' MiB', now: (r) => sized(r, 'decision', 'recorded', recorded(1000, true), 'rssMiB'), met: atMost(150) },
  { measure: 'manager RSS: 10,000 machines', goal: '≤ 400', unit: ' MiB', now: (r) => sized(r, 'decision', 'recorded', recorded(10000, false), 'rssMiB'), met: atMost(400) },
  { measure: 'scale-down plan, 2,000 unneeded machines', goal: '≤ 100', unit: ' ms', now: (r) => sized(r, 'scale-down', 'sizes', machines(2000), 'allUnneededMs'), met: atMost(100) },
  { measure: 'status of 10,000 machines after a week, as written (etcd takes at most 1.5 MiB)', goal: '≤ 1.5', unit: ' MiB', now: (r) => (r['status-size']?.machines === 10000 ? num(r['status-size'].sentMiB) : undefined), met: atMost(1.5) },
  { measure: 'decision latency end to end p99 (pod unschedulable → power-on request)', goal: 'report', unit: ' ms', now: at('decision', 'e2eP99Ms'), met: () => true },
];

function shown(v: number, unit: string): string {
  const digits = Math.abs(v) >= 1000 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit}`;
}

/** The goals table in Markdown, from the parsed bench/results.json. */
export function goalTable(results: Results): string {
  const lines = ['| measure | now | goal | met |', '|---|---:|---:|:---:|'];
  for (const row of GOALS) {
    const v = row.now(results);
    const met = v === undefined ? '–' : row.goal === 'report' ? '' : row.met(v) ? 'yes' : 'no';
    lines.push(`| ${row.measure} | ${v === undefined ? '–' : shown(v, row.unit)} | ${row.goal === 'report' ? '' : `${row.goal}${row.unit}`} | ${met} |`);
  }
  return lines.join('\n');
}

function main(): void {
  const file = process.argv[2] ?? 'bench/results.json';
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`bench table: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}; run make bench first\n`);
    process.exit(1);
  }
  const doc = parsed as { date?: string; machine?: { cores?: number; cpu?: string }; results?: Results };
  if (typeof doc !== 'object' || doc === null || typeof doc.results !== 'object' || doc.results === null) {
    process.stderr.write(`bench table: ${file} has no "results" object\n`);
    process.exit(1);
  }
  process.stdout.write(`Measured ${doc.date ?? '?'} on ${doc.machine?.cores ?? '?'} cores (${doc.machine?.cpu ?? '?'}):\n\n${goalTable(doc.results)}\n`);
}

if (process.argv[1] && /table\.[jt]s$/.test(process.argv[1])) main();
