import { Type, type Static, type TObject } from '@sinclair/typebox';
import { LineCounter, parseAllDocuments, type Document, type YAMLError } from 'yaml';
import { checkDuplicateBmcs, checkDuplicateNames, checkMachine, DEFAULT_MAX_PODS, type CheckedMachine, type IssueSink } from './inventory-checks.js';
import { embeddedLineMapper, lineLocator, type LineMapper } from './inventory-lines.js';
import { TAINT_EFFECTS } from './labels.js';
import { checkSchema, isPlainObject, type PathSegment } from './schema-check.js';
import type { BmcAddress } from '../power/address.js';
import { errorMessage } from '../kube/errors.js';
import { fastYaml } from './fast-yaml.js';

/**
 * The machine inventory: which physical machines the autoscaler may power on and off, how
 * to reach their BMCs, and what each offers once it is a Node. It lives in a ConfigMap
 * (key machines.yaml) so that it is applied, versioned and reviewed like any manifest; the
 * controller, the admission webhook and `bamel inventory validate` all read it here, so
 * they accept and reject exactly the same documents.
 */

export const INVENTORY_LABEL = 'autoscaling.bamel.io/inventory';
export const INVENTORY_DATA_KEY = 'machines.yaml';
export { DEFAULT_MAX_PODS };

const quantity = (description: string) => Type.Union([Type.String(), Type.Number()], { description });
const seconds = (description: string) => Type.Integer({ minimum: 1, maximum: 86400, description });

export const MachineBmcSchema = Type.Object(
  {
    address: Type.String({
      description: 'The BMC address in Metal3 form: ipmi://host[:port], redfish+https://host/redfish/v1/Systems/ID, idrac-redfish://..., ilo5-redfish://...',
    }),
    credentialsSecret: Type.String({
      description: "The name of the Secret in the inventory's namespace that holds the BMC credentials under the keys username and password",
    }),
    insecureSkipVerify: Type.Optional(
      Type.Boolean({ default: false, description: "Skip TLS certificate verification for an https BMC; prefer caBundle with the BMC's CA" }),
    ),
    caBundle: Type.Optional(Type.String({ description: "PEM CA certificates the https BMC's certificate is verified against" })),
    allowInsecureCredentials: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Send the BMC credentials although they are not protected: over plain HTTP (redfish+http, idrac-redfish+http, ilo5-redfish+http) they travel in clear, with insecureSkipVerify they go to whatever answers on the address. Refused without it; for a lab or an isolated BMC network only',
      }),
    ),
  },
  { additionalProperties: false, description: "How to reach the machine's BMC: its address and the Secret with its credentials" },
);

export const MachineTaintSchema = Type.Object(
  {
    key: Type.String({ description: 'The taint key, a label key such as gpu or example.com/dedicated' }),
    value: Type.Optional(Type.String({ description: 'The taint value, a label value' })),
    effect: Type.Union(
      TAINT_EFFECTS.map((effect) => Type.Literal(effect)),
      { description: 'NoSchedule, PreferNoSchedule or NoExecute' },
    ),
  },
  { additionalProperties: false, description: "A taint the machine's Node registers with" },
);

export const MachineCapacitySchema = Type.Object(
  {
    cpu: quantity('The CPU cores the machine offers, e.g. "32" or "31500m"'),
    memory: quantity('The memory the machine offers, e.g. 256Gi'),
    'ephemeral-storage': Type.Optional(quantity('The local storage pods may use, e.g. 1Ti')),
    pods: Type.Optional(Type.Union([Type.String(), Type.Number()], { default: DEFAULT_MAX_PODS, description: 'The most pods the Node runs; 110 unless set' })),
  },
  {
    additionalProperties: quantity('An extended resource in whole units, e.g. nvidia.com/gpu: 4'),
    description: 'What the machine offers as a Node: cpu and memory at least, as Kubernetes quantities (cpu: "32", memory: 256Gi)',
  },
);

export const MachinePowerSchema = Type.Object(
  {
    idleWatts: Type.Optional(Type.Number({ minimum: 0, description: 'Watts drawn when on and idle' })),
    maxWatts: Type.Optional(Type.Number({ minimum: 0, description: 'Watts drawn at full load; between equally good machines the cheaper one is powered on' })),
  },
  { additionalProperties: false, description: "The machine's power draw" },
);

export const MachineSchema = Type.Object(
  {
    name: Type.String({ description: 'The Node name the machine registers with, a DNS-1123 subdomain such as rack-a-01' }),
    bmc: MachineBmcSchema,
    labels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: "Labels of the machine's Node, matched by machineSelector and nodeSelector" })),
    taints: Type.Optional(Type.Array(MachineTaintSchema, { description: "Taints of the machine's Node" })),
    capacity: MachineCapacitySchema,
    power: Type.Optional(MachinePowerSchema),
    bootSeconds: Type.Optional(seconds('Expected seconds from power-on to Node Ready')),
    joinTimeoutSeconds: Type.Optional(seconds('Seconds to wait for the Node to join before powering the machine off again')),
  },
  { additionalProperties: false, description: 'A machine the autoscaler may power on and off' },
);

export const InventorySchema = Type.Object(
  { machines: Type.Array(MachineSchema, { description: 'The machines the autoscaler may power on and off' }) },
  { additionalProperties: false, description: 'The machines.yaml document of an inventory ConfigMap' },
);

export type Inventory = Static<typeof InventorySchema>;
export type Machine = Static<typeof MachineSchema>;
export type MachineBmc = Static<typeof MachineBmcSchema>;
export type MachineTaint = Static<typeof MachineTaintSchema>;
export type MachineCapacity = Static<typeof MachineCapacitySchema>;
export type MachinePower = Static<typeof MachinePowerSchema>;

export interface ParsedMachine {
  /** Position in the machines list, for messages that point back at the document. */
  index: number;
  name: string;
  bmc: {
    address: string;
    parsedAddress: BmcAddress;
    credentialsSecret: string;
    insecureSkipVerify: boolean;
    caBundle?: string;
    /** The machine opted in to credentials in clear (http) or to an unverified host; absent when not. */
    allowInsecureCredentials?: true;
  };
  labels: Record<string, string>;
  taints: MachineTaint[];
  /** Milli-units by resource name (pods defaulted), exact for fit arithmetic. */
  capacity: Record<string, bigint>;
  /** The quantities as written, for messages and status. */
  capacityText: Record<string, string>;
  power?: MachinePower;
  bootSeconds?: number;
  joinTimeoutSeconds?: number;
}

export interface ParsedInventory {
  /** What the inventory was read from: a file name, or "ConfigMap namespace/name". */
  source?: string;
  /** The ConfigMap's name and namespace, when it came from one. */
  name?: string;
  namespace?: string;
  machines: ParsedMachine[];
}

export interface InventoryIssue {
  /** Where, e.g. `machines[3] (rack-a-07).bmc.address`; empty for the whole document. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

export type InventoryResult =
  | { ok: true; inventory: ParsedInventory; warnings: InventoryIssue[] }
  | { ok: false; errors: InventoryIssue[]; warnings: InventoryIssue[] };

export function formatIssue(issue: InventoryIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/** The ConfigMap shape the controller and the webhook receive from the API server. */
export interface InventoryConfigMap {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// Entry points

/** Reads either an inventory ConfigMap manifest or a bare machines.yaml document. */
export function parseInventoryText(text: string, opts: { source?: string } = {}): InventoryResult {
  const issues = new Issues();
  const yaml = parseYaml(text);
  if (yaml.errors.length > 0) return failure(yaml.errors, []);
  const { value, document } = yaml;

  if (isPlainObject(value) && 'kind' in value) {
    if (value.kind !== 'ConfigMap') {
      issues.error(['kind'], `expected an inventory ConfigMap or a machines.yaml document (machines: [...]), got kind ${JSON.stringify(value.kind)}`);
      return issues.result(undefined);
    }
    if (value.apiVersion !== 'v1') issues.error(['apiVersion'], `must be "v1" for a ConfigMap, got ${JSON.stringify(value.apiVersion ?? null)}`);
    const machinesText = checkConfigMapEnvelope(value, issues);
    if (machinesText === undefined) return issues.result(undefined);
    const metadata = configMapMetadata(value);
    const toOuterLines = document === undefined ? undefined : embeddedLineMapper(document, text, yaml.lineCounter, INVENTORY_DATA_KEY);
    return parseMachinesYaml(machinesText, issues, toOuterLines, { ...metadata, ...optional('source', opts.source) });
  }

  if (Array.isArray(value)) {
    issues.error([], 'the document is a list; put it under a top-level "machines:" key (machines:\n  - name: ...)');
    return issues.result(undefined);
  }
  return validateMachinesDocument(value, issues, optional('source', opts.source), lineLocator(document, yaml.lineCounter, undefined, ''));
}

/** For the controller and the webhook: the same checks on a ConfigMap from the API server. */
export function parseInventoryConfigMap(cm: InventoryConfigMap): InventoryResult {
  const issues = new Issues();
  const raw = cm as Record<string, unknown>;
  const machinesText = checkConfigMapEnvelope(raw, issues);
  if (machinesText === undefined) return issues.result(undefined);
  const metadata = configMapMetadata(raw);
  const source = `ConfigMap ${metadata.namespace ?? ''}/${metadata.name ?? ''}`;
  return parseMachinesYaml(machinesText, issues, undefined, { ...metadata, source });
}

// ---------------------------------------------------------------------------------------
// YAML

interface ParsedYaml {
  value: unknown;
  document?: Document.Parsed;
  lineCounter: LineCounter;
  errors: InventoryIssue[];
}

function parseYaml(text: string, toOuterLines?: LineMapper, where = ''): ParsedYaml {
  const lineCounter = new LineCounter();
  // merge keys let an inventory share bmc and capacity blocks between machines
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true });
  const errors = documents.flatMap((doc) => doc.errors).map((err) => yamlIssue(err, lineCounter, toOuterLines, where));
  if (errors.length > 0) return { value: undefined, lineCounter, errors };

  const nonEmpty = documents.filter((doc) => doc.contents !== null);
  const [document] = nonEmpty;
  if (nonEmpty.length > 1) {
    const message = `found ${nonEmpty.length} YAML documents; an inventory is one document, so split the file and validate each ConfigMap on its own`;
    return { value: undefined, lineCounter, errors: [{ path: where, message }] };
  }
  if (document === undefined) {
    return { value: undefined, lineCounter, errors: [{ path: where, message: 'the document is empty; expected "machines:" with a list of machines, or an inventory ConfigMap' }] };
  }
  try {
    return { value: document.toJS(), document, lineCounter, errors: [] };
  } catch (err) {
    const message = `cannot expand the document: ${errorMessage(err)}; use fewer aliases`;
    return { value: undefined, lineCounter, errors: [{ path: where, message }] };
  }
}

function yamlIssue(err: YAMLError, lineCounter: LineCounter, toOuterLines: LineMapper | undefined, where: string): InventoryIssue {
  const inner = lineCounter.linePos(err.pos[0]);
  const { line, col } = toOuterLines?.(inner.line, inner.col) ?? inner;
  const location = `line ${line}, column ${col}`;
  const hint =
    err.code === 'DUPLICATE_KEY' ? '; each key may appear once in a mapping, remove or rename the repeat'
    : err.code === 'TAB_AS_INDENT' ? '; indent with spaces, not tabs'
    : '; check the indentation and quoting around this line';
  return { path: where === '' ? location : `${where}, ${location}`, message: `YAML syntax error: ${err.message.replace(/\.$/, '')}${hint}` };
}

// ---------------------------------------------------------------------------------------
// ConfigMap envelope

/** Checks what makes the controller read the ConfigMap; returns the machines.yaml text. */
function checkConfigMapEnvelope(cm: Record<string, unknown>, issues: Issues): string | undefined {
  const metadata = isPlainObject(cm.metadata) ? cm.metadata : {};
  const labels = isPlainObject(metadata.labels) ? metadata.labels : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') {
    issues.error(['metadata', 'name'], 'missing; name the ConfigMap (the BareMetalAutoscaler refers to it in spec.inventory.name)');
  }

  const label = labels[INVENTORY_LABEL];
  const labelPath = ['metadata', 'labels', INVENTORY_LABEL];
  if (label === undefined) {
    issues.error(labelPath, `missing; the controller only reads ConfigMaps labelled ${INVENTORY_LABEL}: "true" and would ignore this one, so add the label under metadata.labels`);
  } else if (label === true) {
    issues.error(labelPath, 'must be the string "true"; label values are strings, so quote it');
  } else if (label !== 'true') {
    issues.error(labelPath, `is ${JSON.stringify(label)}; the controller only reads ConfigMaps where it is "true"`);
  }

  const data = isPlainObject(cm.data) ? cm.data : {};
  const others = Object.keys(data).filter((key) => key !== INVENTORY_DATA_KEY);
  for (const key of others) {
    issues.warn(['data', key], `ignored; the inventory is read from the ${INVENTORY_DATA_KEY} key only`);
  }
  const text = data[INVENTORY_DATA_KEY];
  const dataPath = ['data', INVENTORY_DATA_KEY];
  if (text === undefined) {
    const found = others.length === 0 ? 'data is empty' : `found ${others.map((key) => JSON.stringify(key)).join(', ')}`;
    issues.error(dataPath, `missing; put the machines document under the key ${INVENTORY_DATA_KEY} (${found})`);
    return undefined;
  }
  if (typeof text !== 'string') {
    issues.error(dataPath, `must be a string holding the machines document; write it as a block: ${INVENTORY_DATA_KEY}: |`);
    return undefined;
  }
  return text;
}

function configMapMetadata(cm: Record<string, unknown>): { name?: string; namespace?: string } {
  const metadata = isPlainObject(cm.metadata) ? cm.metadata : {};
  return {
    ...optional('name', typeof metadata.name === 'string' ? metadata.name : undefined),
    ...optional('namespace', typeof metadata.namespace === 'string' ? metadata.namespace : undefined),
  };
}

function parseMachinesYaml(text: string, issues: Issues, toOuterLines: LineMapper | undefined, about: Omit<ParsedInventory, 'machines'>): InventoryResult {
  const where = toOuterLines === undefined ? `data[${JSON.stringify(INVENTORY_DATA_KEY)}]` : '';
  const suffix = toOuterLines === undefined ? ` of ${INVENTORY_DATA_KEY}` : '';
  const fast = fastYaml(text);
  if (fast !== undefined) {
    // Lines are needed only for an issue: the positional parse runs then, once.
    let locate: ((path: PathSegment[]) => string | undefined) | undefined;
    const lineOf = (path: PathSegment[]): string | undefined => {
      if (locate === undefined) {
        const slow = parseYaml(text, toOuterLines, where);
        locate = lineLocator(slow.document, slow.lineCounter, toOuterLines, suffix);
      }
      return locate(path);
    };
    return validateMachinesDocument(fast.value, issues, about, lineOf);
  }
  const yaml = parseYaml(text, toOuterLines, where);
  if (yaml.errors.length > 0) {
    for (const error of yaml.errors) issues.add(error);
    return issues.result(undefined);
  }
  return validateMachinesDocument(yaml.value, issues, about, lineLocator(yaml.document, yaml.lineCounter, toOuterLines, suffix));
}

// ---------------------------------------------------------------------------------------
// The machines document

const INLINE_CREDENTIAL_FIELDS = new Set(['username', 'user', 'password', 'pass', 'credentials']);
const INLINE_CREDENTIALS_MESSAGE =
  'credentials belong only in the Secret named by bmc.credentialsSecret (keys username and password), never in the inventory; remove this field';

/** Fields that are misplaced rather than misspelt: `address` written beside `bmc`. */
const NESTED_FIELDS: ReadonlyArray<[TObject, string]> = [
  [MachineBmcSchema, 'bmc'],
  [MachineCapacitySchema, 'capacity'],
  [MachinePowerSchema, 'power'],
];

function unknownFieldMessage(schema: TObject, key: string): string | undefined {
  if ((schema === MachineBmcSchema || schema === MachineSchema) && INLINE_CREDENTIAL_FIELDS.has(key)) return INLINE_CREDENTIALS_MESSAGE;
  if (schema !== MachineSchema) return undefined;
  const owner = NESTED_FIELDS.find(([nested]) => key in nested.properties)?.[1];
  return owner === undefined ? undefined : `unknown field ${JSON.stringify(key)}; it belongs under ${owner}: (${owner}.${key})`;
}

function validateMachinesDocument(document: unknown, issues: Issues, about: Omit<ParsedInventory, 'machines'>, lineOf?: (path: PathSegment[]) => string | undefined): InventoryResult {
  if (lineOf !== undefined) issues.lineOf = lineOf;
  for (const issue of checkSchema(InventorySchema, document, { unknownField: unknownFieldMessage })) issues.error(issue.path, issue.message);

  const machines = isPlainObject(document) && Array.isArray(document.machines) ? (document.machines as unknown[]) : [];
  issues.document = document;
  issues.machineLabel = (index) => machineLabel(machines[index]);
  if (isPlainObject(document) && Array.isArray(document.machines) && machines.length === 0) {
    issues.warn(['machines'], 'the list is empty; the autoscaler has no machines to power on');
  }

  const checked = machines.map((machine, index) => (isPlainObject(machine) ? checkMachine(machine, index, issues) : {}));
  checkDuplicateNames(machines, issues);
  checkDuplicateBmcs(checked, issues);

  if (issues.hasErrors()) return issues.result(undefined);
  const parsed = machines.map((machine, index) => toParsedMachine(machine as Machine, index, checked[index] ?? {}));
  return issues.result({ ...about, machines: parsed });
}

function toParsedMachine(machine: Machine, index: number, checked: CheckedMachine): ParsedMachine {
  if (checked.address === undefined || checked.capacity === undefined) throw new Error(`machines[${index}] passed validation without an address or capacity`);
  const { bmc } = machine;
  return {
    index,
    name: machine.name,
    bmc: {
      address: bmc.address,
      parsedAddress: checked.address,
      credentialsSecret: bmc.credentialsSecret,
      insecureSkipVerify: bmc.insecureSkipVerify ?? false,
      ...optional('caBundle', bmc.caBundle),
      ...(bmc.allowInsecureCredentials === true ? { allowInsecureCredentials: true as const } : {}),
    },
    labels: { ...machine.labels },
    taints: (machine.taints ?? []).map((taint) => ({ ...taint })),
    capacity: checked.capacity.milli,
    capacityText: checked.capacity.text,
    ...optional('power', machine.power === undefined ? undefined : { ...machine.power }),
    ...optional('bootSeconds', machine.bootSeconds),
    ...optional('joinTimeoutSeconds', machine.joinTimeoutSeconds),
  };
}

// ---------------------------------------------------------------------------------------
// Issues and paths

function machineLabel(machine: unknown): string | undefined {
  if (!isPlainObject(machine) || typeof machine.name !== 'string' || machine.name === '') return undefined;
  return /^[\x21-\x7e]+$/.test(machine.name) ? machine.name : JSON.stringify(machine.name);
}

interface PendingIssue {
  /** Segments, or a location already in words (a YAML line and column). */
  path: PathSegment[] | string;
  message: string;
}

/** Collects issues as path segments and formats them once machine names are known. */
class Issues implements IssueSink {
  machineLabel: (index: number) => string | undefined = () => undefined;
  /** The machines document, whose key order sorts the issues. */
  document: unknown;
  lineOf: (path: PathSegment[]) => string | undefined = () => undefined;
  private readonly errors: PendingIssue[] = [];
  private readonly pendingWarnings: PendingIssue[] = [];

  error(path: PathSegment[], message: string): void {
    this.errors.push({ path, message });
  }

  add(issue: InventoryIssue): void {
    this.errors.push(issue);
  }

  errorIf(path: PathSegment[], message: string | undefined): void {
    if (message !== undefined) this.error(path, message);
  }

  warn(path: PathSegment[], message: string): void {
    this.pendingWarnings.push({ path, message });
  }

  hasErrors(): boolean {
    return this.errors.length > 0;
  }

  labelSuffix(index: number): string {
    const label = this.machineLabel(index);
    return label === undefined ? '' : ` (${label})`;
  }

  warnings(): InventoryIssue[] {
    return this.format(this.pendingWarnings);
  }

  result(inventory: ParsedInventory | undefined): InventoryResult {
    if (inventory === undefined || this.hasErrors()) return failure(this.format(this.errors), this.warnings());
    return { ok: true, inventory, warnings: this.warnings() };
  }

  /**
   * In the order a reader meets them in the document: issues outside the machines list
   * first, then by the position of the field they are about.
   */
  private format(issues: PendingIssue[]): InventoryIssue[] {
    const inMachines = (path: PendingIssue['path']): number => (typeof path !== 'string' && path[0] === 'machines' ? 1 : 0);
    const byDocumentOrder = (a: PendingIssue, b: PendingIssue): number => {
      const group = inMachines(a.path) - inMachines(b.path);
      if (group !== 0 || typeof a.path === 'string' || typeof b.path === 'string') return group;
      return compareDocumentOrder(this.document, a.path, b.path);
    };
    const render = (path: PendingIssue['path']): string => (typeof path === 'string' ? path : formatPath(path, (index) => this.labelSuffix(index)));
    return [...issues].sort(byDocumentOrder).map((issue) => ({ path: render(issue.path), message: issue.message }));
  }
}

/** Missing fields sort after present ones; the sort is stable, so ties keep the order found. */
function compareDocumentOrder(root: unknown, a: PathSegment[], b: PathSegment[]): number {
  let node = root;
  for (let depth = 0; depth < Math.min(a.length, b.length); depth++) {
    const left = a[depth];
    const right = b[depth];
    if (left === undefined || right === undefined) return 0;
    if (left !== right) return positionIn(node, left) - positionIn(node, right);
    node = isPlainObject(node) ? node[left] : Array.isArray(node) ? (node as unknown[])[Number(left)] : undefined;
  }
  return 0;
}

function positionIn(node: unknown, segment: PathSegment): number {
  if (typeof segment === 'number') return segment;
  const index = isPlainObject(node) ? Object.keys(node).indexOf(segment) : -1;
  return index === -1 ? Number.MAX_SAFE_INTEGER : index;
}

function failure(errors: InventoryIssue[], warnings: InventoryIssue[]): InventoryResult {
  return { ok: false, errors, warnings };
}

function formatPath(path: PathSegment[], labelSuffix: (index: number) => string): string {
  let out = '';
  path.forEach((segment, position) => {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
      if (position === 1 && path[0] === 'machines') out += labelSuffix(segment);
    } else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else {
      out += `[${JSON.stringify(segment)}]`;
    }
  });
  return out;
}

/** `{ key: value }` when value is defined, `{}` otherwise: exactOptionalPropertyTypes forbids explicit undefined. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
