import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Inventory } from '../../api/inventory.js';
import { clusterAutoscalerTemplates, karpenterObjects, machineShapes } from '../../bench/helpers/peer-config.js';
import { kubectl, localCluster, repoRoot, uniqueName } from './helpers/cluster.js';

// What bench/peers.bench.ts gives the peers for an inventory is what they accept: the
// NodePools and KWOKNodeClass against Karpenter's own CRDs (pinned in hack/versions.env,
// fetched from its module) on the real API server, and Cluster Autoscaler's template Nodes
// as Nodes. Everything is created with dryRun=All.

const execFileP = promisify(execFile);
const CRDS = ['nodepools.karpenter.sh', 'nodeclaims.karpenter.sh', 'kwoknodeclasses.karpenter.kwok.sh'];

function sampleMachines(): Inventory['machines'] {
  const cm = parse(readFileSync(join(repoRoot, 'config/samples/inventory.yaml'), 'utf8')) as { data: { 'machines.yaml': string } };
  return (parse(cm.data['machines.yaml']) as Inventory).machines;
}

/** The API server's refusal ("422 ..."), or '' when it accepts the object. */
async function refusal(create: () => Promise<unknown>): Promise<string> {
  try {
    await create();
    return '';
  } catch (err) {
    if (!(err instanceof k8s.ApiException)) throw err;
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    try {
      return `${err.code} ${(JSON.parse(body) as { message?: string }).message ?? body}`;
    } catch {
      return `${err.code} ${body}`;
    }
  }
}

t.test("the peers' configuration from the sample inventory is what they accept", async (t) => {
  const { custom, core } = await localCluster();
  const { stdout } = await execFileP(join(repoRoot, 'hack/build-peers.sh'), ['crds'], { cwd: repoRoot, timeout: 600_000 });
  const crdDir = stdout.trim().split('\n').at(-1) ?? '';
  const before = await kubectl(['get', 'crd', ...CRDS, '--ignore-not-found', '-o', 'name']);
  const existed = before.stdout.trim() !== '';
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crdDir]);
  t.equal(applied.code, 0, `Karpenter's CRDs apply: ${applied.stderr}`);
  if (!existed) {
    t.teardown(async () => {
      await kubectl(['delete', 'crd', ...CRDS, 'capacitybuffers.autoscaling.x-k8s.io', 'nodeoverlays.karpenter.sh', '--ignore-not-found', '--wait=false']);
    });
  }
  const est = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...CRDS.map((c) => `crd/${c}`)]);
  t.equal(est.code, 0, `Karpenter's CRDs established: ${est.stderr}`);

  const shapes = machineShapes(sampleMachines());
  t.ok(shapes.length >= 3, 'the sample inventory has several shapes');
  const prefix = uniqueName('peers');
  const objects = karpenterObjects(shapes, { prefix, labels: { 'bench.bamel.io/run': prefix }, disruption: { consolidationPolicy: 'WhenEmpty', consolidateAfter: '60s' } });
  const create = (obj: Record<string, unknown>) => (): Promise<unknown> => {
    const [group, version] = String(obj.apiVersion).split('/') as [string, string];
    const plural = obj.kind === 'NodePool' ? 'nodepools' : 'kwoknodeclasses';
    return custom.createClusterCustomObject({ group, version, plural, body: obj, dryRun: 'All' });
  };
  for (const obj of objects) {
    const name = (obj.metadata as { name: string }).name;
    t.equal(await refusal(create(obj)), '', `${String(obj.kind)} ${name} accepted by Karpenter's CRD`);
  }

  // The CRD does check: a NodePool that breaks its rules is refused.
  const pool = structuredClone(objects[1] as Record<string, Record<string, unknown>>);
  (pool.spec as { weight: number }).weight = 0;
  t.match(await refusal(create(pool)), /^422 .*weight/, 'a NodePool of weight 0 is refused');
  const restricted = structuredClone(objects[1] as { spec: { template: { metadata: { labels: Record<string, string> } } } });
  restricted.spec.template.metadata.labels['karpenter.sh/foo'] = 'x';
  t.match(await refusal(create(restricted)), /^422 /, 'a NodePool with a label in karpenter.sh is refused');

  // Cluster Autoscaler's templates are Nodes the API server takes as they are.
  const templates = clusterAutoscalerTemplates(shapes, prefix) as { items: k8s.V1Node[] };
  t.equal(templates.items.length, shapes.length);
  for (const node of templates.items) {
    t.equal(await refusal(() => core.createNode({ body: node, dryRun: 'All' })), '', `template Node ${node.metadata?.name ?? ''} accepted`);
  }
});
