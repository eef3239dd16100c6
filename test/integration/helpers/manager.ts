import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bamelEntry, kubeconfigPath, repoRoot, waitFor } from './cluster.js';

export interface RunningManager {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  waitForLog(match: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL at once (a crash). */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export interface StartManagerOptions {
  /** Serve the admission webhook (off by default: no test but the webhook's needs it). */
  webhook?: { bindAddress: string; certDir: string };
}

/**
 * Runs `bamel manager` against the local cluster. The extender is off unless the test asks
 * for it (`--extender-bind-address` in args): tests run several managers, a fixed port would
 * collide. The webhook is off unless `opts.webhook` is given.
 */
export function startManager(args: string[], opts: StartManagerOptions = {}): RunningManager {
  const webhookFlags = opts.webhook ? ['--webhook-bind-address', opts.webhook.bindAddress, '--webhook-cert-dir', opts.webhook.certDir] : [];
  const child = spawn(
    process.execPath,
    [
      ...bamelEntry(),
      'manager',
      '--kubeconfig',
      kubeconfigPath,
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--health-probe-bind-address',
      '127.0.0.1:0',
      ...(args.includes('--extender-bind-address') ? [] : ['--extender-bind-address', '0']),
      ...webhookFlags,
      ...args,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BAMEL_LOG_LEVEL: process.env.BAMEL_TEST_LOG_LEVEL ?? 'info' } },
  );
  const logs: Record<string, unknown>[] = [];
  // Every manager's log is kept for after the run: .local/test-results/logs/manager-<pid>.log
  const logDir = join(repoRoot, '.local', 'test-results', 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = createWriteStream(join(logDir, `manager-${child.pid ?? 'x'}.log`));
  child.once('exit', () => logFile.end());
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line) as Record<string, unknown>;
    } catch {
      l = { msg: line };
    }
    logs.push(l);
    logFile.write(`${line}\n`);
    if (process.env.BAMEL_TEST_SHOW_LOGS) process.stderr.write(`[manager ${child.pid}] ${line}\n`);
    for (const w of [...waiters]) {
      if (!w.match(l)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(l);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    logs,
    exited,
    waitForLog: (match, timeoutMs = 30_000) => {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`manager: no matching log line within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The manager's /metrics text, once it holds `includes` (from the addresses its start-up log line names). */
export function managerMetrics(manager: RunningManager, includes = 'bamel_'): Promise<string> {
  return waitFor('manager metrics', 10_000, async () => {
    const addr = (await manager.waitForLog((l) => l.msg === 'manager started')).addresses as string[];
    for (const a of addr) {
      const res = await fetch(`http://${a}/metrics`).catch(() => undefined);
      if (res?.ok) {
        const text = await res.text();
        if (text.includes(includes)) return text;
      }
    }
    return false;
  });
}
