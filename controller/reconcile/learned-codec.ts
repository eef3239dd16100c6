import type { BareMetalAutoscalerStatus, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { p90 } from '../boot-times.js';

/**
 * The learned state of a large fleet's machines at rest, packed: boot times, break-even
 * holds and power-offs must survive a leader change, so they stay in status; but as
 * `boot`/`breakEven`/`powerCycles` objects they take ~200 bytes a machine, too much for
 * 10,000 machines under etcd's 1.5 MiB. Packed, they take ~25.
 *
 * `status.learned` holds one entry per status.machines[] element, in the same order,
 * separated by spaces (an empty entry: nothing packed for that machine). An entry is up to
 * three parts, each after its capital letter, numbers in base 36:
 *
 * - `B<samples>:[<w>.]<recent boots, each w digits, 2 unless said>` (lastSeconds is the last, p90Seconds their
 *   p90), then `=<lastSeconds>,<p90Seconds>` if these differ from what the boots give;
 *   `B<samples>=<lastSeconds>,<p90Seconds>` without recent boots;
 * - `O<power-off>,<power-off>...`, each as seconds before the machine's `since` (a minus
 *   sign when after it; last24h is how many);
 * - `H<seconds>/<holdSeconds>[/<lastOffSeconds>]`;
 * - `P<powerCyclesToday>/<powerCyclesDay as days since 1970-01-01>`.
 *
 * A machine at rest is Off, Ready or Failed with no operation, drain or boot in flight; any other
 * machine keeps its objects. Pure; unpack(pack(x)) gives x back.
 */

const AT_REST = new Set<MachineStatus['phase']>(['Off', 'Ready', 'Failed']);
const DAY_MS = 86_400_000;
/** The width of a recent boot (base 36 digits) when the entry does not say. */
const WIDTH = 2;
const b36 = (n: number): string => Math.max(0, Math.round(n)).toString(36);
const n36 = (s: string): number => parseInt(s, 36);
const signed = (n: number): string => (n < 0 ? `-${b36(-n)}` : b36(n));

export function atRest(m: MachineStatus): boolean {
  return AT_REST.has(m.phase) && m.operation === undefined && m.drain === undefined && m.boot?.startedAt === undefined && m.boot?.expectedReadyAt === undefined;
}

/** The machines with their learned objects of machines at rest taken out, and the packed column. */
export function packLearned(machines: readonly MachineStatus[]): { machines: MachineStatus[]; learned?: string } {
  const entries: string[] = [];
  const out = machines.map((m) => {
    if (!atRest(m) || (m.boot === undefined && m.breakEven === undefined && m.powerCycles === undefined && m.powerCyclesToday === undefined)) {
      entries.push('');
      return m;
    }
    const { boot, breakEven, powerCycles, powerCyclesToday, powerCyclesDay, ...rest } = m;
    const day = powerCyclesDay !== undefined ? Date.parse(`${powerCyclesDay}T00:00:00Z`) / DAY_MS : NaN;
    const today = powerCyclesToday !== undefined && Number.isInteger(day) ? `P${b36(powerCyclesToday)}/${b36(day)}` : '';
    const since = Math.floor(Date.parse(m.since) / 1000);
    entries.push(`${boot ? `B${bootPart(boot)}` : ''}${powerCycles ? `O${powerCycles.powerOffs.map((t) => signed(since - t)).join(',')}` : ''}${breakEven ? `H${[breakEven.seconds, breakEven.holdSeconds, ...(breakEven.lastOffSeconds !== undefined ? [breakEven.lastOffSeconds] : [])].map(b36).join('/')}` : ''}${today}`);
    return rest;
  });
  if (entries.every((e) => e === '')) return { machines: out };
  let last = entries.length;
  while (last > 0 && entries[last - 1] === '') last--;
  return { machines: out, learned: entries.slice(0, last).join(' ') };
}

type Boot = NonNullable<MachineStatus['boot']>;

function bootPart(boot: Boot): string {
  const ring = boot.recentSeconds ?? [];
  if (ring.length === 0) return `${b36(boot.samples)}=${b36(boot.lastSeconds)},${b36(boot.p90Seconds)}`;
  const width = Math.max(...ring.map((s) => b36(s).length));
  const derived = ring[ring.length - 1] === boot.lastSeconds && p90(ring) === boot.p90Seconds;
  const w = Math.max(WIDTH, width);
  return `${b36(boot.samples)}:${w === WIDTH ? '' : `${w}.`}${ring.map((s) => b36(s).padStart(w, '0')).join('')}${derived ? '' : `=${b36(boot.lastSeconds)},${b36(boot.p90Seconds)}`}`;
}

/** The status with every machine's learned objects back in place (as the controller reads it). */
export function unpackLearned(status: BareMetalAutoscalerStatus): BareMetalAutoscalerStatus {
  if (status.learned === undefined || status.machines === undefined) return status;
  const { learned, ...rest } = status;
  const entries = learned.split(' ');
  return { ...rest, machines: status.machines.map((m, i) => unpackEntry(m, entries[i] ?? '')) };
}

function unpackEntry(m: MachineStatus, entry: string): MachineStatus {
  if (entry === '') return m;
  const out: MachineStatus = { ...m };
  for (const part of entry.match(/[BOHP][^BOHP]*/g) ?? []) {
    const body = part.slice(1);
    if (part[0] === 'P') {
      const [count, day] = body.split('/').map(n36);
      if (count !== undefined && day !== undefined && Number.isFinite(count) && Number.isFinite(day)) {
        out.powerCyclesToday = count;
        out.powerCyclesDay = new Date(day * DAY_MS).toISOString().slice(0, 10);
      }
    } else if (part[0] === 'B') {
      const boot = parseBoot(body);
      if (boot) out.boot = boot;
    } else if (part[0] === 'O') {
      const since = Math.floor(Date.parse(m.since) / 1000);
      const offs = body.split(',').filter((s) => s !== '').map((d) => since - n36(d)).filter(Number.isFinite);
      if (offs.length > 0) out.powerCycles = { last24h: offs.length, powerOffs: offs };
    } else {
      const [seconds, hold, lastOff] = body.split('/').map(n36);
      if (seconds !== undefined && hold !== undefined && Number.isFinite(seconds) && Number.isFinite(hold)) {
        out.breakEven = { seconds, holdSeconds: hold, ...(lastOff !== undefined && Number.isFinite(lastOff) ? { lastOffSeconds: lastOff } : {}) };
      }
    }
  }
  return out;
}

function parseBoot(body: string): Boot | undefined {
  const [head = '', explicit] = body.split('=');
  const [samplesText = '', ringText] = head.split(':');
  const samples = n36(samplesText);
  if (!Number.isFinite(samples)) return undefined;
  const ring: number[] = [];
  if (ringText !== undefined && ringText.length > 0) {
    const dot = ringText.indexOf('.');
    const width = dot > 0 ? Number(ringText.slice(0, dot)) : WIDTH;
    for (let i = dot + 1; width > 0 && i + width <= ringText.length; i += width) ring.push(n36(ringText.slice(i, i + width)));
  }
  const [last, p] = (explicit ?? '').split(',').map(n36);
  const lastSeconds = last !== undefined && Number.isFinite(last) ? last : ring[ring.length - 1];
  const p90Seconds = p !== undefined && Number.isFinite(p) ? p : p90(ring);
  if (lastSeconds === undefined) return undefined;
  return { lastSeconds, p90Seconds, samples, ...(ring.length > 0 ? { recentSeconds: ring } : {}) };
}
