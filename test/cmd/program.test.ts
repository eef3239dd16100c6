import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { VERSION } from '../../api/version.js';

const execFileP = promisify(execFile);

function bamel(args: string[]) {
  return execFileP(process.execPath, [...process.execArgv, 'cmd/bamel.ts', ...args]).then(
    (r) => ({ code: 0, ...r }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
  );
}

t.test('bamel --help lists the subcommands of DESIGN.md', async (t) => {
  const r = await bamel(['--help']);
  t.equal(r.code, 0);
  for (const sub of ['manager', 'agent', 'bmc', 'inventory', 'sim', 'simulate', 'version']) t.match(r.stdout, new RegExp(`^\\s+${sub}\\b`, 'm'), sub);
});

t.test('bamel version prints the package version', async (t) => {
  const r = await bamel(['version']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `bamel ${VERSION}\n`);
  t.match(VERSION, /^\d+\.\d+\.\d+/);
});

t.test('an unknown subcommand fails with a message', async (t) => {
  const r = await bamel(['powercycle']);
  t.not(r.code, 0);
  t.match(r.stderr, /unknown command 'powercycle'/);
});
