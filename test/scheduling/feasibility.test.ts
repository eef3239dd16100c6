import t from 'tap';
import type { V1NodeSelector, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { check, checkFeasibility, compileCandidate, compilePod, FEASIBLE, fits, type Verdict } from '../../scheduling/feasibility.js';
import { candidateFromMachine, type Candidate } from '../../scheduling/machine.js';
import { container, GI, machine, pod, requesting } from './fixtures/builders.js';

const messages = (verdict: Verdict): string[] => verdict.reasons.map((reason) => reason.message);

const plain = candidateFromMachine(machine('rack-a-01', { cpu: '32', memory: '32Gi' }, { rack: 'a', 'topology.kubernetes.io/zone': 'a' }));
const gpuMachine = candidateFromMachine(
  machine('rack-b-01', { cpu: '64', memory: '512Gi', 'nvidia.com/gpu': '8' }, { rack: 'b', 'topology.kubernetes.io/zone': 'b' }, [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]),
);

function affinity(nodeSelector: V1NodeSelector): Partial<V1Pod['spec']> {
  return { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: nodeSelector } } };
}

t.test('a pod that fits', async (t) => {
  const verdict = checkFeasibility(requesting({ cpu: '2', memory: '4Gi' }), plain);
  t.same(verdict, { feasible: true, reasons: [] });
  t.equal(check(compilePod(requesting({ cpu: '2' })), compileCandidate(plain)), FEASIBLE, 'the shared verdict: nothing allocated');
  t.ok(Object.isFrozen(FEASIBLE) && Object.isFrozen(FEASIBLE.reasons), 'which nobody can change');
});

t.test('the messages a user reads', async (t) => {
  t.same(messages(checkFeasibility(requesting({ cpu: '1' }), gpuMachine)), ['taint gpu=true:NoSchedule not tolerated']);
  t.same(messages(checkFeasibility(requesting({ memory: '64Gi' }), plain)), ['insufficient memory (needs 64Gi, has 32Gi free of 32Gi)']);
  t.same(messages(checkFeasibility(requesting({}, { nodeSelector: { rack: 'b' } }), plain)), ['node selector rack=b does not match (rack=a)']);
  t.same(messages(checkFeasibility(requesting({}, { nodeSelector: { disk: 'ssd' } }), plain)), ['node selector disk=ssd does not match (no disk label)']);
  t.same(messages(checkFeasibility(requesting({}, affinity({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['c'] }] }] })), plain)), [
    'required node affinity: topology.kubernetes.io/zone In [c] does not match (zone a)',
  ]);
  t.same(messages(checkFeasibility(requesting({ cpu: '1' }, { nodeName: 'rack-a-09' }), plain)), ['pod is bound to node rack-a-09 (spec.nodeName)']);
});

t.test('every reason is reported, in a fixed order', async (t) => {
  const everything = requesting(
    { cpu: '40', memory: '64Gi', 'nvidia.com/gpu': '1' },
    {
      nodeSelector: { rack: 'b' },
      ...affinity({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['c'] }, { key: 'ssd', operator: 'Exists' }] }] }),
    },
  );
  const tainted: Candidate = { ...plain, taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }, { key: 'maintenance', effect: 'NoExecute' }] };
  const verdict = checkFeasibility(everything, tainted);
  t.equal(verdict.feasible, false);
  t.same(messages(verdict), [
    'taint dedicated=db:NoSchedule not tolerated',
    'taint maintenance:NoExecute not tolerated',
    'node selector rack=b does not match (rack=a)',
    'required node affinity: topology.kubernetes.io/zone In [c] does not match (zone a)',
    'required node affinity: ssd Exists does not match (no ssd label)',
    'insufficient cpu (needs 40, has 32 free of 32)',
    'insufficient memory (needs 64Gi, has 32Gi free of 32Gi)',
    'insufficient nvidia.com/gpu (needs 1, has 0 free of 0)',
  ]);
  t.match(verdict.reasons[0], { kind: 'taint', taint: { key: 'dedicated', value: 'db', effect: 'NoSchedule' } });
  t.match(verdict.reasons[2], { kind: 'nodeSelector', key: 'rack', want: 'b', have: 'a' });
  t.match(verdict.reasons[3], { kind: 'affinity', requirement: 'topology.kubernetes.io/zone In [c] does not match', detail: 'topology.kubernetes.io/zone In [c] does not match (zone a)' });
  t.same(verdict.reasons[6], {
    kind: 'resource',
    resource: 'memory',
    needs: 64n * GI,
    free: 32n * GI,
    capacity: 32n * GI,
    message: 'insufficient memory (needs 64Gi, has 32Gi free of 32Gi)',
  });
});

t.test('taints and tolerations', async (t) => {
  const tolerate = (...tolerations: V1Toleration[]): V1Pod => requesting({ cpu: '1' }, { tolerations });
  const withTaints = (...taints: Candidate['taints']): Candidate => ({ ...plain, taints });
  const cases: Array<[string, V1Pod, Candidate, boolean]> = [
    ['tolerated by Equal', tolerate({ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }), gpuMachine, true],
    ['tolerated by Exists', tolerate({ key: 'gpu', operator: 'Exists' }), gpuMachine, true],
    ['tolerated by an empty key with Exists', tolerate({ operator: 'Exists' }), gpuMachine, true],
    ['not tolerated: another value', tolerate({ key: 'gpu', value: 'false', effect: 'NoSchedule' }), gpuMachine, false],
    ['PreferNoSchedule does not block', tolerate(), withTaints({ key: 'spot', value: 'true', effect: 'PreferNoSchedule' }), true],
    ['NoExecute blocks', tolerate(), withTaints({ key: 'maintenance', effect: 'NoExecute' }), false],
    [
      'the default not-ready/unreachable tolerations do not cover other taints',
      tolerate(
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ),
      withTaints({ key: 'maintenance', effect: 'NoExecute' }),
      false,
    ],
    ['a cordoned node', tolerate(), withTaints({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }), false],
  ];
  for (const [name, p, candidate, feasible] of cases) {
    t.equal(checkFeasibility(p, candidate).feasible, feasible, name);
    t.equal(fits(compilePod(p), compileCandidate(candidate)), feasible, `${name} (fits)`);
  }
});

t.test('node selector and affinity against the predicted labels', async (t) => {
  const byHostname = requesting({}, affinity({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['rack-a-01'] }] }] }));
  t.equal(checkFeasibility(byHostname, plain).feasible, true, 'kubernetes.io/hostname is the machine name');
  t.equal(checkFeasibility(requesting({}, { nodeSelector: { 'kubernetes.io/os': 'linux' } }), plain).feasible, true, 'kubernetes.io/os defaults to linux');
  const daemonSetPod = requesting({}, affinity({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['rack-a-01'] }] }] }));
  t.equal(checkFeasibility(daemonSetPod, plain).feasible, true, 'matchFields metadata.name, as the DaemonSet controller writes it');
  t.same(messages(checkFeasibility(daemonSetPod, gpuMachine)), [
    'taint gpu=true:NoSchedule not tolerated',
    'required node affinity: metadata.name In [rack-a-01] does not match (name rack-b-01)',
  ]);
  const anyZone = requesting(
    {},
    affinity({
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['c'] }] }, { matchExpressions: [{ key: 'rack', operator: 'In', values: ['a'] }] }],
    }),
  );
  t.equal(checkFeasibility(anyZone, plain).feasible, true, 'terms are ORed');
  t.same(messages(checkFeasibility(requesting({}, affinity({ nodeSelectorTerms: [] })), plain)), ['required node affinity: has no nodeSelectorTerms, so no node matches']);
  t.same(messages(checkFeasibility(requesting({}, affinity({ nodeSelectorTerms: [{}] })), plain)), ['required node affinity: the only term is empty, so no node matches']);
  t.same(messages(checkFeasibility(requesting({}, affinity({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['many'] }] }] })), plain)), [
    'invalid pod: required node affinity: matchExpressions cores: Gt needs an integer, got "many"',
  ]);
});

t.test('resource fit: exactly enough fits, one milli-unit short does not', async (t) => {
  const sized = (capacity: Record<string, string>): Candidate => candidateFromMachine(machine('m', capacity));
  t.equal(checkFeasibility(requesting({ cpu: '1500m' }), sized({ cpu: '1500m', memory: '1Gi' })).feasible, true);
  t.same(messages(checkFeasibility(requesting({ cpu: '1500m' }), sized({ cpu: '1499m', memory: '1Gi' }))), ['insufficient cpu (needs 1500m, has 1499m free of 1499m)']);
  const exact: Candidate = { ...plain, allocatable: new Map([['memory', 64n * GI], ['pods', 110_000n]]) };
  const short: Candidate = { ...plain, allocatable: new Map([['memory', 64n * GI - 1n], ['pods', 110_000n]]) };
  t.equal(checkFeasibility(requesting({ memory: '64Gi' }), exact).feasible, true);
  t.same(messages(checkFeasibility(requesting({ memory: '64Gi' }), short)), ['insufficient memory (needs 64Gi, has 68719476735.999 free of 68719476735.999)']);
  t.equal(checkFeasibility(requesting({ 'nvidia.com/gpu': '8' }, { tolerations: [{ key: 'gpu', operator: 'Exists' }] }), gpuMachine).feasible, true, 'extended resources');
  t.same(messages(checkFeasibility(requesting({ 'nvidia.com/gpu': '9' }, { tolerations: [{ key: 'gpu', operator: 'Exists' }] }), gpuMachine)), [
    'insufficient nvidia.com/gpu (needs 9, has 8 free of 8)',
  ]);
  t.same(messages(checkFeasibility(requesting({ 'ephemeral-storage': '1Gi' }), plain)), ['insufficient ephemeral-storage (needs 1Gi, has 0 free of 0)'], 'absent means none');
});

t.test('what already runs on a Node is not free', async (t) => {
  const busy: Candidate = { ...plain, used: new Map([['cpu', 30_000n], ['memory', 4n * GI], ['pods', 5000n]]) };
  t.equal(checkFeasibility(requesting({ cpu: '2' }), busy).feasible, true);
  t.same(messages(checkFeasibility(requesting({ cpu: '2500m', memory: '28.5Gi' }), busy)), [
    'insufficient cpu (needs 2500m, has 2 free of 32)',
    'insufficient memory (needs 28.5Gi, has 28Gi free of 32Gi)',
  ]);
  const full: Candidate = { ...plain, used: new Map([['pods', 110_000n]]) };
  t.same(messages(checkFeasibility(requesting({}), full)), ['insufficient pods (needs 1, has 0 free of 110)'], 'the pod count is always checked');
  const overcommitted: Candidate = { ...plain, used: new Map([['cpu', 40_000n]]) };
  t.equal(checkFeasibility(requesting({ memory: '1Gi' }), overcommitted).feasible, true, 'a pod requesting no cpu fits an overcommitted node');
  t.equal(checkFeasibility(requesting({ cpu: '0' }), overcommitted).feasible, true, 'nor does a zero request');
  t.same(messages(checkFeasibility(requesting({ cpu: '1m' }), overcommitted)), ['insufficient cpu (needs 1m, has 0 free of 32)'], 'free is never shown below zero');
  t.match(checkFeasibility(requesting({ cpu: '1m' }), overcommitted).reasons[0], { free: -8000n }, 'but the reason keeps the figure');
});

t.test('the pod’s requests: init containers, sidecars and overhead decide the fit', async (t) => {
  const small = candidateFromMachine(machine('small', { cpu: '4', memory: '8Gi' }));
  const bigInit = pod({ initContainers: [container('migrate', { cpu: '6' })], containers: [container('app', { cpu: '1' })] });
  t.same(messages(checkFeasibility(bigInit, small)), ['insufficient cpu (needs 6, has 4 free of 4)']);
  const sidecars = pod({
    initContainers: [{ name: 'proxy', restartPolicy: 'Always', resources: { requests: { cpu: '1' } } }],
    containers: [container('app', { cpu: '3' })],
  });
  t.equal(checkFeasibility(sidecars, small).feasible, true, '3 + 1 = 4 fits');
  t.same(messages(checkFeasibility({ ...sidecars, spec: { ...sidecars.spec, containers: sidecars.spec?.containers ?? [], overhead: { cpu: '1m' } } }, small)), [
    'insufficient cpu (needs 4001m, has 4 free of 4)',
  ]);
  const limitsOnly = pod({ containers: [container('app', {}, { memory: '16Gi' })] });
  t.same(messages(checkFeasibility(limitsOnly, small)), ['insufficient memory (needs 16Gi, has 8Gi free of 8Gi)']);
});

t.test('an invalid pod gets a verdict, not an exception', async (t) => {
  const verdict = checkFeasibility(requesting({ cpu: 'two', memory: '1Gi' }), plain);
  t.equal(verdict.feasible, false);
  t.equal(verdict.reasons.length, 1);
  t.match(verdict.reasons[0], { kind: 'invalid', detail: /^container "app" requests\.cpu: "two" is not a valid quantity/ });
  t.match(verdict.reasons[0]?.message, /^invalid pod: container "app" requests\.cpu: "two"/);
  t.same(messages(checkFeasibility(requesting({ cpu: 'two' }), gpuMachine)).slice(1), ['taint gpu=true:NoSchedule not tolerated'], 'with the other reasons');
  t.equal(checkFeasibility({}, plain).feasible, true, 'a pod without a spec asks for one pod slot');
});

t.test('compiled and uncompiled checks agree', async (t) => {
  const pods = [
    requesting({ cpu: '1' }),
    requesting({ memory: '64Gi' }),
    requesting({ 'nvidia.com/gpu': '1' }, { tolerations: [{ key: 'gpu', operator: 'Exists' }] }),
    requesting({}, { nodeSelector: { rack: 'b' } }),
    requesting({ cpu: 'x' }),
  ];
  for (const p of pods) {
    const compiled = compilePod(p);
    for (const candidate of [plain, gpuMachine]) {
      const verdict = check(compiled, compileCandidate(candidate));
      t.same(verdict, checkFeasibility(p, candidate));
      t.equal(fits(compiled, compileCandidate(candidate)), verdict.feasible);
      t.equal(verdict.feasible, verdict.reasons.length === 0, 'feasible exactly when there is no reason');
    }
  }
  t.same(Object.fromEntries(compilePod(requesting({ cpu: '1' }, { overhead: { memory: '1Mi' } })).requests), { cpu: 1000n, memory: (1n << 20n) * 1000n, pods: 1000n }, 'requests for scoring');
});
