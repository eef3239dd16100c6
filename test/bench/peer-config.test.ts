import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseInventoryText, type Inventory } from '../../api/inventory.js';
import {
  clusterAutoscalerProviderConfig,
  clusterAutoscalerTemplates,
  karpenterInstanceTypes,
  karpenterObjects,
  machineShapes,
} from '../../bench/helpers/peer-config.js';

/** The sample inventory's machines, as the document names them. */
function sampleMachines(): Inventory['machines'] {
  const cm = parse(readFileSync(new URL('../../config/samples/inventory.yaml', import.meta.url), 'utf8')) as { data: { 'machines.yaml': string } };
  const text = cm.data['machines.yaml'];
  const result = parseInventoryText(text);
  if (!result.ok) throw new Error('the sample inventory is not valid');
  return (parse(text) as Inventory).machines;
}

t.test('machines with the same capacity, labels and taints make one shape; the host name does not count', async (t) => {
  const m = (cpu: string, extra: Partial<Inventory['machines'][number]> = {}): Pick<Inventory['machines'][number], 'capacity' | 'labels' | 'taints'> => ({
    capacity: { cpu, memory: '64Gi' },
    labels: { rack: 'a', 'kubernetes.io/hostname': `h${Math.random()}` },
    ...extra,
  });
  const shapes = machineShapes([
    m('32'),
    m('16'),
    m('16'),
    m('16', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }),
    m('16', { labels: { rack: 'b' } }),
  ]);
  t.same(shapes.map((s) => [s.name, s.count, s.taints.length]), [
    ['c16-m64gi', 2, 0],
    ['c16-m64gi-1', 1, 0],
    ['c16-m64gi-t', 1, 1],
    ['c32-m64gi', 1, 0],
  ]);
  t.notOk(shapes.some((s) => 'kubernetes.io/hostname' in s.labels), 'no per-machine label in a shape');
});

t.test("Karpenter: one instance type and one NodePool per shape, limited to the shape's machines", async (t) => {
  const shapes = machineShapes(sampleMachines());
  const types = karpenterInstanceTypes(shapes) as { name: string; resources: Record<string, string>; offerings: { Price: number; Requirements: { key: string; values: string[] }[] }[] }[];
  t.same(types.map((x) => x.name), shapes.map((s) => s.name));
  const gpu = types.find((x) => x.resources['nvidia.com/gpu'] === '2');
  t.ok(gpu, 'extended resources are part of the instance type');
  const zone = gpu?.offerings[0]?.Requirements.find((r) => r.key === 'topology.kubernetes.io/zone');
  t.same(zone?.values, ['b'], "the machines' zone label is the offering's zone");
  const objects = karpenterObjects(shapes, { prefix: 'p', disruption: { consolidationPolicy: 'WhenEmpty', consolidateAfter: '60s' } });
  t.equal(objects[0]?.kind, 'KWOKNodeClass');
  const pools = objects.slice(1) as { spec: { weight: number; limits: { cpu: string }; template: { spec: { taints?: unknown[]; requirements: { key: string; values: string[] }[] } } } }[];
  t.equal(pools.length, shapes.length);
  for (const [i, p] of pools.entries()) {
    const s = shapes[i];
    if (!s) continue;
    t.equal(p.spec.limits.cpu, String(Number(s.capacity.cpu) * s.count), `${s.name}: cpu limit is its machines' cpu`);
    t.same(p.spec.template.spec.requirements.find((r) => r.key === 'node.kubernetes.io/instance-type')?.values, [s.name]);
    t.equal(p.spec.template.spec.taints?.length ?? 0, s.taints.length);
  }
  t.ok(pools.every((p, i) => i === 0 || p.spec.weight < (pools[i - 1]?.spec.weight ?? 0)), 'smaller shapes weigh more');
});

t.test("Cluster Autoscaler: one template Node per shape, max size its machine count", async (t) => {
  const shapes = machineShapes(sampleMachines());
  const list = clusterAutoscalerTemplates(shapes, 'p') as { kind: string; items: { metadata: { annotations: Record<string, string>; labels: Record<string, string> }; spec: { taints?: unknown[] }; status: { capacity: Record<string, string> } }[] };
  t.equal(list.kind, 'List');
  t.same(list.items.map((n) => n.metadata.annotations['cluster-autoscaler.kwok.nodegroup/max-count']), shapes.map((s) => String(s.count)));
  t.same(list.items.map((n) => n.metadata.labels['kwok-nodegroup']), shapes.map((s) => `p-${s.name}`));
  t.same(list.items.map((n) => n.spec.taints?.length ?? 0), shapes.map((s) => s.taints.length));
  const config = parse(clusterAutoscalerProviderConfig('tpl')) as Record<string, Record<string, unknown>>;
  t.same(config.configmap, { name: 'tpl' });
  t.same(config.nodegroups, { fromNodeLabelKey: 'kwok-nodegroup' });
  t.equal(config.readNodesFrom, 'configmap');
});
