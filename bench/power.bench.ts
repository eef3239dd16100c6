// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/power.bench.ts
//        [--runs N] [--ipmi-bmcs N] [--rounds N] [--no-sushy]
//
// What the power drivers cost, printed (nothing is asserted; about 2 to 3 minutes):
// (a) the time of one power operation (status; on; off --force; graceful off) per driver:
//     RedfishDriver against the project's Redfish fake (generic and task-monitor profiles)
//     and against the real sushy-tools emulator, IpmiDriver against OpenIPMI's ipmi_sim;
// (b) the CPU the controller's process spends keeping the power state of 100 BMCs fresh:
//     a status() of every BMC per round, at a 30 s interval, per round and per BMC-minute,
//     Redfish (HTTPS and HTTP) against IPMI (ipmitool children included).
// The simulators of (b) run in a child process (this file with --sim-host), so that
// process.cpuUsage() of this one is the poller's alone.
// This file holds the run and part (a); part (b) is in helpers/power-polling.ts, its
// simulator host in helpers/power-sim-host.ts.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freeUdpPort, IpmiSimBmc } from '../sim/ipmi-sim.js';
import { RedfishFakeServer, type AddSystemOptions } from '../sim/redfish-fake.js';
import { parseBmcAddress } from '../power/address.js';
import { BmcCredentials } from '../power/credentials.js';
import type { PowerDriver } from '../power/driver.js';
import { IpmiDriver, type IpmiDriverOptions } from '../power/ipmi/driver.js';
import { RedfishDriver, type RedfishDriverOptions } from '../power/redfish.js';
import { startSushy, type SushyEmulator } from '../test/helpers/sushy.js';
import { ms, timed } from './helpers/power-figures.js';
import { pollingCosts, printPollingCosts, type PollingPlan } from './helpers/power-polling.js';
import { runSimHost, startSimHost, type SimHost } from './helpers/power-sim-host.js';
import { percentile } from './helpers/stats.js';

const thisFile = fileURLToPath(import.meta.url);

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? undefined : Number(process.argv[i + 1]);
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

const RUNS = flag('runs', 40);
const CYCLES = Math.max(2, Math.round(RUNS / 5));
const POLLED_BMCS = 100;
const IPMI_BMCS = Math.min(POLLED_BMCS, flag('ipmi-bmcs', POLLED_BMCS));
const ROUNDS = flag('rounds', 3);
// The controller's interval; the bench polls faster and scales, see pollingCost() in helpers/power-polling.ts.
const CONTROLLER_INTERVAL_S = 30;
// Longer than undici's keep-alive (4 s) and Node's server keep-alive (5 s): every round
// opens new connections, as every poll does at a 30 s interval.
const BENCH_INTERVAL_MS = 6_000;
const CONCURRENCY = 10;
const USERNAME = 'admin';
const PASSWORD = 'bench-Pw-5c2e';
const POLLING: PollingPlan = {
  polledBmcs: POLLED_BMCS,
  rounds: ROUNDS,
  concurrency: CONCURRENCY,
  controllerIntervalS: CONTROLLER_INTERVAL_S,
  benchIntervalMs: BENCH_INTERVAL_MS,
  username: USERNAME,
  password: PASSWORD,
};

// ---------------------------------------------------------------------------------------
// Figures

interface Row {
  driver: string;
  operation: string;
  samples: number[];
  /** Requests (HTTP) or ipmitool runs per operation, when counted. */
  perOp?: number[];
  note?: string;
}

const rows: Row[] = [];

function printRow(row: Row): void {
  const n = String(row.samples.length).padStart(3);
  const per = row.perOp === undefined || row.perOp.length === 0 ? '' : `  ${(row.perOp.reduce((a, b) => a + b, 0) / row.perOp.length).toFixed(1)} per op`;
  console.log(
    `  ${row.driver.padEnd(28)} ${row.operation.padEnd(14)} n=${n}  p50 ${ms(percentile(row.samples, 50)).padStart(9)}  p95 ${ms(percentile(row.samples, 95)).padStart(9)}${per}${row.note ? `  ${row.note}` : ''}`,
  );
}

function record(row: Row): void {
  rows.push(row);
  printRow(row);
}

/**
 * status() RUNS times, then CYCLES of on, off --force, on, graceful off; `count` reads a
 * counter of what reached the BMC (HTTP requests, chassis commands).
 */
async function operations(label: string, driver: PowerDriver, count: () => number, cycles = CYCLES, runs = RUNS, notes: Partial<Record<string, string>> = {}): Promise<void> {
  await driver.status();
  const series = new Map<string, { samples: number[]; perOp: number[] }>();
  const one = async (operation: string, fn: () => Promise<unknown>): Promise<void> => {
    const before = count();
    const { ms: took } = await timed(fn);
    const entry = series.get(operation) ?? { samples: [], perOp: [] };
    entry.samples.push(took);
    entry.perOp.push(count() - before);
    series.set(operation, entry);
  };
  for (let i = 0; i < runs; i++) await one('status', () => driver.status());
  if ((await driver.status()) === 'on') await driver.powerOff({ force: true });
  for (let i = 0; i < cycles; i++) {
    await one('on', () => driver.powerOn());
    await one('off --force', () => driver.powerOff({ force: true }));
    await one('on', () => driver.powerOn());
    await one('graceful off', () => driver.powerOff());
  }
  for (const [operation, { samples, perOp }] of series) {
    const note = notes[operation];
    record({ driver: label, operation, samples, perOp, ...(note === undefined ? {} : { note }) });
  }
}

// ---------------------------------------------------------------------------------------
// (a) Round trips

const FAST_POLL: Partial<RedfishDriverOptions> = { pollIntervalMs: 10, maxPollIntervalMs: 10, gracefulTimeoutMs: 30_000 };

async function redfishFakeRoundTrips(): Promise<void> {
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await server.start();
  let requests = 0;
  server.onRequest(() => requests++);
  const systems: AddSystemOptions[] = [
    { id: 'generic', machine: 'bench-generic', credentials: { username: USERNAME, password: PASSWORD } },
    { id: 'defaults', machine: 'bench-defaults', credentials: { username: USERNAME, password: PASSWORD } },
    // A BMC whose Reset runs as a task of 200 ms, polled as its Retry-After (1 s) says.
    { id: 'task', machine: 'bench-task', credentials: { username: USERNAME, password: PASSWORD }, profile: 'task-monitor', quirks: { taskMs: 200, retryAfterSeconds: 1 } },
  ];
  for (const s of systems) server.addSystem(s);
  const credentials = new BmcCredentials(USERNAME, PASSWORD);
  const driverFor = (id: string, opts: Partial<RedfishDriverOptions>) => new RedfishDriver({ address: parseBmcAddress(server.addressOf(id)), credentials, ...opts });
  try {
    const generic = driverFor('generic', FAST_POLL);
    await operations('redfish fake, generic', generic, () => requests);
    await generic.close();

    // The same BMC with the driver's defaults: the first re-read after a Reset waits 1 s.
    const defaults = driverFor('defaults', {});
    await operations('redfish fake, default poll', defaults, () => requests, 1, 0);
    await defaults.close();

    const task = driverFor('task', FAST_POLL);
    await operations('redfish fake, task-monitor', task, () => requests, 2, RUNS, {
      on: 'Retry-After 1 s',
      'off --force': 'Retry-After 1 s',
      'graceful off': 'Retry-After 1 s',
    });
    await task.close();
  } finally {
    await server.stop();
  }
}

async function sushyRoundTrips(whileWaiting: () => void): Promise<void> {
  const systems = 10;
  let sushy: SushyEmulator;
  try {
    sushy = await startSushy({ systems: Array.from({ length: systems }, (_, i) => ({ name: `bench-s-${i}`, power: 'Off' as const })), username: USERNAME, password: PASSWORD });
  } catch (err) {
    console.log(`  sushy-tools emulator: not run (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); install it with hack/install-sushy.sh`);
    whileWaiting();
    return;
  }
  const credentials = new BmcCredentials(USERNAME, PASSWORD);
  const drivers = sushy.systems.map(
    (s) =>
      new RedfishDriver({
        address: parseBmcAddress(`${sushy.url.replace(/^http/, 'redfish+http')}${s.path}`),
        credentials,
        pollIntervalMs: 250,
        maxPollIntervalMs: 250,
        gracefulTimeoutMs: 60_000,
        timeouts: { operationMs: 90_000 },
      }),
  );
  try {
    const first = drivers[0] as RedfishDriver;
    await first.status();
    const status: number[] = [];
    for (let i = 0; i < RUNS; i++) status.push((await timed(() => first.status())).ms);
    record({ driver: 'sushy-tools emulator', operation: 'status', samples: status });
    whileWaiting();
    // Its fake driver lands a power change 1 to 11 s after the Reset (random), so the
    // systems run side by side: one round of on, then off (half forced, half graceful).
    const on = await Promise.all(drivers.map(async (d) => (await timed(() => d.powerOn())).ms));
    const offs = await Promise.all(drivers.map(async (d, i) => ({ graceful: i % 2 === 1, ms: (await timed(() => d.powerOff(i % 2 === 1 ? {} : { force: true }))).ms })));
    const note = 'its power delay: 1-11 s';
    record({ driver: 'sushy-tools emulator', operation: 'on', samples: on, note });
    record({ driver: 'sushy-tools emulator', operation: 'off --force', samples: offs.filter((o) => !o.graceful).map((o) => o.ms), note });
    record({ driver: 'sushy-tools emulator', operation: 'graceful off', samples: offs.filter((o) => o.graceful).map((o) => o.ms), note });
  } finally {
    for (const d of drivers) await d.close();
    await sushy.stop();
  }
}

const IPMI_BENCH_GAP_MS = 20;

async function ipmiRoundTrips(scratch: string): Promise<Row[]> {
  const port = await freeUdpPort();
  const sim = await IpmiSimBmc.start({
    machine: 'bench-ipmi',
    host: '127.0.0.1',
    port,
    credentials: { username: USERNAME, password: PASSWORD },
    gracefulShutdownMs: 0,
    workDir: join(scratch, 'ipmi-rt'),
  });
  let commands = 0;
  sim.onRequest(() => commands++);
  const options: IpmiDriverOptions = {
    address: parseBmcAddress(`ipmi://127.0.0.1:${port}`),
    credentials: new BmcCredentials(USERNAME, PASSWORD),
    minGapMs: IPMI_BENCH_GAP_MS,
    pollIntervalMs: 20,
  };
  const driver = new IpmiDriver(options);
  const before = rows.length;
  try {
    await operations(`ipmi_sim, gap ${IPMI_BENCH_GAP_MS} ms`, driver, () => commands, Math.max(2, Math.round(CYCLES / 2)), Math.max(10, Math.round(RUNS / 2)));
  } finally {
    await driver.close();
    await sim.stop();
  }
  return rows.slice(before);
}

/** What the same operations take with the driver's default 5 s between ipmitool runs. */
function ipmiDefaultGapFloor(measured: Row[]): void {
  const gapS = 5;
  console.log(`  with the default minGapMs (5000 ms, as Ironic), every ipmitool run after the first of an`);
  console.log(`  operation waits out the gap: expected floor = (runs - 1) x ${gapS} s + the time measured above,`);
  console.log(`  and ${gapS} s more when the previous command to that BMC ended less than ${gapS} s before:`);
  for (const row of measured) {
    const runs = row.perOp === undefined ? 1 : Math.min(...row.perOp);
    const floor = (runs - 1) * gapS * 1000 + percentile(row.samples, 50);
    console.log(`  ${'ipmi_sim, default gap'.padEnd(28)} ${row.operation.padEnd(14)} ${String(runs)} runs  >= ${ms(floor).padStart(9)} (back to back >= ${ms(floor + gapS * 1000)})`);
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(`power bench: node ${process.version}, load average ${load}`);
  console.log('');
  console.log(`(a) one power operation, start to the BMC reporting the state; p50/p95 over n runs`);
  console.log(`    Redfish fake: pollIntervalMs 10 (the driver's first re-read after a Reset waits for it;`);
  console.log(`    the "default poll" rows keep the default 1000 ms); "per op" is HTTP requests per operation`);
  await redfishFakeRoundTrips();
  // The simulators of (b) start while sushy's power changes are pending (idle waiting),
  // and are idle themselves by the time anything is measured again.
  let host: Promise<SimHost> | undefined;
  const startHost = (): void => {
    if (host !== undefined) return;
    host = startSimHost(thisFile, IPMI_BMCS);
    // Awaited below; until then a failure must not count as unhandled.
    host.catch(() => undefined);
  };
  if (!process.argv.includes('--no-sushy')) {
    console.log(`    sushy-tools emulator (real, Basic auth, no sessions): pollIntervalMs 250; its power changes land 1-11 s`);
    console.log(`    after the Reset, so on/off measure that delay, not the driver; status is the driver's round trip`);
    await sushyRoundTrips(startHost);
  }
  startHost();
  const simHost = await (host as Promise<SimHost>);
  console.log(`    ipmi_sim: minGapMs ${IPMI_BENCH_GAP_MS} (default 5000) and pollIntervalMs 20; "per op" is ipmitool runs per operation`);
  const scratch = await mkdtemp(join(tmpdir(), 'bamel-power-bench-'));
  try {
    const ipmi = await ipmiRoundTrips(scratch);
    ipmiDefaultGapFloor(ipmi);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  printPollingCosts(await pollingCosts(simHost, POLLING), POLLING);
  console.log('');
  console.log(`power bench: done in ${ms(performance.now() - started)}`);
}

if (process.argv.includes('--sim-host')) await runSimHost({ polledBmcs: POLLED_BMCS, ipmiBmcs: IPMI_BMCS, username: USERNAME, password: PASSWORD });
else await main();
