import t from 'tap';
import type { V1NodeSelector, V1NodeSelectorRequirement } from '@kubernetes/client-node';
import {
  compileNodeAffinity,
  compileNodeSelector,
  matchesNodeAffinity,
  matchesNodeSelector,
  nodeAffinityFailures,
  nodeSelectorMismatches,
  type CompiledNodeAffinity,
} from '../../scheduling/affinity.js';

const labels = new Map(
  Object.entries({
    'topology.kubernetes.io/zone': 'a',
    rack: 'a',
    cores: '16',
    padded: '007',
    'gpu-model': 'a100',
    'gpu-count': 'four',
    empty: '',
  }),
);
const NODE = 'rack-a-01';

function compiled(selector: V1NodeSelector): CompiledNodeAffinity {
  const affinity = compileNodeAffinity(selector);
  if (affinity === undefined) throw new Error('expected a compiled affinity');
  return affinity;
}

const one = (...matchExpressions: V1NodeSelectorRequirement[]): V1NodeSelector => ({ nodeSelectorTerms: [{ matchExpressions }] });
const expr = (key: string, operator: string, values?: string[]): V1NodeSelectorRequirement => (values === undefined ? { key, operator } : { key, operator, values });

t.test('nodeSelector: every key must be present with its value', async (t) => {
  t.equal(matchesNodeSelector(compileNodeSelector(undefined), labels), true, 'no selector matches every node');
  t.equal(matchesNodeSelector(compileNodeSelector({}), labels), true);
  t.equal(matchesNodeSelector(compileNodeSelector({ rack: 'a', cores: '16' }), labels), true);
  t.equal(matchesNodeSelector(compileNodeSelector({ rack: 'a', cores: '8' }), labels), false);
  t.equal(matchesNodeSelector(compileNodeSelector({ gpu: 'true' }), labels), false, 'a missing label');
  t.equal(matchesNodeSelector(compileNodeSelector({ empty: '' }), labels), true, 'an empty value matches an empty label');
  t.equal(matchesNodeSelector(compileNodeSelector({ missing: '' }), labels), false, 'an empty value needs the label to exist');
  t.same(nodeSelectorMismatches(compileNodeSelector({ rack: 'b', gpu: 'true', cores: '16' }), labels), [
    { key: 'rack', want: 'b', have: 'a' },
    { key: 'gpu', want: 'true', have: undefined },
  ]);
});

t.test('node affinity operators, as labels.Requirement matches them', async (t) => {
  const cases: Array<[string, V1NodeSelectorRequirement, boolean]> = [
    ['In, value listed', expr('topology.kubernetes.io/zone', 'In', ['a', 'b']), true],
    ['In, value not listed', expr('topology.kubernetes.io/zone', 'In', ['c']), false],
    ['In, label missing', expr('gpu', 'In', ['true']), false],
    ['In, empty label value listed', expr('empty', 'In', ['']), true],
    ['NotIn, value not listed', expr('topology.kubernetes.io/zone', 'NotIn', ['c']), true],
    ['NotIn, value listed', expr('topology.kubernetes.io/zone', 'NotIn', ['a']), false],
    ['NotIn, label missing matches', expr('gpu', 'NotIn', ['true']), true],
    ['Exists, label present', expr('rack', 'Exists'), true],
    ['Exists, empty label present', expr('empty', 'Exists'), true],
    ['Exists, label missing', expr('gpu', 'Exists'), false],
    ['DoesNotExist, label missing', expr('gpu', 'DoesNotExist'), true],
    ['DoesNotExist, label present', expr('rack', 'DoesNotExist'), false],
    ['Gt, greater', expr('cores', 'Gt', ['8']), true],
    ['Gt, equal', expr('cores', 'Gt', ['16']), false],
    ['Gt, smaller', expr('cores', 'Gt', ['32']), false],
    ['Lt, smaller', expr('cores', 'Lt', ['32']), true],
    ['Lt, equal', expr('cores', 'Lt', ['16']), false],
    ['Gt, leading zeros parse as decimal', expr('padded', 'Gt', ['6']), true],
    ['Gt, label not an integer', expr('gpu-count', 'Gt', ['2']), false],
    ['Lt, label not an integer', expr('gpu-count', 'Lt', ['2']), false],
    ['Gt, label empty', expr('empty', 'Gt', ['0']), false],
    ['Gt, label missing', expr('gpu', 'Gt', ['0']), false],
    ['Lt, label missing', expr('gpu', 'Lt', ['100']), false],
  ];
  for (const [name, requirement, matches] of cases) t.equal(matchesNodeAffinity(compiled(one(requirement)), labels, NODE), matches, name);
});

t.test('matchFields: metadata.name with In or NotIn', async (t) => {
  const byName = (operator: string, values: string[]): CompiledNodeAffinity => compiled({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator, values }] }] });
  t.equal(matchesNodeAffinity(byName('In', ['rack-a-01']), labels, 'rack-a-01'), true);
  t.equal(matchesNodeAffinity(byName('In', ['rack-a-01']), labels, 'rack-a-02'), false);
  t.equal(matchesNodeAffinity(byName('NotIn', ['rack-a-01']), labels, 'rack-a-02'), true);
  t.equal(matchesNodeAffinity(byName('NotIn', ['rack-a-01']), labels, 'rack-a-01'), false);
  // The scheduler's field selector takes exactly one value, unlike matchExpressions.
  const two = byName('In', ['rack-a-01', 'rack-a-02']);
  t.equal(matchesNodeAffinity(two, labels, 'rack-a-01'), false);
  t.same(two.problems, ['required node affinity: matchFields metadata.name: In on a field needs exactly one value']);
  const exists = compiled({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'Exists' }] }] });
  t.same(exists.problems, ['required node affinity: matchFields metadata.name: operator "Exists" is not supported for fields; use In or NotIn']);
  const label = compiled({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.labels', operator: 'In', values: ['x'] }] }] });
  t.same(label.problems, ['required node affinity: matchFields metadata.labels: field "metadata.labels" is not supported; only metadata.name is']);
});

t.test('terms are ORed; a term ANDs its expressions and fields', async (t) => {
  const zoneC = { matchExpressions: [expr('topology.kubernetes.io/zone', 'In', ['c'])] };
  const zoneA = { matchExpressions: [expr('topology.kubernetes.io/zone', 'In', ['a'])] };
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [zoneC, zoneA] }), labels, NODE), true, 'one matching term is enough');
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [zoneC] }), labels, NODE), false);
  t.equal(matchesNodeAffinity(compiled(one(expr('rack', 'In', ['a']), expr('cores', 'Gt', ['32']))), labels, NODE), false, 'every expression must match');
  t.equal(matchesNodeAffinity(compiled(one(expr('rack', 'In', ['a']), expr('cores', 'Gt', ['8']))), labels, NODE), true);
  const both = (name: string): CompiledNodeAffinity =>
    compiled({ nodeSelectorTerms: [{ matchExpressions: [expr('rack', 'In', ['a'])], matchFields: [{ key: 'metadata.name', operator: 'In', values: [name] }] }] });
  t.equal(matchesNodeAffinity(both(NODE), labels, NODE), true, 'expressions and fields both match');
  t.equal(matchesNodeAffinity(both('rack-b-01'), labels, NODE), false, 'the field does not');
});

t.test('empty terms and empty lists match nothing', async (t) => {
  t.equal(compileNodeAffinity(undefined), undefined, 'no required affinity: nothing to match');
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [] }), labels, NODE), false, 'an empty list of terms');
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [{}] }), labels, NODE), false, 'an empty term');
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [{ matchExpressions: [], matchFields: [] }] }), labels, NODE), false, 'a term with empty lists');
  t.equal(matchesNodeAffinity(compiled({ nodeSelectorTerms: [{}, { matchExpressions: [expr('rack', 'Exists')] }] }), labels, NODE), true, 'an empty term beside a matching one');
});

t.test('requirements kube-scheduler cannot parse make their term match nothing', async (t) => {
  const cases: Array<[V1NodeSelectorRequirement, string]> = [
    [expr('rack', 'In', []), 'matchExpressions rack: In needs at least one value'],
    [expr('rack', 'NotIn'), 'matchExpressions rack: NotIn needs at least one value'],
    [expr('rack', 'Exists', ['a']), 'matchExpressions rack: Exists takes no values'],
    [expr('rack', 'DoesNotExist', ['a']), 'matchExpressions rack: DoesNotExist takes no values'],
    [expr('cores', 'Gt', ['8', '9']), 'matchExpressions cores: Gt needs exactly one value'],
    [expr('cores', 'Lt', []), 'matchExpressions cores: Lt needs exactly one value'],
    [expr('cores', 'Gt', ['eight']), 'matchExpressions cores: Gt needs an integer, got "eight"'],
    [expr('rack', 'Equals', ['a']), 'matchExpressions rack: operator "Equals" is not supported; use In, NotIn, Exists, DoesNotExist, Gt, Lt'],
    [expr('rack a', 'Exists'), 'matchExpressions rack a: "rack a" is not a valid label key: it contains " "; use letters, digits, "-", "_" and ".", starting and ending with a letter or digit'],
    // labels.NewRequirement also checks each value as a label value, so a negative bound never parses.
    [expr('cores', 'Gt', ['-1']), 'matchExpressions cores: "-1" is not a valid label value: it must start and end with a letter or digit; use letters, digits, "-", "_" and ".", starting and ending with a letter or digit'],
  ];
  for (const [requirement, problem] of cases) {
    const affinity = compiled(one(requirement));
    t.equal(matchesNodeAffinity(affinity, labels, NODE), false, problem);
    t.same(affinity.problems, [`required node affinity: ${problem}`], problem);
    t.same(nodeAffinityFailures(affinity, labels, NODE), [], 'the problem is the whole story');
  }

  const lazy = compiled({ nodeSelectorTerms: [{ matchExpressions: [expr('rack', 'In', [])] }, { matchExpressions: [expr('rack', 'In', ['a'])] }] });
  t.equal(matchesNodeAffinity(lazy, labels, NODE), true, 'a valid matching term wins over an invalid one, as LazyErrorNodeSelector does');
  t.same(lazy.problems, ['required node affinity: term 1: matchExpressions rack: In needs at least one value'], 'numbered when there are several terms');
});

t.test('failures say what was required and what the node has', async (t) => {
  const failures = (selector: V1NodeSelector, name = NODE): string[] => nodeAffinityFailures(compiled(selector), labels, name).map((f) => f.detail);
  t.same(failures(one(expr('topology.kubernetes.io/zone', 'In', ['c']))), ['topology.kubernetes.io/zone In [c] does not match (zone a)']);
  t.same(failures(one(expr('gpu', 'Exists'))), ['gpu Exists does not match (no gpu label)']);
  t.same(failures(one(expr('rack', 'DoesNotExist'))), ['rack DoesNotExist does not match (rack a)']);
  t.same(failures(one(expr('rack', 'NotIn', ['a', 'b']))), ['rack NotIn [a, b] does not match (rack a)']);
  t.same(failures(one(expr('cores', 'Gt', ['32']))), ['cores Gt 32 does not match (cores 16)']);
  t.same(failures(one(expr('gpu-count', 'Lt', ['8']))), ['gpu-count Lt 8 does not match (gpu-count four, not an integer)']);
  t.same(failures(one(expr('empty', 'In', ['x']))), ['empty In [x] does not match (empty "")']);
  t.same(failures(one(expr('rack', 'In', ['b', 'c', 'd', 'e', 'f', 'g', 'h']))), ['rack In [b, c, d, e, f, … 2 more] does not match (rack a)']);
  t.same(failures({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['rack-b-01'] }] }] }), [
    'metadata.name In [rack-b-01] does not match (name rack-a-01)',
  ]);
  t.same(failures(one(expr('rack', 'In', ['b']), expr('cores', 'Gt', ['8']), expr('gpu', 'Exists'))), ['rack In [b] does not match (rack a)', 'gpu Exists does not match (no gpu label)'], 'every failed requirement of the term');
  t.same(failures(one(expr('rack', 'In', ['a']))), [], 'none when it matches');

  const several = nodeAffinityFailures(
    compiled({
      nodeSelectorTerms: [
        { matchExpressions: [expr('topology.kubernetes.io/zone', 'In', ['c']), expr('gpu', 'Exists')] },
        {},
        { matchExpressions: [expr('rack', 'In', [])] },
        { matchExpressions: [expr('cores', 'Gt', ['64'])] },
      ],
    }),
    labels,
    NODE,
  );
  t.same(several, [
    {
      requirement: 'none of 4 terms matches',
      detail:
        'none of 4 terms matches (term 1: topology.kubernetes.io/zone In [c] does not match (zone a), gpu Exists does not match (no gpu label); term 2: empty; term 3: invalid; term 4: cores Gt 64 does not match (cores 16))',
    },
  ]);
  t.same(failures({ nodeSelectorTerms: [] }), ['has no nodeSelectorTerms, so no node matches']);
  t.same(failures({ nodeSelectorTerms: [{}] }), ['the only term is empty, so no node matches']);
  t.same(nodeAffinityFailures(compiled(one(expr('topology.kubernetes.io/zone', 'In', ['c']))), labels, NODE)[0]?.requirement, 'topology.kubernetes.io/zone In [c] does not match', 'the part shared by every machine');
});
