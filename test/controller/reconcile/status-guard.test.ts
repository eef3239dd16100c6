import t from 'tap';
import type { BareMetalAutoscalerStatus, MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { compactStatus } from '../../../controller/reconcile/status-compact.js';
import { fitStatus, TRIMS } from '../../../controller/reconcile/status-guard.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const SINCE = '2026-12-07T11:00:00Z';
const bytes = (s: BareMetalAutoscalerStatus): number => Buffer.byteLength(JSON.stringify(s));

/** `n` machines with every kind of detail, one in three with an operation in flight. */
function fleet(n: number): BareMetalAutoscalerStatus {
  const machines: MachineStatus[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${String(i).padStart(3, '0')}`;
    const kind = i % 3;
    machines.push({
      name,
      phase: kind === 0 ? 'PoweringOn' : kind === 1 ? 'Ready' : 'Off',
      since: SINCE,
      ...(kind === 0 ? { operation: { id: `on-${i}`, action: 'PowerOn' as const, startedAt: SINCE, attempt: 1, holder: 'me' }, reason: 'PendingPods', message: 'powering on for 3 pending pod(s): '.padEnd(300, 'x') } : {}),
      ...(kind === 1 ? { blockers: ['pod a/b is annotated autoscaling.bamel.io/do-not-disrupt: "true"'], disruption: 'Candidate' as const } : {}),
      power: { watts: 100 + i, observedAt: SINCE, source: 'redfish-power' },
      boot: { lastSeconds: 250, p90Seconds: 260, samples: 12, recentSeconds: [250, 251, 252, 253, 254, 255, 256, 257, 258, 260] },
      breakEven: { seconds: 900, holdSeconds: 600 },
      powerCycles: { last24h: 1, powerOffs: [Date.parse(SINCE) / 1000 - 60] },
    });
  }
  return { observedGeneration: 1, machines, conditions: [] };
}

const condition = (s: BareMetalAutoscalerStatus): NonNullable<BareMetalAutoscalerStatus['conditions']>[number] | undefined => s.conditions?.find((c) => c.type === 'StatusTrimmed');

t.test('within the safe size: sent as it is, no condition', async (t) => {
  const s = fleet(30);
  const r = fitStatus(s, { limitBytes: bytes(s), generation: 1, now: NOW });
  t.equal(r.status, s);
  t.same(r.trimmed, []);
  t.equal(r.text, JSON.stringify(s));
});

t.test('over it: detail is left out in order, least needed first, until it fits', async (t) => {
  const s = fleet(30);
  const noPower = { ...s, machines: (s.machines ?? []).map(({ power: _p, ...m }) => m) };
  // Room for the status without the readings (and for the condition that says so).
  const r = fitStatus(s, { limitBytes: bytes(noPower) + 600, generation: 4, now: NOW });
  t.same(r.trimmed, [TRIMS[0]?.what]);
  t.ok((r.status.machines ?? []).every((m) => m.power === undefined), 'the readings went');
  t.ok((r.status.machines ?? []).filter((m) => m.phase === 'Ready').every((m) => m.blockers !== undefined), 'the blockers stay');
  t.ok(Buffer.byteLength(r.text) <= bytes(noPower) + 600);
  const c = condition(r.status);
  t.same([c?.status, c?.reason, c?.observedGeneration], ['True', 'SizeLimit', 4]);
  t.match(c?.message, /over the safe size of \d+: left out machines\[\]\.power/);

  const tight = fitStatus(s, { limitBytes: 9_000, generation: 4, now: NOW });
  t.same(tight.trimmed.slice(0, 4), TRIMS.slice(0, 4).map((x) => x.what), 'the same order, further');
  t.ok(Buffer.byteLength(tight.text) <= 9_000, `fits: ${Buffer.byteLength(tight.text)} bytes`);
});

t.test('operation intents are never dropped, not even as the last resort', async (t) => {
  const s = fleet(30);
  const r = fitStatus(s, { limitBytes: 100, generation: 1, now: NOW });
  t.equal(r.trimmed.length, TRIMS.length + 1, 'every step taken');
  const ops = (r.status.machines ?? []).filter((m) => m.operation);
  t.equal(ops.length, 10);
  t.same(
    ops.map((m) => [m.name, m.operation?.id, m.reason]),
    (s.machines ?? []).filter((m) => m.operation).map((m) => [m.name, m.operation?.id, m.reason]),
    'each with its reason (it says how the operation ends)',
  );
  t.ok((r.status.machines ?? []).some((m) => m.phase === 'Ready'), 'Ready machines stay listed');
  t.notOk((r.status.machines ?? []).some((m) => m.phase === 'Off'), 'Off machines without an operation went last');
});

t.test('a large fleet: the packed learned state is trimmed with the machines, and stays in their order', async (t) => {
  const big = fleet(600);
  const compacted = compactStatus(big, NOW);
  t.type(compacted.learned, 'string');
  const r = fitStatus(compacted, { limitBytes: bytes(compacted) - 2_000, generation: 1, now: NOW });
  t.ok(r.trimmed.length >= 1);
  t.ok(Buffer.byteLength(r.text) <= bytes(compacted) - 2_000);
  const last = fitStatus(compacted, { limitBytes: 1_000, generation: 1, now: NOW });
  const names = (last.status.machines ?? []).map((m) => m.name);
  t.ok(names.length > 0 && (last.status.learned ?? '').split(' ').length <= names.length, 'no more entries than machines');
});

t.test('the condition clears once the status fits again', async (t) => {
  const s = fleet(30);
  const trimmed = fitStatus(s, { limitBytes: 9_000, generation: 1, now: NOW }).status;
  const again = fitStatus({ ...s, conditions: trimmed.conditions ?? [] }, { limitBytes: 10_000_000, generation: 2, now: NOW + 60_000 });
  t.same(again.trimmed, []);
  const c = condition(again.status);
  t.same([c?.status, c?.reason], ['False', 'WithinLimit']);
  t.equal(again.text, JSON.stringify(again.status));
});
