import t from 'tap';
import type { BareMetalAutoscalerStatus, MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { unpackLearned } from '../../../controller/reconcile/learned-codec.js';
import { BLOCKERS_SHOWN, blockerLine, compactStatus, LARGE_FLEET_MACHINES, toSeconds } from '../../../controller/reconcile/status-compact.js';

const NOW = Date.parse('2026-12-07T12:00:00.750Z');
const m = (name: string, phase: MachineStatus['phase'], extra: Partial<MachineStatus> = {}): MachineStatus => ({ name, phase, since: '2026-12-07T11:00:00.999Z', ...extra });

t.test('timestamps at second precision, floored', async (t) => {
  t.equal(toSeconds('2026-12-07T11:00:00.999Z'), '2026-12-07T11:00:00Z');
  t.equal(toSeconds('2026-12-07T11:00:00Z'), '2026-12-07T11:00:00Z');
  t.equal(toSeconds('not a time'), 'not a time');
});

t.test('defaults, routine words of machines at rest and holds of nothing are left out; the rest stays', async (t) => {
  const machines: MachineStatus[] = [
    m('off', 'Off', { reason: 'PoweredOff', message: 'powered off', failures: 0, powerCyclesToday: 3, powerCyclesDay: '2026-12-06', breakEven: { seconds: 900, holdSeconds: 0, lastOffSeconds: 30 } }),
    m('ready', 'Ready', { reason: 'Joined', message: 'its Node joined', powerCyclesToday: 1, powerCyclesDay: '2026-12-07', breakEven: { seconds: 900, holdSeconds: 1800 }, unneededSince: '2026-12-07T11:30:00.5Z' }),
    m('aborted', 'Ready', { reason: 'DrainAborted', message: 'drain aborted, the machine stays on' }),
    m('failed', 'Failed', { reason: 'JoinTimeout', message: 'did not join', failures: 2, retryAfter: '2026-12-07T12:30:00.123Z' }),
    m('off-op', 'PoweringOff', { reason: 'JoinTimeout', message: 'powering off', operation: { id: 'off-1', action: 'PowerOff', startedAt: '2026-12-07T11:59:59.999Z', attempt: 1, holder: 'me' } }),
    m('draining', 'Draining', { drain: { startedAt: '2026-12-07T11:58:00.1Z', deadline: '2026-12-07T12:08:00.1Z', podsToEvict: 3, evicted: 1 }, power: { watts: 212.5, observedAt: '2026-12-07T11:59:58.4Z', source: 'ipmi-dcmi' } }),
  ];
  const s = compactStatus({ observedGeneration: 2, machines }, NOW);
  t.same(s.machines, [
    { name: 'off', phase: 'Off', since: '2026-12-07T11:00:00Z' },
    { name: 'ready', phase: 'Ready', since: '2026-12-07T11:00:00Z', powerCyclesToday: 1, powerCyclesDay: '2026-12-07', unneededSince: '2026-12-07T11:30:00Z', breakEven: { seconds: 900, holdSeconds: 1800 } },
    { name: 'aborted', phase: 'Ready', since: '2026-12-07T11:00:00Z', reason: 'DrainAborted', message: 'drain aborted, the machine stays on' },
    { name: 'failed', phase: 'Failed', since: '2026-12-07T11:00:00Z', reason: 'JoinTimeout', message: 'did not join', retryAfter: '2026-12-07T12:30:00Z', failures: 2 },
    { name: 'off-op', phase: 'PoweringOff', since: '2026-12-07T11:00:00Z', operation: { id: 'off-1', action: 'PowerOff', startedAt: '2026-12-07T11:59:59Z', attempt: 1, holder: 'me' }, reason: 'JoinTimeout', message: 'powering off' },
    {
      name: 'draining',
      phase: 'Draining',
      since: '2026-12-07T11:00:00Z',
      drain: { startedAt: '2026-12-07T11:58:00Z', deadline: '2026-12-07T12:08:00Z', podsToEvict: 3, evicted: 1 },
      power: { watts: 212.5, observedAt: '2026-12-07T11:59:58Z', source: 'ipmi-dcmi' },
    },
  ]);
  t.equal(s.learned, undefined, 'a small fleet packs nothing');
  t.same(compactStatus(s, NOW), s, 'idempotent: the status read back is what is written again');
});

t.test('blockers: one line, for the machines closest to a scale-down; all of them counted', async (t) => {
  const machines: MachineStatus[] = [];
  for (let i = 0; i < 40; i++) {
    machines.push(m(`m${String(i).padStart(2, '0')}`, 'Ready', { blockers: [`pod ns/p${i} is annotated autoscaling.bamel.io/do-not-disrupt: "true"`, 'second'], ...(i >= 30 ? { disruption: 'Candidate' as const, unneededSince: `2026-12-07T11:${i}:00Z` } : {}) }));
  }
  machines.push(m('next', 'Ready', { disruption: 'Next', blockers: ['x'.repeat(600)] }));
  machines.push(m('free', 'Ready'));
  const s = compactStatus({ machines }, NOW);
  t.equal(s.blockedMachines, 41);
  const shown = (s.machines ?? []).filter((x) => x.blockers);
  t.equal(shown.length, BLOCKERS_SHOWN);
  const expected = ['next', ...Array.from({ length: 10 }, (_, i) => `m${30 + i}`), ...Array.from({ length: 9 }, (_, i) => `m0${i}`)];
  t.same(shown.map((x) => x.name).sort(), expected.sort(), 'Next, then the Candidates, then the others by name');
  t.same(s.machines?.find((x) => x.name === 'm30')?.blockers, ['pod ns/p30 is annotated autoscaling.bamel.io/do-not-disrupt: "true" (+1 more)']);
  const long = s.machines?.find((x) => x.name === 'next')?.blockers?.[0] ?? '';
  t.ok(long.length <= 200 && long.endsWith('...'), 'a long reason is cut to one short line');
  t.equal(blockerLine(['a', 'b', 'c']), 'a (+2 more)');
  t.equal(compactStatus({ machines: [m('a', 'Ready')], blockedMachines: 3 }, NOW).blockedMachines, 0, 'the count goes to 0, not away');
});

t.test('a large fleet: no power readings, the learned state of machines at rest packed (and read back whole)', async (t) => {
  const machines: MachineStatus[] = [];
  for (let i = 0; i <= LARGE_FLEET_MACHINES; i++) {
    machines.push(
      m(`m${String(i).padStart(4, '0')}`, i % 2 === 0 ? 'Off' : 'Ready', {
        power: { watts: i % 2 === 0 ? 0 : 180, observedAt: '2026-12-07T11:00:00Z', source: 'inventory' },
        boot: { lastSeconds: 200 + (i % 50), p90Seconds: 250, samples: 4, recentSeconds: [250, 230, 240, 200 + (i % 50)] },
        powerCycles: { last24h: 1, powerOffs: [Date.parse('2026-12-07T10:59:30Z') / 1000] },
      }),
    );
  }
  const status: BareMetalAutoscalerStatus = { machines };
  const s = compactStatus(status, NOW);
  t.ok((s.machines ?? []).every((x) => x.power === undefined && x.boot === undefined && x.powerCycles === undefined));
  t.type(s.learned, 'string');
  const small = compactStatus({ machines: machines.slice(0, LARGE_FLEET_MACHINES) }, NOW);
  t.ok((small.machines ?? []).every((x) => x.power !== undefined && x.boot !== undefined), 'at the threshold nothing moves');
  const back = unpackLearned(s).machines ?? [];
  t.same(
    back.map((x) => [x.boot, x.powerCycles]),
    machines.map((x) => [x.boot, x.powerCycles]),
    'what the controller reads back is what it learned',
  );
  t.same(compactStatus(s, NOW), s, 'idempotent over the packed form');
  t.ok(JSON.stringify(s).length < JSON.stringify(status).length / 3, 'a third of the size at most');
});
