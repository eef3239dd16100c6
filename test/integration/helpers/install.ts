import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { binDir, kubeconfigPath, kubectl, repoRoot } from './cluster.js';

/**
 * What the install tests share: running helm and other tools, the rendered install from
 * config/default and from the chart, and JSON schemas made from the API server's own
 * OpenAPI document (for kubeconform, offline).
 */

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string; input?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? repoRoot, env: { ...process.env, KUBECONFIG: kubeconfigPath, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export const helm = (args: string[], timeoutMs?: number): Promise<ToolResult> => run(join(binDir, 'helm'), args, timeoutMs ? { timeoutMs } : {});

export const CHART = join(repoRoot, 'helm', 'bamel-autoscaler');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && typeof o.kind === 'string');
}

export const objectKey = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export async function renderKustomize(): Promise<string> {
  const r = await kubectl(['kustomize', join(repoRoot, 'config', 'default')]);
  if (r.code !== 0) throw new Error(`kubectl kustomize config/default: ${r.stderr}`);
  return r.stdout;
}

export async function renderChart(extra: string[] = []): Promise<string> {
  const r = await helm(['template', 'bamel', CHART, '--namespace', 'bamel-system', '--include-crds', ...extra]);
  if (r.code !== 0) throw new Error(`helm template: ${r.stderr}`);
  return r.stdout;
}

interface SwaggerSchema {
  $ref?: string;
  type?: string;
  format?: string;
  properties?: Record<string, SwaggerSchema>;
  additionalProperties?: SwaggerSchema | boolean;
  items?: SwaggerSchema;
  allOf?: SwaggerSchema[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
  [k: string]: unknown;
}

/**
 * One JSON schema per kind from the API server's /openapi/v2, named as kubeconform's
 * template `{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json` asks (core
 * kinds: group "v1"). Strict: objects with properties refuse unknown ones, as the API
 * server's field validation does; int-or-string accepts both. Each file carries only the
 * definitions its kind reaches.
 */
export async function writeOpenApiSchemas(dir: string): Promise<number> {
  const r = await kubectl(['get', '--raw', '/openapi/v2'], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`reading /openapi/v2: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { definitions: Record<string, SwaggerSchema> };
  const strict = (s: SwaggerSchema): SwaggerSchema => {
    const out: SwaggerSchema = { ...s };
    if (out.format === 'int-or-string') {
      delete out.type;
      delete out.format;
      out.oneOf = [{ type: 'string' }, { type: 'integer' }];
    }
    if (out.properties) {
      out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, strict(v)]));
      if (out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
    }
    if (out.items) out.items = strict(out.items);
    if (typeof out.additionalProperties === 'object') out.additionalProperties = strict(out.additionalProperties);
    if (out.allOf) out.allOf = out.allOf.map(strict);
    return out;
  };
  const defs = Object.fromEntries(Object.entries(doc.definitions).map(([k, v]) => [k, strict(v)]));
  const reach = (name: string, seen: Set<string>): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') reach(x.replace('#/definitions/', ''), seen);
          else walk(x);
        }
      }
    };
    walk(defs[name]);
  };
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (const [name, def] of Object.entries(defs)) {
    for (const gvk of def['x-kubernetes-group-version-kind'] ?? []) {
      const seen = new Set<string>();
      reach(name, seen);
      const group = gvk.group === '' ? gvk.version : gvk.group;
      const file = join(dir, `${gvk.kind.toLowerCase()}_${group}_${gvk.version}.json`);
      writeFileSync(file, JSON.stringify({ ...def, definitions: Object.fromEntries([...seen].map((d) => [d, defs[d]])) }));
      n++;
    }
  }
  return n;
}
