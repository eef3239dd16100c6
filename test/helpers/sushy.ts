import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The real sushy-tools Redfish emulator (its fake driver: no libvirt), for tests that
 * check the driver against someone else's Redfish. Installed by hack/install-sushy.sh
 * into a venv under $BAMEL_CACHE. The emulator has Basic auth only (an htpasswd file with
 * a bcrypt hash), no SessionService, and applies power changes 1 to 11 s after a Reset.
 */

const execFileP = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SushySystemSpec {
  name: string;
  power?: 'On' | 'Off';
}

export interface SushyOptions {
  systems: SushySystemSpec[];
  username: string;
  password: string;
  /** How long to wait for the emulator to answer. Default 30 s. */
  startTimeoutMs?: number;
}

export interface SushySystem {
  name: string;
  uuid: string;
  /** /redfish/v1/Systems/{uuid} */
  path: string;
}

export interface SushyEmulator {
  port: number;
  /** http://127.0.0.1:port */
  url: string;
  systems: SushySystem[];
  /** What the emulator printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

let installed: Promise<string> | undefined;

/** Installs sushy-tools once per process (the script itself is a no-op when it is there). */
export function installSushy(): Promise<string> {
  installed ??= execFileP('bash', [join(repoRoot, 'hack', 'install-sushy.sh')], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => {
    const path = stdout.trim().split('\n').at(-1) ?? '';
    if (path === '') throw new Error('hack/install-sushy.sh printed no sushy-emulator path');
    return path;
  });
  return installed;
}

export async function startSushy(opts: SushyOptions): Promise<SushyEmulator> {
  const emulator = await installSushy();
  const python = join(dirname(emulator), 'python');
  const dir = await mkdtemp(join(tmpdir(), 'bamel-sushy-'));
  let child: ChildProcess | undefined;
  try {
    const authFile = join(dir, 'htpasswd');
    await writeFile(authFile, `${opts.username}:${await bcryptHash(python, opts.password)}\n`, { mode: 0o600 });
    const port = await freePort();
    const systems = opts.systems.map((s) => ({ name: s.name, uuid: randomUUID(), power: s.power ?? 'Off' }));
    const configFile = join(dir, 'emulator.conf.py');
    await writeFile(configFile, configText({ authFile, stateDir: join(dir, 'state'), port, systems }));

    // The password is in the htpasswd file only: never in argv or the environment.
    child = spawn(emulator, ['--config', configFile, '--fake', '--interface', '127.0.0.1', '--port', String(port)], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    const lines: string[] = [];
    const keep = (chunk: Buffer) => {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      lines.splice(0, Math.max(0, lines.length - 200));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<number | null>((r) => child?.once('exit', (code) => r(code)));

    const url = `http://127.0.0.1:${port}`;
    await waitUntilAnswering(`${url}/redfish/v1`, exited, opts.startTimeoutMs ?? 30_000, () => lines.join('\n'));
    const running = child;
    return {
      port,
      url,
      systems: systems.map((s) => ({ name: s.name, uuid: s.uuid, path: `/redfish/v1/Systems/${s.uuid}` })),
      output: () => lines.join('\n'),
      stop: async () => {
        await stopProcess(running, exited);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function bcryptHash(python: string, password: string): Promise<string> {
  // The password goes in on stdin; 4 rounds keep the emulator's per-request check fast.
  const script = 'import sys, bcrypt; print(bcrypt.hashpw(sys.stdin.buffer.read(), bcrypt.gensalt(rounds=4)).decode())';
  const hash = await new Promise<string>((resolvePromise, reject) => {
    const proc = execFile(python, ['-c', script], { timeout: 30_000 }, (err, stdout) => {
      if (err) reject(new Error(`hashing the emulator password failed: ${err.message}`));
      else resolvePromise(stdout.trim());
    });
    proc.stdin?.end(password);
  });
  if (!hash.startsWith('$2')) throw new Error('bcrypt produced no hash');
  return hash;
}

function py(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string' || typeof value === 'number') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
  if (typeof value === 'object' && value !== null) return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(', ')}}`;
  return 'None';
}

function configText(c: { authFile: string; stateDir: string; port: number; systems: { name: string; uuid: string; power: string }[] }): string {
  const systems = c.systems.map((s) => ({ uuid: s.uuid, name: s.name, power_state: s.power, external_notifier: false, nics: [] }));
  return [
    'SUSHY_EMULATOR_FAKE_DRIVER = True',
    `SUSHY_EMULATOR_AUTH_FILE = ${py(c.authFile)}`,
    // Its own state directory: the fake driver otherwise shares one sqlite file in /tmp.
    `SUSHY_EMULATOR_STATE_DIR = ${py(c.stateDir)}`,
    `SUSHY_EMULATOR_LISTEN_IP = ${py('127.0.0.1')}`,
    `SUSHY_EMULATOR_LISTEN_PORT = ${py(c.port)}`,
    `SUSHY_EMULATOR_FAKE_SYSTEMS = ${py(systems)}`,
    '',
  ].join('\n');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address !== 'object') throw new Error('could not pick a free port');
  return address.port;
}

async function waitUntilAnswering(url: string, exited: Promise<number | null>, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`sushy-emulator exited with ${String(exitCode)} before answering:\n${output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`sushy-emulator did not answer ${url} within ${timeoutMs} ms:\n${output()}`);
}

async function stopProcess(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
