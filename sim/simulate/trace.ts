import type { V1Toleration } from '@kubernetes/client-node';
import { CsvError, parse } from 'csv-parse/sync';
import { parseQuantity, QuantityError } from '../../api/quantity.js';
import { errorMessage } from '../../kube/errors.js';

/**
 * The workload trace of `bamel simulate`: a CSV file with a header row and one pod a row.
 *
 *   at        seconds from the start when the pod is created (a decimal, at least 0)
 *   name      the pod's name (unique in the trace)
 *   cpu       cores it requests (a decimal or a Kubernetes quantity: 0.5, 500m, 2)
 *   memory    memory it requests (a Kubernetes quantity: 512Mi, 2Gi, 1e9)
 *   duration  seconds it runs once bound (a pod delayed by pending runs it in full)
 *   tolerations   optional: a JSON list of tolerations ([{"key":"gpu","operator":"Exists"}])
 *   nodeSelector  optional: a JSON object of label → value ({"node.bamel.io/class":"gpu"})
 *
 * Every problem is refused with its line and column (1-based, the header is line 1).
 */

export const REQUIRED_COLUMNS = ['at', 'name', 'cpu', 'memory', 'duration'] as const;
export const OPTIONAL_COLUMNS = ['tolerations', 'nodeSelector'] as const;

export interface TracePod {
  /** The line of the CSV file the pod was read from. */
  line: number;
  /** Seconds from the start. */
  at: number;
  name: string;
  /** Requested cpu and memory in milli-units (parseQuantity), and as quantities for the pod spec. */
  cpuMilli: bigint;
  memoryMilli: bigint;
  cpu: string;
  memory: string;
  duration: number;
  tolerations?: V1Toleration[];
  nodeSelector?: Record<string, string>;
}

export class TraceError extends Error {
  override name = 'TraceError';
  constructor(
    readonly source: string,
    readonly line: number,
    readonly column: number | undefined,
    readonly problem: string,
  ) {
    super(`${source}: line ${line}${column !== undefined ? `, column ${column}` : ''}: ${problem}`);
  }
}

interface Row {
  record: string[];
  info: { lines: number };
}

export function parseTrace(text: string, source = 'trace'): TracePod[] {
  let rows: Row[];
  try {
    rows = parse(text, { info: true, skip_empty_lines: true, trim: true, comment: '#', bom: true }) as unknown as Row[];
  } catch (err) {
    if (err instanceof CsvError) {
      const e = err as CsvError & { lines?: number; index?: number };
      throw new TraceError(source, e.lines ?? 1, e.index !== undefined ? e.index + 1 : undefined, `not valid CSV: ${err.message}`);
    }
    throw new TraceError(source, 1, undefined, `not valid CSV: ${errorMessage(err)}`);
  }
  const [header, ...body] = rows;
  if (!header) throw new TraceError(source, 1, undefined, `the trace is empty; the first line names the columns: ${REQUIRED_COLUMNS.join(',')}`);
  const index = headerIndex(header, source);
  const names = new Map<string, number>();
  const pods: TracePod[] = [];
  for (const row of body) {
    const line = row.info.lines;
    const cell = (col: string): { value: string; column: number } => {
      const i = index.get(col) as number;
      return { value: row.record[i] ?? '', column: i + 1 };
    };
    const fail = (col: string, problem: string): never => {
      throw new TraceError(source, line, cell(col).column, `${col}: ${problem}`);
    };
    if (row.record.length !== header.record.length) {
      throw new TraceError(source, line, Math.min(row.record.length, header.record.length) + 1, `${row.record.length} fields, but the header names ${header.record.length} columns`);
    }
    const at = seconds(cell('at').value, (p) => fail('at', p));
    const name = cell('name').value;
    if (name === '') fail('name', 'empty; every pod needs a name');
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) fail('name', `${JSON.stringify(name)} is not a valid pod name (lowercase letters, digits, "-" and ".")`);
    const before = names.get(name);
    if (before !== undefined) fail('name', `${JSON.stringify(name)} is already the name of the pod on line ${before}`);
    names.set(name, line);
    const cpu = quantity(cell('cpu').value, (p) => fail('cpu', p));
    const memory = quantity(cell('memory').value, (p) => fail('memory', p));
    const duration = seconds(cell('duration').value, (p) => fail('duration', p));
    const pod: TracePod = { line, at, name, cpuMilli: cpu, memoryMilli: memory, cpu: cell('cpu').value, memory: cell('memory').value, duration };
    if (index.has('tolerations') && cell('tolerations').value !== '') pod.tolerations = tolerations(cell('tolerations').value, (p) => fail('tolerations', p));
    if (index.has('nodeSelector') && cell('nodeSelector').value !== '') pod.nodeSelector = nodeSelector(cell('nodeSelector').value, (p) => fail('nodeSelector', p));
    pods.push(pod);
  }
  // Stable: pods created at the same second keep the file's order.
  return pods.map((p, i) => ({ p, i })).sort((a, b) => a.p.at - b.p.at || a.i - b.i).map(({ p }) => p);
}

function headerIndex(header: Row, source: string): Map<string, number> {
  const index = new Map<string, number>();
  const known = new Set<string>([...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]);
  header.record.forEach((name, i) => {
    if (!known.has(name)) throw new TraceError(source, header.info.lines, i + 1, `unknown column ${JSON.stringify(name)}; the columns are ${[...known].join(', ')} (the last two optional)`);
    if (index.has(name)) throw new TraceError(source, header.info.lines, i + 1, `column ${name} appears twice`);
    index.set(name, i);
  });
  for (const col of REQUIRED_COLUMNS) {
    if (!index.has(col)) throw new TraceError(source, header.info.lines, header.record.length + 1, `missing column ${col}; the header must name ${REQUIRED_COLUMNS.join(', ')}`);
  }
  return index;
}

function seconds(text: string, fail: (problem: string) => never): number {
  if (text === '') fail('empty; expected seconds (a number, at least 0)');
  const v = Number(text);
  if (!Number.isFinite(v)) fail(`${JSON.stringify(text)} is not a number of seconds`);
  if (v < 0) fail(`${text} is negative; times and durations are seconds from 0 up`);
  return v;
}

function quantity(text: string, fail: (problem: string) => never): bigint {
  if (text === '') fail('empty; expected a quantity such as 500m, 2 or 4Gi');
  let v: bigint;
  try {
    v = parseQuantity(text);
  } catch (err) {
    fail(err instanceof QuantityError ? err.message : errorMessage(err));
  }
  if (v! < 0n) fail(`${text} is negative`);
  return v!;
}

function json(text: string, fail: (problem: string) => never): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return fail(`not valid JSON (${errorMessage(err)}); quote the field and double its quotes: "[{""key"":""gpu"",""operator"":""Exists""}]"`);
  }
}

const TOLERATION_KEYS = new Set(['key', 'operator', 'value', 'effect', 'tolerationSeconds']);

function tolerations(text: string, fail: (problem: string) => never): V1Toleration[] {
  const v = json(text, fail);
  if (!Array.isArray(v)) fail('must be a JSON list of tolerations');
  return (v as unknown[]).map((t, i) => {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) return fail(`[${i}] must be an object such as {"key":"gpu","operator":"Exists"}`);
    for (const [k, x] of Object.entries(t)) {
      if (!TOLERATION_KEYS.has(k)) fail(`[${i}] has unknown field ${k}; a toleration has ${[...TOLERATION_KEYS].join(', ')}`);
      if (k === 'tolerationSeconds' ? typeof x !== 'number' : typeof x !== 'string') fail(`[${i}].${k} must be a ${k === 'tolerationSeconds' ? 'number' : 'string'}`);
    }
    return t;
  });
}

function nodeSelector(text: string, fail: (problem: string) => never): Record<string, string> {
  const v = json(text, fail);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('must be a JSON object of label → value');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') fail(`the value of ${k} must be a string`);
  return v as Record<string, string>;
}
