/**
 * Both ends of the power bench's simulator host: the child process that holds the 100
 * simulated BMCs of part (b), so that process.cpuUsage() of the bench is the poller's alone.
 * The bench starts it as itself with --sim-host; the child prints one "ready" line with the
 * BMC addresses and stops when its stdin ends.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { freeUdpPort, IpmiSimBmc } from '../../sim/ipmi-sim.js';
import { RedfishFakeServer, type AddSystemOptions } from '../../sim/redfish-fake.js';

const execFileP = promisify(execFile);

/** What the child serves: as many Redfish systems over HTTPS and over HTTP, and ipmiBmcs ipmi_sim, with these credentials. */
export interface SimHostPlan {
  polledBmcs: number;
  ipmiBmcs: number;
  /** The IPMI user; Redfish system i has the user u000, u001, ... */
  username: string;
  password: string;
}

export interface SimHostReady {
  event: 'ready';
  redfishHttps: string[];
  redfishHttp: string[];
  ipmi: string[];
  startMs: number;
}

/** The child process holding the simulators of (b). */
export async function startSimHost(benchFile: string, ipmiBmcs: number): Promise<{ ready: SimHostReady; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [...process.execArgv, benchFile, '--sim-host', '--ipmi-bmcs', String(ipmiBmcs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = await new Promise<SimHostReady>((resolve, reject) => {
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as SimHostReady);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    void exited.then(() => reject(new Error('the simulator host exited before it was ready')));
  });
  return {
    ready,
    child,
    stop: async () => {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export type SimHost = Awaited<ReturnType<typeof startSimHost>>;

/** The child's side: starts the simulators, prints the ready line, and stops them when stdin ends. */
export async function runSimHost(plan: SimHostPlan): Promise<void> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'bamel-power-bench-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  // A BMC's usual certificate: self-signed RSA 2048.
  await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  const https = new RedfishFakeServer({ host: '127.0.0.1', port: 0, tls: { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') } });
  const http = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await https.start();
  await http.start();
  const redfishHttps: string[] = [];
  const redfishHttp: string[] = [];
  for (let i = 0; i < plan.polledBmcs; i++) {
    const id = `poll-${String(i).padStart(3, '0')}`;
    // Each BMC its own user, so that each driver's session is its BMC's alone.
    const opts: AddSystemOptions = { id, machine: id, credentials: { username: `u${String(i).padStart(3, '0')}`, password: plan.password }, initialPower: i % 2 === 0 ? 'on' : 'off' };
    redfishHttps.push(https.addressOf(https.addSystem(opts)));
    redfishHttp.push(http.addressOf(http.addSystem(opts)));
  }
  const sims: IpmiSimBmc[] = [];
  const batch = 10;
  for (let i = 0; i < plan.ipmiBmcs; i += batch) {
    const batchSims = await Promise.all(
      Array.from({ length: Math.min(batch, plan.ipmiBmcs - i) }, async (_, j) => {
        const port = await freeUdpPort();
        return IpmiSimBmc.start({
          machine: `poll-ipmi-${i + j}`,
          host: '127.0.0.1',
          port,
          credentials: { username: plan.username, password: plan.password },
          initialPower: (i + j) % 2 === 0 ? 'on' : 'off',
          workDir: join(dir, `ipmi-${i + j}`),
        });
      }),
    );
    sims.push(...batchSims);
  }
  const ready: SimHostReady = { event: 'ready', redfishHttps, redfishHttp, ipmi: sims.map((s) => `ipmi://${s.host}:${s.port}`), startMs: performance.now() - started };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  // Until the bench closes stdin (or dies: then stdin ends too).
  await new Promise<void>((resolve) => {
    process.stdin.on('data', () => undefined);
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
  });
  await Promise.all(sims.map((s) => s.stop()));
  await https.stop();
  await http.stop();
  await rm(dir, { recursive: true, force: true });
}

