import type { MapSnapshot } from './addon.js';

/**
 * The layout of `struct traffic_counters` (bpf/traffic.h): eight little-endian u64, in this
 * order. Per-CPU values are summed here, in user space, so the kernel side never takes a lock.
 */
export const COUNTER_FIELDS = ['rxPackets', 'rxBytes', 'txPackets', 'txBytes', 'syns', 'httpRequests', 'http2Requests', 'retransmits'] as const;
export type CounterField = (typeof COUNTER_FIELDS)[number];
export type TrafficCounters = Record<CounterField, number>;

const VALUE_SIZE = COUNTER_FIELDS.length * 8;

export function zeroCounters(): TrafficCounters {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, syns: 0, httpRequests: 0, http2Requests: 0, retransmits: 0 };
}

export function addCounters(into: TrafficCounters, c: TrafficCounters): TrafficCounters {
  for (const f of COUNTER_FIELDS) into[f] += c[f];
  return into;
}

/** Decodes a snapshot of the `counters` map: cgroup id → totals over every CPU. */
export function decodeCounters(s: MapSnapshot): Map<bigint, TrafficCounters> {
  if (s.keySize !== 8) throw new Error(`counters map: key size ${s.keySize}, expected 8 (a cgroup id)`);
  if (s.valueSize !== VALUE_SIZE) throw new Error(`counters map: value size ${s.valueSize}, expected ${VALUE_SIZE}: bpf/traffic.h and bpf/counters.ts disagree`);
  const stride = s.slotSize * s.cpus;
  if (s.keys.length < s.count * 8 || s.values.length < s.count * stride) throw new Error(`counters map: snapshot of ${s.count} entries is truncated`);
  const out = new Map<bigint, TrafficCounters>();
  for (let i = 0; i < s.count; i++) {
    const id = s.keys.readBigUInt64LE(i * 8);
    const c = zeroCounters();
    for (let cpu = 0; cpu < s.cpus; cpu++) {
      const base = i * stride + cpu * s.slotSize;
      COUNTER_FIELDS.forEach((f, j) => {
        c[f] += Number(s.values.readBigUInt64LE(base + j * 8));
      });
    }
    out.set(id, c);
  }
  return out;
}

/** Decodes a per-CPU array of u64 (the `overflow` map): slot → sum over CPUs. */
export function decodePerCpuU64Array(s: MapSnapshot): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.count; i++) {
    let sum = 0;
    for (let cpu = 0; cpu < s.cpus; cpu++) sum += Number(s.values.readBigUInt64LE(i * s.slotSize * s.cpus + cpu * s.slotSize));
    out.push(sum);
  }
  return out;
}
