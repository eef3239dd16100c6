import t from 'tap';
import type { MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { recordBoot } from '../../../controller/boot-times.js';
import { atRest, packLearned, unpackLearned } from '../../../controller/reconcile/learned-codec.js';

const SINCE = '2026-12-07T10:00:00Z';
const SINCE_S = Date.parse(SINCE) / 1000;

function booted(...boots: number[]): NonNullable<MachineStatus['boot']> {
  let b: MachineStatus['boot'];
  for (const s of boots) b = recordBoot(b, s);
  return b as NonNullable<MachineStatus['boot']>;
}

const m = (name: string, phase: MachineStatus['phase'], extra: Partial<MachineStatus> = {}): MachineStatus => ({ name, phase, since: SINCE, ...extra });

const MACHINES: MachineStatus[] = [
  m('a', 'Off', { boot: booted(246, 259, 272, 285, 208, 221, 234, 247, 260, 273, 251), powerCycles: { last24h: 2, powerOffs: [SINCE_S - 50_000, SINCE_S - 20] } }),
  m('b', 'Ready', { boot: booted(1900, 2100), breakEven: { seconds: 900, holdSeconds: 1800, lastOffSeconds: 300 }, powerCyclesToday: 2, powerCyclesDay: '2026-12-07', unneededSince: SINCE }),
  m('c', 'PoweringOn', { boot: { ...booted(240), startedAt: SINCE }, operation: { id: 'on-1', action: 'PowerOn', startedAt: SINCE } }),
  m('d', 'Failed', { boot: { lastSeconds: 240, p90Seconds: 250, samples: 40 }, breakEven: { seconds: 700, holdSeconds: 120 }, reason: 'JoinTimeout', message: 'x', failures: 2 }),
  m('e', 'Ready', { powerCycles: { last24h: 1, powerOffs: [SINCE_S + 30] } }),
  m('f', 'Off'),
  m('g', 'Off', { boot: { lastSeconds: 100, p90Seconds: 300, samples: 3, recentSeconds: [300, 280, 100] } }),
  m('h', 'Joining', { boot: booted(200) }),
];

t.test('packs the learned objects of machines at rest and unpacks them as they were', async (t) => {
  const packed = packLearned(MACHINES);
  t.type(packed.learned, 'string');
  for (const x of packed.machines) {
    if (atRest(x)) t.notOk(x.boot ?? x.breakEven ?? x.powerCycles ?? x.powerCyclesToday, `${x.name}: its learned objects are packed`);
  }
  t.same(packed.machines.find((x) => x.name === 'c'), MACHINES[2], 'a boot in flight keeps its objects');
  t.same(packed.machines.find((x) => x.name === 'h'), MACHINES[7], 'a joining machine keeps its objects');
  t.same(packed.machines.find((x) => x.name === 'b')?.unneededSince, SINCE, 'other fields stay in place');
  const entries = (packed.learned ?? '').split(' ');
  t.equal(entries.length, 7, 'one entry per machine, the trailing empty ones left out');
  t.equal(entries[2], '', 'an empty entry for a machine with nothing packed');
  t.equal(entries[5], '', 'a machine without learned state packs nothing');
  t.ok((packed.learned ?? '').length < 140, `compact: ${packed.learned ?? ''}`);
  t.same(unpackLearned({ machines: packed.machines, ...(packed.learned ? { learned: packed.learned } : {}) }).machines, MACHINES, 'unpack(pack(x)) is x');
});

t.test('boots over 1295 s take wider numbers; a p90 that is not the ring’s is kept as given', async (t) => {
  const packed = packLearned([MACHINES[1] as MachineStatus, MACHINES[6] as MachineStatus]);
  t.match(packed.learned, /^B2:3\./, 'width 3 said');
  t.match(packed.learned, / B3:[0-9a-z]{6}$/, 'the ring of g, its p90 derived');
  const odd = m('x', 'Off', { boot: { lastSeconds: 100, p90Seconds: 999, samples: 3, recentSeconds: [300, 280, 100] } });
  const back = unpackLearned({ machines: packLearned([odd]).machines, learned: packLearned([odd]).learned ?? '' });
  t.same(back.machines?.[0]?.boot, odd.boot);
});

t.test('nothing to pack: no column', async (t) => {
  const plain = [m('a', 'Off'), m('b', 'PoweringOn', { boot: booted(100), operation: { id: 'on', action: 'PowerOn', startedAt: SINCE } })];
  t.same(packLearned(plain), { machines: plain });
  t.same(unpackLearned({ machines: plain }), { machines: plain }, 'a status without the column is as it was');
});

t.test('unpacking tolerates what it cannot read and a column shorter than the list', async (t) => {
  const s = unpackLearned({ machines: [m('a', 'Off'), m('b', 'Off'), m('c', 'Off')], learned: 'Bzz!:??Hq O' });
  t.equal(s.learned, undefined, 'the column is read into the machines');
  t.equal(s.machines?.length, 3);
  t.same(s.machines?.[1], m('b', 'Off'));
  t.same(s.machines?.[2], m('c', 'Off'));
  t.same(s.machines?.[0]?.breakEven, undefined, 'a break-even part without its numbers is dropped');
});
