import t from 'tap';
import { parseQuantity } from '../../api/quantity.js';
import { addResources, compareResourceNames, formatResource, isScheduledResource, maxResources } from '../../scheduling/resources.js';

t.test('amounts print as a user writes them, and exactly', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['cpu', '500m', '500m'],
    ['cpu', '2', '2'],
    ['cpu', '0', '0'],
    ['memory', '64Gi', '64Gi'],
    ['memory', '28.5Gi', '28.5Gi'],
    ['memory', '1.25Mi', '1.25Mi'],
    ['memory', '100M', '100M'],
    ['memory', '1500k', '1500k'],
    ['memory', '0', '0'],
    ['memory', '1023', '1023'],
    ['memory', '34159738368', '34159738368'],
    ['ephemeral-storage', '1Ti', '1Ti'],
    ['hugepages-2Mi', '512Mi', '512Mi'],
    ['pods', '110', '110'],
    ['nvidia.com/gpu', '4', '4'],
  ];
  for (const [resource, quantity, shown] of cases) t.equal(formatResource(resource, parseQuantity(quantity)), shown, `${resource} ${quantity}`);
  t.equal(formatResource('memory', 64n * (1n << 30n) * 1000n - 1n), '68719476735.999', 'one milli-unit short of 64Gi is not 64Gi');
  t.equal(formatResource('cpu', 1499n), '1499m');
  t.equal(formatResource('memory', -(1n << 30n) * 1000n), '-1Gi');
});

t.test('the resources kube-scheduler fits', async (t) => {
  for (const name of ['cpu', 'memory', 'ephemeral-storage', 'pods', 'hugepages-1Gi', 'nvidia.com/gpu', 'example.com/fpga', 'kubernetes.io/batch']) {
    t.equal(isScheduledResource(name), true, name);
  }
  for (const name of ['gpu', 'storage', '']) t.equal(isScheduledResource(name), false, JSON.stringify(name));
});

t.test('resource lists add and take maxima per resource', async (t) => {
  const into = new Map([['cpu', 1000n], ['memory', 5n]]);
  addResources(into, new Map([['cpu', 500n], ['nvidia.com/gpu', 1000n]]));
  t.same(Object.fromEntries(into), { cpu: 1500n, memory: 5n, 'nvidia.com/gpu': 1000n });
  maxResources(into, new Map([['cpu', 1000n], ['memory', 7n], ['pods', 0n]]));
  t.same(Object.fromEntries(into), { cpu: 1500n, memory: 7n, 'nvidia.com/gpu': 1000n, pods: 0n }, 'a zero still records the resource');
});

t.test('messages list cpu, memory and storage first and pods last', async (t) => {
  t.same(['pods', 'nvidia.com/gpu', 'memory', 'cpu', 'ephemeral-storage', 'example.com/a'].sort(compareResourceNames), [
    'cpu',
    'memory',
    'ephemeral-storage',
    'example.com/a',
    'nvidia.com/gpu',
    'pods',
  ]);
});

t.test('bytes prefer the largest binary unit, then any exact unit', async (t) => {
  const cases: Array<[string, string]> = [
    ['4000Mi', '4000Mi'],
    ['1536Mi', '1.5Gi'],
    ['1Ki', '1Ki'],
    ['1k', '1k'],
    ['2G', '2G'],
    ['2.75Gi', '2.75Gi'],
    ['1000M', '1G'],
    ['1024Ki', '1Mi'],
  ];
  for (const [quantity, shown] of cases) t.equal(formatResource('memory', parseQuantity(quantity)), shown, quantity);
});
