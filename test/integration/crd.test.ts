import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { toJsonSchema } from '../../api/crd.js';
import { BareMetalAutoscalerSpecSchema, GROUP, PLURAL, VERSION } from '../../api/v1alpha1/baremetalautoscaler.js';
import { kubectl, localCluster, repoRoot, uniqueName, waitFor } from './helpers/cluster.js';

type Json = Record<string, unknown>;

const crdFile = join(repoRoot, 'config/crd/bases/autoscaling.bamel.io_baremetalautoscalers.yaml');

async function installCrd(): Promise<void> {
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crdFile]);
  if (applied.code !== 0) throw new Error(`kubectl apply of the CRD failed: ${applied.stderr}`);
  const wait = await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', `crd/${PLURAL}.${GROUP}`]);
  if (wait.code !== 0) throw new Error(`CRD not Established: ${wait.stderr}`);
}

function baseSpec(): Json {
  return { inventory: { namespace: 'bamel-system', name: 'machines' }, minMachines: 0, maxMachines: 10 };
}

/** Creates a BareMetalAutoscaler with dryRun=All; returns the API server's refusal message, or '' when accepted. */
async function tryCreate(spec: Json, name = uniqueName('bma')): Promise<string> {
  const { custom } = await localCluster();
  try {
    await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      dryRun: 'All',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec },
    });
    return '';
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      // The body is a Status; its message is what kubectl shows.
      let message = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
      try {
        message = (JSON.parse(message) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the raw body
      }
      return `${err.code} ${message}`;
    }
    throw err;
  }
}

function setPath(obj: Json, path: string[], value: unknown): Json {
  const copy = structuredClone(obj);
  let cur: Json = copy;
  for (const k of path.slice(0, -1)) {
    cur[k] ??= {};
    cur = cur[k] as Json;
  }
  cur[path.at(-1) as string] = value;
  return copy;
}

/** Every numeric bound of the spec schema, as [path, minimum?, maximum?, integer]. */
function numericBounds(schema: Json, path: string[] = []): { path: string[]; min?: number; max?: number; integer: boolean }[] {
  const out: { path: string[]; min?: number; max?: number; integer: boolean }[] = [];
  if ((schema.type === 'integer' || schema.type === 'number') && (schema.minimum !== undefined || schema.maximum !== undefined)) {
    out.push({
      path,
      integer: schema.type === 'integer',
      ...(typeof schema.minimum === 'number' ? { min: schema.minimum } : {}),
      ...(typeof schema.maximum === 'number' ? { max: schema.maximum } : {}),
    });
  }
  const props = schema.properties as Record<string, Json> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) out.push(...numericBounds(v, [...path, k]));
  return out;
}

t.before(async () => {
  await installCrd();
});

t.test('kubectl explain shows the descriptions', async (t) => {
  const out = await waitFor('explain bma.spec.scaleDown', 30_000, async () => {
    const r = await kubectl(['explain', 'bma.spec.scaleDown']);
    return r.code === 0 && r.stdout.includes('drainTimeoutSeconds') ? r.stdout : false;
  });
  t.match(out, /When idle machines are drained and powered off/, 'the object description');
  t.match(out, /utilizationThreshold\s+<number>/, 'fields with their types');
  t.match(out, /evictions refused by PodDisruptionBudgets are\s+retried/, 'a field description');
  const top = await kubectl(['explain', 'baremetalautoscaler']);
  t.match(top.stdout, /powers idle bare-metal machines off/, 'the kind description');
});

t.test('every sample is accepted', async (t) => {
  const dir = join(repoRoot, 'config/samples');
  const files = readdirSync(dir).filter((f) => f.startsWith('autoscaling.bamel.io_'));
  t.ok(files.length >= 2, 'there are samples');
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const obj = doc.toJS() as { spec: Json };
      t.equal(await tryCreate(obj.spec), '', `${f} accepted`);
    }
  }
});

t.test('defaults are filled in by the API server', async (t) => {
  const { custom } = await localCluster();
  const name = uniqueName('bma-defaults');
  const created = (await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    dryRun: 'All',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec: { inventory: { namespace: 'x', name: 'y' } } },
  })) as { spec: Json };
  t.same(created.spec.scaleUp, { cooldownSeconds: 60, maxConcurrentPowerOns: 2, joinTimeoutSeconds: 600, predictive: { enabled: false, lookaheadSeconds: 120 } });
  t.same(created.spec.scoring, { usefulWeight: 1, nonUsefulWeight: 0.25 });
  t.equal(created.spec.deletionPolicy, 'Retain');
  t.equal(created.spec.maxMachines, 10);
  t.equal(created.spec.dryRun, false);
  t.same(created.spec.machineSelector, {});
  t.equal((created.spec.scaleDown as Json).utilizationThreshold, 0.5);
  t.equal((created.spec.scaleDown as Json).maxPowerCyclesPerDay, 6);
  t.same((created.spec.scaleDown as Json).breakEven, { enabled: true, floorSeconds: 60 });
  t.notOk('minOffSeconds' in (created.spec.scaleDown as Json), 'minOffSeconds unset: each machine\'s break-even time');
  t.equal(((created.spec.pressure as Json).cpu as Json).level, 1, 'level signal off by default');
});

t.test('each numeric bound is enforced by the API server', async (t) => {
  const bounds = numericBounds(toJsonSchema(BareMetalAutoscalerSpecSchema));
  t.ok(bounds.length >= 15, `found ${bounds.length} bounded fields`);
  for (const b of bounds) {
    const field = `spec.${b.path.join('.')}`;
    if (b.min !== undefined) {
      const msg = await tryCreate(setPath(baseSpec(), b.path, b.min - 1));
      t.match(msg, new RegExp(`${field.replace(/\./g, '\\.')}: Invalid value: .*should be greater than or equal to ${b.min}`), `${field} < ${b.min} refused`);
    }
    if (b.max !== undefined) {
      const msg = await tryCreate(setPath(baseSpec(), b.path, b.max + 1));
      t.match(msg, new RegExp(`${field.replace(/\./g, '\\.')}: Invalid value: .*should be less than or equal to ${b.max}`), `${field} > ${b.max} refused`);
    }
    if (b.integer) {
      const msg = await tryCreate(setPath(baseSpec(), b.path, (b.min ?? 0) + 0.5));
      t.match(msg, /Invalid value|must be of type integer/, `${field} must be an integer`);
    }
  }
});

t.test('enums, patterns and required fields are enforced', async (t) => {
  t.match(await tryCreate({ ...baseSpec(), deletionPolicy: 'Delete' }), /spec\.deletionPolicy: Unsupported value: "Delete": supported values: "Retain", "PowerOff"/);
  t.match(await tryCreate({ minMachines: 1 }), /an inventory is required: set spec\.inventory, or list at least one in spec\.inventories/);
  t.match(await tryCreate({ minMachines: 1, inventories: [] }), /an inventory is required/);
  t.equal(await tryCreate({ inventories: [{ namespace: 'bamel-system', name: 'machines' }] }), '', 'spec.inventories alone is enough');
  t.match(
    await tryCreate({ ...baseSpec(), inventories: [{ namespace: 'a', name: 'x' }, { namespace: 'a', name: 'x' }] }),
    /spec\.inventories\[1\]: Duplicate value/,
  );
  t.match(
    await tryCreate({ ...baseSpec(), inventories: Array.from({ length: 65 }, (_, i) => ({ namespace: 'a', name: `x${i}` })) }),
    /spec\.inventories: Too many: 65: must have at most 64 items/,
  );
  t.match(await tryCreate({ ...baseSpec(), inventory: { namespace: 'Bad_NS', name: 'machines' } }), /spec\.inventory\.namespace: Invalid value: "Bad_NS"/);
  t.match(
    await tryCreate({ ...baseSpec(), machineSelector: { matchExpressions: [{ key: 'rack', operator: 'Near', values: ['a'] }] } }),
    /spec\.machineSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Near"/,
  );
});

t.test('each CEL rule is enforced with its message', async (t) => {
  const cases: [string, Json, string][] = [
    ['minMachines <= maxMachines', { ...baseSpec(), minMachines: 5, maxMachines: 2 }, 'minMachines must be less than or equal to maxMachines'],
    [
      'maxConcurrentPowerOns <= maxMachines',
      { ...baseSpec(), maxMachines: 2, scaleUp: { maxConcurrentPowerOns: 3 } },
      'scaleUp.maxConcurrentPowerOns must not exceed maxMachines',
    ],
    [
      'usefulWeight >= nonUsefulWeight',
      { ...baseSpec(), scoring: { usefulWeight: 0.5, nonUsefulWeight: 2 } },
      'usefulWeight must be at least nonUsefulWeight',
    ],
    ['usefulWeight > 0', { ...baseSpec(), scoring: { usefulWeight: 0, nonUsefulWeight: 0 } }, 'usefulWeight must be greater than 0'],
    [
      'utilizationThreshold > 0 when enabled',
      { ...baseSpec(), scaleDown: { enabled: true, utilizationThreshold: 0 } },
      'utilizationThreshold must be greater than 0 when scale-down is enabled',
    ],
    ['pressure level > 0', { ...baseSpec(), pressure: { memory: { level: 0 } } }, 'level must be greater than 0'],
    [
      'lookaheadSeconds < unneededSeconds while pre-warming',
      { ...baseSpec(), scaleUp: { predictive: { enabled: true, lookaheadSeconds: 600 } }, scaleDown: { unneededSeconds: 300 } },
      'scaleUp.predictive.lookaheadSeconds must be below scaleDown.unneededSeconds',
    ],
    [
      'selector values for In',
      { ...baseSpec(), machineSelector: { matchExpressions: [{ key: 'rack', operator: 'In' }] } },
      'values must be non-empty for In and NotIn',
    ],
    [
      'no selector values for Exists',
      { ...baseSpec(), machineSelector: { matchExpressions: [{ key: 'rack', operator: 'Exists', values: ['a'] }] } },
      'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
    ],
  ];
  for (const [what, spec, message] of cases) {
    t.match(await tryCreate(spec), message, what);
  }
  t.equal(await tryCreate({ ...baseSpec(), scaleDown: { enabled: false, utilizationThreshold: 0 } }), '', 'utilizationThreshold 0 is fine when scale-down is off');
  t.equal(await tryCreate({ ...baseSpec(), scaleUp: { predictive: { enabled: false, lookaheadSeconds: 600 } }, scaleDown: { unneededSeconds: 300 } }), '', 'any lookahead while pre-warming is off');
});

t.test('the inventory reference cannot change while the autoscaler actuates', async (t) => {
  const { custom } = await localCluster();
  const name = uniqueName('bma-transition');
  await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec: baseSpec() },
  });
  t.teardown(() => custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name }).catch(() => undefined));
  const patch = (spec: Json) =>
    kubectl(['patch', 'bma', name, '--type', 'merge', '-p', JSON.stringify({ spec })]);
  const refused = await patch({ inventory: { namespace: 'bamel-system', name: 'other' } });
  t.not(refused.code, 0, 'changing the inventory is refused');
  t.match(refused.stderr, /inventory cannot be changed while the autoscaler actuates/);
  t.equal((await patch({ dryRun: true })).code, 0, 'switching to dryRun is allowed');
  t.equal((await patch({ inventory: { namespace: 'bamel-system', name: 'other' } })).code, 0, 'then the inventory may change');
});

t.test('inventories may be added while the autoscaler actuates, not removed', async (t) => {
  const { custom } = await localCluster();
  const name = uniqueName('bma-inventories');
  const two = [
    { namespace: 'rack-a', name: 'machines' },
    { namespace: 'rack-b', name: 'machines' },
  ];
  await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec: { ...baseSpec(), inventories: two } },
  });
  t.teardown(() => custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name }).catch(() => undefined));
  const patch = (spec: Json) => kubectl(['patch', 'bma', name, '--type', 'merge', '-p', JSON.stringify({ spec })]);
  t.equal((await patch({ inventories: [...two, { namespace: 'rack-c', name: 'machines' }] })).code, 0, 'adding one is allowed');
  const removed = await patch({ inventories: two.slice(0, 1) });
  t.not(removed.code, 0, 'removing one is refused');
  t.match(removed.stderr, /inventory cannot be changed while the autoscaler actuates \(an inventory may be added to spec\.inventories, none removed\)/);
  const dropped = await patch({ inventories: null });
  t.not(dropped.code, 0, 'dropping the list is refused');
  const moved = await patch({ inventory: { namespace: 'rack-d', name: 'machines' } });
  t.not(moved.code, 0, 'spec.inventory still cannot change');
  t.equal((await patch({ dryRun: true })).code, 0);
  t.equal((await patch({ inventories: two.slice(1) })).code, 0, 'in dry run, one may be removed');
});

t.test('printer columns', async (t) => {
  const { custom } = await localCluster();
  const name = uniqueName('bma-columns');
  await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec: { ...baseSpec(), minMachines: 1, maxMachines: 7 } },
  });
  t.teardown(() => custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name }).catch(() => undefined));
  const r = await kubectl(['get', 'bma', name]);
  t.equal(r.code, 0);
  const [header, row] = r.stdout.trim().split('\n');
  t.match(header, /^NAME\s+MIN\s+MAX\s+READY\s+PENDING\s+LAST SCALE\s+AGE$/);
  t.match(row, new RegExp(`^${name}\\s+1\\s+7\\s+`));
});
