import t from 'tap';
import type { V1Container, V1ContainerStatus, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { podRequests, sumRequests } from '../../scheduling/requests.js';

const GI = (1n << 30n) * 1000n;
const MI = (1n << 20n) * 1000n;
const CPU = 1000n;

type Resources = Record<string, string>;

function container(name: string, requests?: Resources, limits?: Resources, restartPolicy?: string): V1Container {
  const resources = { ...(requests === undefined ? {} : { requests }), ...(limits === undefined ? {} : { limits }) };
  return { name, resources, ...(restartPolicy === undefined ? {} : { restartPolicy }) };
}
const sidecar = (name: string, requests: Resources): V1Container => container(name, requests, undefined, 'Always');

function pod(spec: Partial<V1PodSpec>, status?: V1Pod['status']): V1Pod {
  return { metadata: { name: 'p' }, spec: { containers: [], ...spec }, ...(status === undefined ? {} : { status }) };
}

/** The requests as a plain object, for readable comparisons. */
function requestsOf(p: V1Pod, useStatusResources = false): Record<string, bigint> {
  return Object.fromEntries(podRequests(p, { useStatusResources }));
}

t.test('regular containers add up; every pod counts as one pod', async (t) => {
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '500m', memory: '1Gi' })] })), { cpu: 500n, memory: GI, pods: 1000n });
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '500m', memory: '1Gi' }), container('log', { cpu: '250m', memory: '512Mi' })] })), {
    cpu: 750n,
    memory: GI + 512n * MI,
    pods: 1000n,
  });
  t.same(requestsOf(pod({ containers: [container('app')] })), { pods: 1000n }, 'a pod without requests still takes a pod slot');
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '0' })] })), { cpu: 0n, pods: 1000n }, 'zero requests are kept as zero');
});

t.test('a container with limits but no requests requests its limits', async (t) => {
  t.same(requestsOf(pod({ containers: [container('app', undefined, { cpu: '2', memory: '4Gi' })] })), { cpu: 2n * CPU, memory: 4n * GI, pods: 1000n });
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '1' }, { cpu: '2', memory: '4Gi' })] })), { cpu: CPU, memory: 4n * GI, pods: 1000n }, 'per resource');
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '0' }, { cpu: '2' })] })), { cpu: 0n, pods: 1000n }, 'an explicit zero request stays zero');
  t.same(requestsOf(pod({ containers: [container('train', undefined, { 'nvidia.com/gpu': '2' })] })), { 'nvidia.com/gpu': 2000n, pods: 1000n }, 'extended resources are usually given as limits');
  t.same(requestsOf(pod({ initContainers: [container('init', undefined, { cpu: '3' })], containers: [container('app', { cpu: '1' })] })), { cpu: 3n * CPU, pods: 1000n }, 'init containers too');
});

t.test('init containers: the pod needs the largest one', async (t) => {
  t.same(
    requestsOf(pod({ initContainers: [container('migrate', { cpu: '2', memory: '256Mi' })], containers: [container('app', { cpu: '1', memory: '1Gi' })] })),
    { cpu: 2n * CPU, memory: GI, pods: 1000n },
    'per resource: more cpu from the init container, more memory from the app',
  );
  t.same(
    requestsOf(pod({ initContainers: [container('a', { cpu: '3' }), container('b', { cpu: '5' })], containers: [container('app', { cpu: '1' }), container('b', { cpu: '1' })] })),
    { cpu: 5n * CPU, pods: 1000n },
    'init containers run one at a time: the maximum, not the sum',
  );
  t.same(
    requestsOf(pod({ initContainers: [container('a', { 'example.com/fpga': '1' })], containers: [container('app', { cpu: '1' })] })),
    { 'example.com/fpga': 1000n, cpu: CPU, pods: 1000n },
    'a resource only an init container uses',
  );
});

t.test('restartable init containers (sidecars) follow KEP-753', async (t) => {
  // init-1 runs alone; sidecar-1 starts; init-2 runs beside sidecar-1; sidecar-2 starts;
  // then app runs beside both sidecars.
  const spec = (init1: string, init2: string): Partial<V1PodSpec> => ({
    initContainers: [container('init-1', { cpu: init1 }), sidecar('sidecar-1', { cpu: '1' }), container('init-2', { cpu: init2 }), sidecar('sidecar-2', { cpu: '2' })],
    containers: [container('app', { cpu: '4' })],
  });
  t.same(requestsOf(pod(spec('5', '3'))), { cpu: 7n * CPU, pods: 1000n }, 'sidecars add to the regular containers: 4 + 1 + 2');
  t.same(requestsOf(pod(spec('5', '10'))), { cpu: 11n * CPU, pods: 1000n }, 'init-2 with the sidecar started before it: 10 + 1');
  t.same(requestsOf(pod(spec('9', '3'))), { cpu: 9n * CPU, pods: 1000n }, 'init-1 runs before any sidecar: 9 alone');
  t.same(
    requestsOf(pod({ initContainers: [sidecar('proxy', { memory: '128Mi' })], containers: [] })),
    { memory: 128n * MI, pods: 1000n },
    'a sidecar alone',
  );
  t.same(
    requestsOf(pod({ initContainers: [container('setup', { cpu: '1' }, undefined, 'OnFailure')], containers: [container('app', { cpu: '500m' })] })),
    { cpu: CPU, pods: 1000n },
    'only restartPolicy Always makes a sidecar',
  );
});

t.test('pod overhead is added', async (t) => {
  t.same(requestsOf(pod({ containers: [container('app', { cpu: '1', memory: '1Gi' })], overhead: { cpu: '250m', memory: '120Mi' } })), {
    cpu: 1250n,
    memory: GI + 120n * MI,
    pods: 1000n,
  });
  t.same(
    requestsOf(pod({ initContainers: [container('big', { cpu: '4' })], containers: [container('app', { cpu: '1' })], overhead: { cpu: '100m' } })),
    { cpu: 4100n, pods: 1000n },
    'after the init container maximum',
  );
});

t.test('pod-level resources replace the containers’ total for cpu, memory and hugepages', async (t) => {
  t.same(
    requestsOf(pod({ resources: { requests: { cpu: '4', memory: '8Gi' } }, containers: [container('app', { cpu: '1', memory: '1Gi', 'ephemeral-storage': '1Gi' })] })),
    { cpu: 4n * CPU, memory: 8n * GI, 'ephemeral-storage': GI, pods: 1000n },
  );
  t.same(
    requestsOf(pod({ resources: { limits: { memory: '8Gi' } }, containers: [container('app', { cpu: '1' })] })),
    { cpu: CPU, memory: 8n * GI, pods: 1000n },
    'a pod-level limit without any request defaults the request',
  );
  t.same(
    requestsOf(pod({ resources: { limits: { cpu: '8' } }, containers: [container('app', { cpu: '1' }), container('b', { cpu: '500m' })] })),
    { cpu: 1500n, pods: 1000n },
    'a pod-level limit with container requests: the containers’ total',
  );
  t.same(
    requestsOf(pod({ resources: { requests: { cpu: '2' } }, overhead: { cpu: '100m' }, containers: [container('app', { cpu: '1' })] })),
    { cpu: 2100n, pods: 1000n },
    'overhead is added to pod-level requests',
  );
});

t.test('pods on a node: an in-place resize holds the larger of spec and status', async (t) => {
  const status = (containerStatus: Partial<V1ContainerStatus>, conditions: Array<{ type: string; reason?: string; status: string }> = []): V1Pod['status'] => ({
    containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: true, restartCount: 0, ...containerStatus }],
    conditions,
  });
  const app = pod({ containers: [container('app', { cpu: '1' })] }, status({ resources: { requests: { cpu: '2' } } }));
  t.same(requestsOf(app), { cpu: CPU, pods: 1000n }, 'the spec for a pending pod');
  t.same(requestsOf(app, true), { cpu: 2n * CPU, pods: 1000n }, 'shrinking: the actual requests until resized');
  const growing = pod({ containers: [container('app', { cpu: '4' })] }, status({ allocatedResources: { cpu: '2' }, resources: { requests: { cpu: '2' } } }));
  t.same(requestsOf(growing, true), { cpu: 4n * CPU, pods: 1000n }, 'growing: the spec');
  const infeasible = pod(
    { containers: [container('app', { cpu: '4' })] },
    status({ allocatedResources: { cpu: '2' }, resources: { requests: { cpu: '2' } } }, [{ type: 'PodResizePending', reason: 'Infeasible', status: 'True' }]),
  );
  t.same(requestsOf(infeasible, true), { cpu: 2n * CPU, pods: 1000n }, 'an infeasible resize: what is actually held');
});

t.test('invalid quantities are reported, not thrown', async (t) => {
  const problems: string[] = [];
  const requests = podRequests(
    pod({
      containers: [container('app', { cpu: '2 cores', memory: '1Gi' }), container('b', { memory: '-1Gi' })],
      initContainers: [container('init', undefined, { memory: '1GB' })],
      overhead: { cpu: 'lots' },
    }),
    { onInvalid: (detail) => problems.push(detail) },
  );
  t.same(Object.fromEntries(requests), { memory: GI, pods: 1000n }, 'the valid quantities still count');
  // Where and what from here; why (in parentheses) from api/quantity.ts.
  t.match(problems, [
    /^container "app" requests\.cpu: "2 cores" is not a valid quantity \(.*whitespace.*\)$/,
    /^container "b" requests\.memory: "-1Gi" is negative$/,
    /^init container "init" limits\.memory: "1GB" is not a valid quantity \(.*"GB".*\)$/,
    /^spec\.overhead\.cpu: "lots" is not a valid quantity \(.+\)$/,
  ]);
  t.equal(problems.length, 4);
  const untyped = { spec: { containers: [{ name: 'app', resources: { requests: { cpu: 2, memory: null } } }] } } as unknown as V1Pod;
  const found: string[] = [];
  t.same(Object.fromEntries(podRequests(untyped, { onInvalid: (d) => found.push(d) })), { cpu: 2000n, pods: 1000n }, 'numbers from YAML are quantities');
  t.same(found, ['container "app" requests.memory: null is not a quantity']);
  t.doesNotThrow(() => podRequests(pod({ containers: [container('app', { cpu: 'x' })] })), 'without a listener, silently');
  t.doesNotThrow(() => podRequests({}), 'a pod without a spec');
});

t.test('sumRequests adds the pods on a node', async (t) => {
  const a = podRequests(pod({ containers: [container('a', { cpu: '1' })] }));
  const b = podRequests(pod({ containers: [container('b', { cpu: '500m', memory: '1Gi' })] }));
  t.same(Object.fromEntries(sumRequests([a, b])), { cpu: 1500n, pods: 2000n, memory: GI });
  t.same(Object.fromEntries(sumRequests([])), {});
});
