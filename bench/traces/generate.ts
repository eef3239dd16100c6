// Writes the shipped traces of `bamel simulate` and `make bench-energy` (same seed, same files):
//   TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/traces/generate.ts
//
//   diurnal.csv   a week of web traffic: replicas come and go with the day (peak mid-afternoon,
//                 trough before dawn), weekends at 40 % of a weekday; about 50,000 pods
//   batch.csv     an HPC/batch queue: large jobs (8–32 cores) submitted in bursts during working
//                 hours, running 30 min to 6 h, the nights and the weekend draining the queue
//   spiky.csv     a small steady service with flash crowds: a few times a day hundreds of
//                 short pods within minutes
// The inventory (inventory.yaml: 50 machines of 32 cores) and the autoscaler (autoscaler.yaml)
// beside them are written by hand, as are small.csv (three waves of pods over four hours) with
// small-inventory.yaml and small-autoscaler.yaml, for the tests and make demo.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom, type Random } from '../helpers/random.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DAY = 86_400;
const WEEK = 7 * DAY;

interface Row {
  at: number;
  name: string;
  cpu: string;
  memory: string;
  duration: number;
}

/** Arrivals of a Poisson process with rate `rate(t)` (per second, at most `peak`), by thinning. */
function arrivals(r: Random, horizon: number, peak: number, rate: (t: number) => number): number[] {
  const out: number[] = [];
  let t = 0;
  for (;;) {
    t += -Math.log(1 - r.next()) / peak;
    if (t >= horizon) return out;
    if (r.next() * peak < rate(t)) out.push(t);
  }
}

/** A lognormal draw with the given median, clamped. */
function lognormal(r: Random, median: number, sigma: number, min: number, max: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
  return Math.min(max, Math.max(min, median * Math.exp(sigma * z)));
}

/** 0..1 over the day: lowest at 04:00, highest at 15:00. */
function dayShape(t: number): number {
  const h = (t % DAY) / 3600;
  return 0.5 - 0.5 * Math.cos((2 * Math.PI * (h - 4)) / 24) ** 1;
}

function weekday(t: number): boolean {
  return Math.floor(t / DAY) % 7 < 5;
}

function diurnal(r: Random): Row[] {
  // Replicas: 1, 2 or 4 cores (4 GiB a core); median 50 minutes.
  const rate = (t: number): number => (weekday(t) ? 1 : 0.4) * (0.15 + 0.85 * dayShape(t)) * 0.175;
  return arrivals(r, WEEK, 0.175, rate).map((at, i) => {
    const cores = [1, 1, 2, 2, 2, 4][r.int(6)] as number;
    return { at: Math.round(at), name: `web-${i}`, cpu: String(cores), memory: `${cores * 4}Gi`, duration: Math.round(lognormal(r, 3000, 0.5, 300, 4 * 3600)) };
  });
}

function batch(r: Random): Row[] {
  const rows: Row[] = [];
  let i = 0;
  for (let day = 0; day < 7; day++) {
    if (!weekday(day * DAY)) continue;
    // Bursts: a team submits an array of jobs, 6–10 times a working day.
    const bursts = 6 + r.int(5);
    for (let b = 0; b < bursts; b++) {
      const at = day * DAY + (8 + r.next() * 10) * 3600;
      const jobs = 4 + r.int(20);
      const cores = [8, 16, 16, 32][r.int(4)] as number;
      const duration = Math.round(lognormal(r, 2 * 3600, 0.6, 1800, 6 * 3600));
      for (let j = 0; j < jobs; j++) {
        rows.push({ at: Math.round(at + j * 2), name: `job-${i++}`, cpu: String(cores), memory: `${cores * 6}Gi`, duration: Math.round(duration * (0.8 + 0.4 * r.next())) });
      }
    }
  }
  return rows.sort((a, b) => a.at - b.at);
}

function spiky(r: Random): Row[] {
  const rows: Row[] = [];
  let i = 0;
  // The steady part: small replicas, about 8 running at any time.
  for (const at of arrivals(r, WEEK, 0.005, () => 0.005)) {
    rows.push({ at: Math.round(at), name: `svc-${i++}`, cpu: '2', memory: '4Gi', duration: Math.round(lognormal(r, 1800, 0.4, 600, 7200)) });
  }
  // Flash crowds: 3–5 a day, 150–400 pods within 3 minutes, for 10–30 minutes.
  for (let day = 0; day < 7; day++) {
    const spikes = 3 + r.int(3);
    for (let s = 0; s < spikes; s++) {
      const at = day * DAY + r.next() * DAY;
      const pods = 150 + r.int(251);
      const lasts = 600 + r.int(1200);
      for (let p = 0; p < pods; p++) {
        rows.push({ at: Math.round(at + r.next() * 180), name: `spike-${i++}`, cpu: '1', memory: '2Gi', duration: Math.round(lasts * (0.7 + 0.6 * r.next())) });
      }
    }
  }
  return rows.sort((a, b) => a.at - b.at);
}

function write(file: string, rows: Row[]): void {
  const text = ['at,name,cpu,memory,duration', ...rows.map((p) => `${p.at},${p.name},${p.cpu},${p.memory},${p.duration}`)].join('\n');
  writeFileSync(join(HERE, file), `${text}\n`);
  process.stdout.write(`${file}: ${rows.length} pods\n`);
}

write('diurnal.csv', diurnal(seededRandom(17)));
write('batch.csv', batch(seededRandom(18)));
write('spiky.csv', spiky(seededRandom(19)));
