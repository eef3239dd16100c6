import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { binDir, ensureNamespace, kubectl, localCluster, repoRoot } from './helpers/cluster.js';
import { CHART, helm, objectKey, parseObjects, renderChart, renderKustomize, run, writeOpenApiSchemas, type KubeObject } from './helpers/install.js';

/**
 * The install as files: the chart is lint-clean and renders the same objects as
 * config/default; both are accepted by the API server (dry run) and by its own OpenAPI
 * schema (kubeconform, offline); the RBAC grants what the issue says and no more.
 */

const dir = mkdtempSync(join(tmpdir(), 'bamel-manifests-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('helm lint is clean, with the defaults and with every switch turned', async (t) => {
  for (const set of [[], ['--set', 'agent.enabled=false,webhook.enabled=false,extender.enabled=false,manager.replicas=1,manager.leaderElect=false'], ['--set', 'certificates.mode=cert-manager,metrics.serviceMonitor.enabled=true,grafana.dashboard.enabled=true', '--set', 'inventoryNamespaces={bamel-system,racks}']]) {
    const r = await helm(['lint', '--strict', CHART, ...set]);
    t.equal(r.code, 0, `helm lint ${set.join(' ')}: ${r.stdout}${r.stderr}`);
    t.notMatch(r.stdout, /\[(WARNING|ERROR)\]/, `no warning with ${set.join(' ') || 'the defaults'}`);
  }
  const bad = await helm(['lint', '--strict', CHART, '--set', 'certificates.mode=manual']);
  t.not(bad.code, 0, 'values.schema.json refuses a certificates.mode it does not know');
});

t.test('helm template renders the objects of kubectl kustomize config/default', async (t) => {
  const fromKustomize = parseObjects(await renderKustomize());
  const fromChart = parseObjects(await renderChart());
  // helm install --create-namespace makes the namespace; the chart does not own it.
  const kust = new Map(fromKustomize.filter((o) => o.kind !== 'Namespace').map((o) => [objectKey(o), o]));
  const chart = new Map(fromChart.map((o) => [objectKey(o), o]));
  t.same([...chart.keys()].sort(), [...kust.keys()].sort(), 'the same objects');
  for (const [key, o] of kust) t.same(chart.get(key), o, `${key} is the same`);
  t.ok(fromKustomize.some((o) => o.kind === 'Namespace' && o.metadata.name === 'bamel-system'), 'config/default makes the namespace');
  writeFileSync(join(dir, 'kustomize.yaml'), await renderKustomize());
  writeFileSync(join(dir, 'chart.yaml'), await renderChart());
});

t.test('no wildcard in any rule; pods are evicted, never deleted; Secrets only through a Role', async (t) => {
  const objects = parseObjects(await renderKustomize());
  type Rule = { verbs: string[]; resources?: string[]; apiGroups?: string[] };
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    for (const rule of (o as KubeObject & { rules: Rule[] }).rules) {
      t.notOk([...rule.verbs, ...(rule.resources ?? []), ...(rule.apiGroups ?? [])].includes('*'), `${objectKey(o)}: no *`);
    }
  }
  const clusterRules = objects.filter((x) => x.kind === 'ClusterRole').flatMap((o) => (o as KubeObject & { rules: Rule[] }).rules);
  t.notOk(clusterRules.some((r) => r.resources?.includes('secrets')), 'no ClusterRole names Secrets');
  t.notOk(clusterRules.some((r) => r.resources?.includes('pods') && r.verbs.includes('delete')), 'no ClusterRole deletes pods');
});

t.test('the API server accepts both (apply --dry-run=server) and its OpenAPI schema does too (kubeconform, offline)', async (t) => {
  await localCluster();
  // Namespaced objects need their namespace to exist even in a dry run.
  const created = await ensureNamespace('bamel-system');
  t.teardown(async () => {
    if (created) await kubectl(['delete', 'namespace', 'bamel-system', '--wait=false']);
  });
  for (const file of ['kustomize.yaml', 'chart.yaml']) {
    // --force-conflicts: the CRDs may be there already, applied by other tests or helm.
    const r = await kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--field-manager=bamel-test', '-f', join(dir, file)], { timeoutMs: 120_000 });
    t.equal(r.code, 0, `${file}: kubectl apply --dry-run=server\n${r.stderr}`);
  }
  const schemas = join(dir, 'schemas');
  const n = await writeOpenApiSchemas(schemas);
  t.ok(n > 50, `${n} schemas from /openapi/v2`);
  for (const file of ['kustomize.yaml', 'chart.yaml']) {
    const r = await run(join(binDir, 'kubeconform'), ['-strict', '-summary', '-schema-location', join(schemas, '{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json'), join(dir, file)]);
    t.equal(r.code, 0, `${file}: kubeconform\n${r.stdout}${r.stderr}`);
    t.match(r.stdout, /Invalid: 0, Errors: 0, Skipped: 0/, `${file}: every object checked`);
  }
  // The schema check is not vacuous: an unknown field and a wrong type are found.
  const broken = (await renderKustomize()).replace('terminationGracePeriodSeconds: 30', 'terminationGracePeriodSeconds: thirty\n      nodeSelectr: {}');
  writeFileSync(join(dir, 'broken.yaml'), broken);
  const r = await run(join(binDir, 'kubeconform'), ['-strict', '-schema-location', join(schemas, '{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json'), join(dir, 'broken.yaml')]);
  t.not(r.code, 0, 'a broken Deployment is refused');
  t.match(r.stdout, /bamel-manager/, 'naming it');
  // kubectl apply -k config/samples/ works (the CRDs installed, the namespace there).
  await kubectl(['apply', '--server-side', '-f', join(repoRoot, 'config/crd/bases')]);
  await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/baremetalautoscalers.autoscaling.bamel.io']);
  const samples = await kubectl(['apply', '--dry-run=server', '-k', join(repoRoot, 'config/samples')]);
  t.equal(samples.code, 0, `kubectl apply -k config/samples/ (dry run)\n${samples.stderr}`);
});

t.test('kubectl auth can-i: what the ServiceAccounts may and may not do', async (t) => {
  await localCluster();
  const existed = !(await ensureNamespace('bamel-system'));
  const applied = await kubectl(['apply', '--server-side', '--field-manager=bamel-test', '-k', join(repoRoot, 'config/rbac')]);
  t.equal(applied.code, 0, `applied config/rbac\n${applied.stderr}`);
  t.teardown(async () => {
    await kubectl(['delete', '--ignore-not-found', '-k', join(repoRoot, 'config/rbac')]);
    if (!existed) await kubectl(['delete', 'namespace', 'bamel-system', '--wait=false']);
  });
  const manager = 'system:serviceaccount:bamel-system:bamel-manager';
  const agent = 'system:serviceaccount:bamel-system:bamel-agent';
  const can = async (as: string, args: string[]): Promise<boolean> => {
    const r = await kubectl(['auth', 'can-i', ...args, `--as=${as}`]);
    return r.stdout.trim() === 'yes';
  };
  const facts: [string, string[], boolean][] = [
    [manager, ['list', 'secrets', '--all-namespaces'], false],
    [manager, ['list', 'secrets', '-n', 'kube-system'], false],
    [manager, ['get', 'secrets', '-n', 'bamel-system'], true],
    [manager, ['delete', 'pods', '--all-namespaces'], false],
    [manager, ['*', '*'], false],
    [manager, ['create', 'pods', '--subresource=eviction', '-n', 'default'], true],
    [manager, ['patch', 'pods', '-n', 'default'], true],
    [manager, ['delete', 'nodes'], true],
    [manager, ['update', 'baremetalautoscalers.autoscaling.bamel.io', '--subresource=status'], true],
    [manager, ['update', 'baremetalautoscalers.autoscaling.bamel.io'], false],
    [manager, ['update', 'leases.coordination.k8s.io/bamel-manager', '-n', 'bamel-system'], true],
    [manager, ['update', 'leases.coordination.k8s.io/other', '-n', 'bamel-system'], false],
    [manager, ['create', 'trafficreports.autoscaling.bamel.io'], false],
    [agent, ['get', 'secrets', '-n', 'bamel-system'], false],
    [agent, ['list', 'secrets', '--all-namespaces'], false],
    [agent, ['patch', 'trafficreports.autoscaling.bamel.io'], true],
    [agent, ['update', 'baremetalautoscalers.autoscaling.bamel.io'], false],
    [agent, ['patch', 'nodes'], false],
  ];
  for (const [as, args, want] of facts) {
    t.equal(await can(as, args), want, `${as.split(':').pop()} ${want ? 'can' : 'cannot'} ${args.join(' ')}`);
  }
});
