import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bamelEntry, repoRoot, kubeconfigPath } from './cluster.js';

export interface SimEvent {
  event: string;
  time: string;
  machine?: string;
  action?: string;
  result?: string;
  [k: string]: unknown;
}

export interface RunningSim {
  control: string;
  events: SimEvent[];
  /** Resolves with the first event (already seen or future) that matches. */
  waitForEvent(match: (e: SimEvent) => boolean, timeoutMs?: number): Promise<SimEvent>;
  powerEvents(machine?: string): SimEvent[];
  setFaults(machine: string, faults: Record<string, boolean | number>): Promise<void>;
  pressPower(machine: string, state: 'on' | 'off'): Promise<void>;
  /** The machine's work from 0 to 1: its draw follows. */
  setLoad(machine: string, load: number): Promise<void>;
  stop(): Promise<void>;
  stderr(): string;
}

/**
 * Runs `bamel sim` (from source, through tap's TypeScript loader) on an inventory file and
 * collects its JSON event lines.
 */
export async function startSim(inventoryYaml: string, dir: string, args: string[] = []): Promise<RunningSim> {
  const file = join(dir, 'inventory.yaml');
  writeFileSync(file, inventoryYaml);
  const child: ChildProcess = spawn(
    process.execPath,
    [...bamelEntry(), 'sim', '--inventory', file, '--kubeconfig', kubeconfigPath, ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAMEL_LOG_LEVEL: 'warn' } },
  );
  const events: SimEvent[] = [];
  const waiters: { match: (e: SimEvent) => boolean; resolve: (e: SimEvent) => void }[] = [];
  let stderr = '';
  const logDir = join(repoRoot, '.local', 'test-results', 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = createWriteStream(join(logDir, `sim-${child.pid ?? 'x'}.log`));
  child.once('exit', () => logFile.end());
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    logFile.write(d);
  });
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    let e: SimEvent;
    try {
      e = JSON.parse(line) as SimEvent;
    } catch {
      return;
    }
    events.push(e);
    logFile.write(`${line}\n`);
    for (const w of [...waiters]) {
      if (w.match(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForEvent = (match: (e: SimEvent) => boolean, timeoutMs = 30_000): Promise<SimEvent> => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sim: no matching event within ${timeoutMs} ms; stderr:\n${stderr.slice(-2000)}`)), timeoutMs);
      waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`sim exited with ${String(code)}; stderr:\n${stderr.slice(-2000)}`));
      });
    });
  };

  const ready = await waitForEvent((e) => e.event === 'ready', 60_000);
  const control = String(ready.control);
  const call = async (path: string, method: string, body: unknown): Promise<void> => {
    const res = await fetch(`${control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`sim control ${method} ${path}: ${res.status} ${await res.text()}`);
  };
  return {
    control,
    events,
    waitForEvent,
    powerEvents: (machine) => events.filter((e) => e.event === 'power' && (machine === undefined || e.machine === machine)),
    setFaults: (machine, faults) => call(`/machines/${machine}/faults`, 'PUT', faults),
    pressPower: (machine, state) => call(`/machines/${machine}/power`, 'POST', { state }),
    setLoad: (machine, load) => call(`/machines/${machine}/load`, 'PUT', { load }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    stderr: () => stderr,
  };
}
