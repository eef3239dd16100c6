import t from 'tap';
import { checkFeasibility, type Verdict } from '../../scheduling/feasibility.js';
import { candidateFromMachine, type Candidate } from '../../scheduling/machine.js';
import { summarizeInfeasible, type MachineVerdict } from '../../scheduling/summary.js';
import { machine, requesting } from './fixtures/builders.js';

const GPU_TAINT = [{ key: 'gpu', value: 'true', effect: 'NoSchedule' as const }];
const pod64 = requesting({ memory: '64Gi' });

function candidate(name: string, memory = '512Gi', taints = GPU_TAINT, labels: Record<string, string> = {}): Candidate {
  return candidateFromMachine(machine(name, { cpu: '32', memory }, labels, taints));
}

function results(pod: Parameters<typeof checkFeasibility>[0], candidates: Candidate[]): MachineVerdict[] {
  return candidates.map((c) => ({ machine: c.name, verdict: checkFeasibility(pod, c) }));
}

t.test('groups machines by reason and shortens exact prefixes', async (t) => {
  const checked = results(pod64, [
    candidate('rack-b-01'),
    candidate('rack-b-02'),
    candidate('rack-b-03'),
    candidate('rack-a-01', '32Gi', []),
    candidate('rack-a-02', '128Gi', []),
  ]);
  t.equal(checked[4]?.verdict.feasible, true, 'rack-a-02 fits');
  t.equal(summarizeInfeasible(checked), 'rack-b-*: taint gpu=true:NoSchedule not tolerated; rack-a-01: insufficient memory (needs 64Gi, has 32Gi free of 32Gi)');
});

t.test('a prefix is used only when every machine with it shares the reasons', async (t) => {
  const checked = results(pod64, [candidate('rack-b-01'), candidate('rack-b-02'), candidate('rack-b-03'), candidate('rack-b-04', '32Gi', [])]);
  t.equal(
    summarizeInfeasible(checked),
    'rack-b-01, rack-b-02, rack-b-03: taint gpu=true:NoSchedule not tolerated; rack-b-04: insufficient memory (needs 64Gi, has 32Gi free of 32Gi)',
  );
  const feasibleSibling = results(pod64, [candidate('rack-c-01'), candidate('rack-c-02'), candidate('rack-c-03', '512Gi', [])]);
  t.equal(summarizeInfeasible(feasibleSibling), 'rack-c-01, rack-c-02: taint gpu=true:NoSchedule not tolerated', 'a feasible machine with the prefix counts too');
  t.equal(summarizeInfeasible(feasibleSibling.slice(0, 2)), 'rack-*: taint gpu=true:NoSchedule not tolerated', 'which is why every checked machine should be passed');
});

t.test('the shortest exact prefix, and several per group', async (t) => {
  const all = results(pod64, [candidate('rack-a-01'), candidate('rack-a-02'), candidate('rack-b-01'), candidate('rack-b-02')]);
  t.equal(summarizeInfeasible(all), 'rack-*: taint gpu=true:NoSchedule not tolerated');
  const two = results(pod64, [candidate('edge-1'), candidate('edge-2'), candidate('rack-a-01'), candidate('rack-a-02'), candidate('rack-b-01', '32Gi', [])]);
  t.equal(summarizeInfeasible(two), 'edge-*, rack-a-*: taint gpu=true:NoSchedule not tolerated; rack-b-01: insufficient memory (needs 64Gi, has 32Gi free of 32Gi)');
  const single = results(pod64, [candidate('rack-a-01'), candidate('rack-b-01')]);
  t.equal(summarizeInfeasible(single), 'rack-*: taint gpu=true:NoSchedule not tolerated');
  const dotted = results(pod64, [candidate('n1.dc1'), candidate('n2.dc1'), candidate('n1.dc2', '32Gi', [])]);
  t.equal(summarizeInfeasible(dotted), 'n1.dc1, n2.dc1: taint gpu=true:NoSchedule not tolerated; n1.dc2: insufficient memory (needs 64Gi, has 32Gi free of 32Gi)', 'no prefix covers only the group');
  const numbered = results(pod64, ['node10', 'node9', 'node1'].map((name) => candidate(name)));
  t.equal(summarizeInfeasible(numbered), 'node1, node9, node10: taint gpu=true:NoSchedule not tolerated', 'names in natural order');
});

t.test('machines failing for the same reason with different figures share a group', async (t) => {
  const checked = results(pod64, [candidate('a-01', '32Gi', []), candidate('a-02', '16Gi', []), candidate('b-01', '48Gi', [])]);
  t.equal(summarizeInfeasible(checked), 'a-*, b-01: insufficient memory (needs 64Gi, has at most 48Gi free)');
  const selector = requesting({}, { nodeSelector: { rack: 'c' } });
  const racks = results(selector, [candidate('x-1', '1Gi', [], { rack: 'a' }), candidate('x-2', '1Gi', [], { rack: 'b' })]);
  t.equal(summarizeInfeasible(racks), 'x-*: node selector rack=c does not match');
  const same = results(selector, [candidate('x-1', '1Gi', [], { rack: 'a' }), candidate('x-2', '1Gi', [], { rack: 'a' })]);
  t.equal(summarizeInfeasible(same), 'x-*: node selector rack=c does not match (rack=a)', 'the full message when they agree');
  const zones = requesting({}, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['c'] }] }] } } } });
  t.equal(
    summarizeInfeasible(results(zones, [candidate('x-1', '1Gi', [], { zone: 'a' }), candidate('x-2', '1Gi', [], { zone: 'b' })])),
    'x-*: required node affinity: zone In [c] does not match',
  );
});

t.test('several reasons per machine; larger groups first', async (t) => {
  const checked = results(pod64, [candidate('a-1', '32Gi'), candidate('b-1', '32Gi', []), candidate('b-2', '32Gi', [])]);
  t.equal(
    summarizeInfeasible(checked),
    'b-*: insufficient memory (needs 64Gi, has 32Gi free of 32Gi); a-1: taint gpu=true:NoSchedule not tolerated, insufficient memory (needs 64Gi, has 32Gi free of 32Gi)',
  );
});

t.test('nothing to say when every machine fits, or none was checked', async (t) => {
  t.equal(summarizeInfeasible([]), '');
  t.equal(summarizeInfeasible(results(pod64, [candidate('a', '512Gi', [])])), '');
});

const infeasible = (message: string): Verdict => ({ feasible: false, reasons: [{ kind: 'invalid', detail: message, message }] });

t.test('the text stays within an event message', async (t) => {
  // 60 groups of one machine each, each with its own reason.
  const many: MachineVerdict[] = Array.from({ length: 60 }, (_, i) => ({ machine: `m${i}`, verdict: infeasible(`reason number ${i} ${'x'.repeat(20)}`) }));
  const text = summarizeInfeasible(many);
  t.ok(Buffer.byteLength(text) <= 1024, `${Buffer.byteLength(text)} bytes`);
  const shown = text.split('; ').filter((part) => part.startsWith('m')).length;
  t.match(text, new RegExp(`; … and ${60 - shown} more machines$`), 'counts what was left out');
  t.ok(shown > 10, 'and uses the room');

  const small = summarizeInfeasible(many, { maxBytes: 120 });
  t.ok(Buffer.byteLength(small) <= 120, small);
  t.match(small, /^m0: reason number 0 x+; m1: reason number 1 x+; … and 58 more machines$/);

  const huge = summarizeInfeasible([{ machine: 'm1', verdict: infeasible('é'.repeat(2000)) }]);
  t.ok(Buffer.byteLength(huge) <= 1024, 'one enormous reason is cut');
  t.match(huge, /^m1: é+…$/, 'at a character boundary');

  const hugeFirst = summarizeInfeasible([
    { machine: 'a-1', verdict: infeasible('y'.repeat(2000)) },
    { machine: 'a-2', verdict: infeasible('y'.repeat(2000)) },
    { machine: 'b-1', verdict: infeasible('short') },
  ]);
  t.ok(Buffer.byteLength(hugeFirst) <= 1024);
  t.match(hugeFirst, /^a-\*: y+…; … and 1 more machine$/);
});

t.test('a group lists a few names and counts the rest', async (t) => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const text = summarizeInfeasible(names.map((machine) => ({ machine, verdict: infeasible('down') })));
  t.equal(text, 'a, b, c, d, e (+3 more): down');
});
