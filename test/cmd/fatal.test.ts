import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_FATAL } from '../../cmd/log.js';

/**
 * A rejection nobody handled, an exception nobody caught: the process logs it at level fatal
 * after writing every buffered line, and exits non-zero, with nothing running after it.
 */

interface Line {
  level: number;
  msg: string;
  component?: string;
  i?: number;
  err?: { type?: string; message?: string; stack?: string };
}

async function runNode(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr, ms: Date.now() - started };
}

function jsonLines(stderr: string): Line[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);
}

const LINES = 2000;

for (const [mode, what, message] of [
  ['rejection', 'unhandled promise rejection', 'boom: nobody handled this rejection'],
  ['exception', 'uncaught exception', 'boom: nobody caught this exception'],
] as const) {
  t.test(`${what}: every buffered line, then one fatal line, then exit ${EXIT_FATAL}`, async (t) => {
    const run = await runNode(['test/fixtures/cmd/crash.ts'], { CRASH_MODE: mode, LINES: String(LINES) });
    t.not(run.code, 0, 'a non-zero exit');
    t.equal(run.code, EXIT_FATAL);
    const lines = jsonLines(run.stderr);
    const before = lines.filter((l) => l.msg === 'before the failure');
    t.equal(before.length, LINES, `all ${LINES} lines logged before the failure were written (the asynchronous buffer was flushed)`);
    t.same(before.map((l) => l.i), Array.from({ length: LINES }, (_, i) => i), 'in order');
    const last = lines.at(-1);
    t.match(last, { level: 60, component: 'process', msg: `${what}: exiting with code ${EXIT_FATAL}`, err: { message } }, 'the last line is the fatal one');
    t.match(last?.err?.stack, /boom: /, 'with the stack');
    t.equal(lines.filter((l) => l.level === 60).length, 1, 'one fatal line');
    t.notOk(lines.some((l) => l.msg === 'still running after the failure'), 'nothing ran after the failure');
  });
}

t.test('a rejection with a reason that is not an Error', async (t) => {
  const run = await runNode(['test/fixtures/cmd/crash.ts'], { CRASH_MODE: 'non-error' });
  t.equal(run.code, EXIT_FATAL);
  const last = jsonLines(run.stderr).at(-1) as unknown as Record<string, unknown>;
  t.match(last, { level: 60, msg: /^unhandled promise rejection/, err: 'a plain string reason' });
});

t.test('bamel itself: a rejection while a command runs ends it with a fatal line and a non-zero exit', async (t) => {
  // A BMC that accepts connections and never answers: `bamel bmc status` waits on it.
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), 'bamel-fatal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'fatal-test-password\n', { mode: 0o600 });

  const run = await runNode(['--import', './test/fixtures/cmd/reject-when-ready.mjs', 'cmd/bamel.ts', 'bmc', 'status', '--address', `redfish+http://127.0.0.1:${port}`, '--username', 'admin', '--password-file', passwordFile, '--timeout', '600']);
  t.equal(run.code, EXIT_FATAL, `exit ${EXIT_FATAL} (stderr: ${run.stderr.slice(-500)})`);
  const fatal = run.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line)
    .find((l) => l.level === 60);
  t.match(fatal, { msg: `unhandled promise rejection: exiting with code ${EXIT_FATAL}`, err: { message: 'boom: a rejection inside bamel' } });
  // Exit 1, not a BMC timeout's 6: the rejection ended it, long before the 600 s the BMC was given.
  t.ok(run.ms < 120_000, `without waiting for the BMC (${run.ms} ms)`);
  t.notMatch(run.stderr, /fatal-test-password/, 'no password on stderr');
});
