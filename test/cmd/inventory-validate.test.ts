import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runInventoryValidate, runInventoryValidateAll } from '../../cmd/inventory.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
// tap runs tests from the project root, so fixture paths read the way a user types them
const fixture = (name: string): string => `test/fixtures/inventory/${name}`;

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function validate(file: string, stdin?: string): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await runInventoryValidate(file, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    ...(stdin === undefined ? {} : { readStdin: () => Promise.resolve(stdin) }),
  });
  return { code, stdout, stderr };
}

/** Runs the real CLI the way a user would; tap's TypeScript loader is in execArgv. */
function runCli(args: string[], stdin = ''): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, 'cmd/bamel.ts', ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

t.test('a valid inventory', async (t) => {
  const result = await validate(fixture('valid.yaml'));
  t.same(result, { code: 0, stdout: `${fixture('valid.yaml')}: valid inventory, 4 machines\n`, stderr: '' });
});

t.test('a valid ConfigMap', async (t) => {
  const result = await validate(fixture('valid-configmap.yaml'));
  t.same(result, { code: 0, stdout: `${fixture('valid-configmap.yaml')}: valid inventory, 2 machines\n`, stderr: '' });
});

t.test('warnings go to stdout and keep exit code 0', async (t) => {
  const result = await validate('-', 'machines:\n  - {name: a, bmc: {address: ipmi://10.0.0.1, credentialsSecret: s}, capacity: {cpu: 1, memory: 1Gi}}\n');
  t.same(result, {
    code: 0,
    stdout: [
      'warning: machines[0] (a).power.maxWatts: not set; machines without it cannot be ranked by power draw, so ties between equally good machines fall back to the machine name. Set it from the spec sheet or a PDU reading',
      '<stdin>: valid inventory, 1 machine',
      '',
    ].join('\n'),
    stderr: '',
  });
});

t.test('errors go to stderr, one per line, then the count', async (t) => {
  const file = fixture('bad-quantity.yaml');
  const advice = 'use a number with an optional suffix such as 500m, 2, 64Gi or 1Ti';
  const result = await validate(file);
  t.equal(result.code, 1);
  t.equal(result.stdout, '');
  t.same(result.stderr.split('\n'), [
    `${file}: machines[0] (rack-a-01).capacity.cpu: "eight" is not a valid quantity: it must start with a number; ${advice}`,
    `${file}: machines[0] (rack-a-01).capacity.memory: "12XB" is not a valid quantity: unknown suffix "XB"; ${advice}`,
    `${file}: machines[0] (rack-a-01).capacity.ephemeral-storage: "-1Ti" is negative; capacity must be zero or more`,
    `${file}: 3 errors`,
    '',
  ]);
});

t.test('every bad fixture fails and names the machine and field', async (t) => {
  const expected: Array<[string, string]> = [
    ['duplicate-names.yaml', 'machines[2] (rack-a-01).name: duplicate machine name "rack-a-01", also used by machines[0]'],
    ['unknown-scheme.yaml', 'machines[1] (rack-a-07).bmc.address: unknown scheme "ipmii"'],
    ['missing-credentials.yaml', 'machines[0] (rack-a-01).bmc.credentialsSecret: missing required field'],
    ['bad-taint-effect.yaml', 'machines[0] (gpu-01).taints[0].effect: must be one of NoSchedule, PreferNoSchedule or NoExecute'],
    ['bad-labels.yaml', 'machines[0] (rack-a-01).labels["rack a"]: "rack a" is not a valid label key'],
    ['missing-capacity.yaml', 'machines[0] (rack-a-01).capacity: missing required field'],
    ['configmap-unlabelled.yaml', 'metadata.labels["autoscaling.bamel.io/inventory"]: missing'],
  ];
  for (const [name, line] of expected) {
    const result = await validate(fixture(name));
    t.equal(result.code, 1, name);
    t.ok(result.stderr.startsWith(`${fixture(name)}: ${line}`), `${name}: ${result.stderr.split('\n')[0] ?? ''}`);
  }
  const many = await validate(fixture('many-errors.yaml'));
  t.equal(many.code, 1);
  t.match(many.stderr, /many-errors\.yaml: 10 errors\n$/);
  t.equal(many.stderr.split('\n').filter((line) => line.includes('machines[')).length, 10);
});

t.test('an unreadable file', async (t) => {
  const result = await validate('test/fixtures/inventory/does-not-exist.yaml');
  t.equal(result.code, 1);
  t.equal(result.stdout, '');
  t.match(result.stderr, /^test\/fixtures\/inventory\/does-not-exist\.yaml: cannot read: ENOENT: no such file or directory/);
  t.match(result.stderr, /does-not-exist\.yaml: 1 error\n$/);
});

t.test('the real CLI', async (t) => {
  const valid = await runCli(['inventory', 'validate', fixture('valid.yaml')]);
  t.equal(valid.code, 0, valid.stderr);
  t.equal(valid.stdout, `${fixture('valid.yaml')}: valid inventory, 4 machines\n`);

  const invalid = await runCli(['inventory', 'validate', fixture('unknown-scheme.yaml')]);
  t.equal(invalid.code, 1);
  t.equal(invalid.stdout, '');
  t.match(invalid.stderr, `${fixture('unknown-scheme.yaml')}: machines[1] (rack-a-07).bmc.address: unknown scheme "ipmii"; expected one of ipmi, redfish,`);
  t.match(invalid.stderr, `${fixture('unknown-scheme.yaml')}: 1 error\n`);

  const many = await runCli(['inventory', 'validate', fixture('many-errors.yaml')]);
  t.equal(many.code, 1);
  t.match(many.stderr, 'machines[0] (Rack_A_01).lables: unknown field "lables"; did you mean "labels"?');
  t.match(many.stderr, 'machines[2] (rack-a-03).bmc.address: same BMC endpoint as machines[1] (rack-a-02)');
  t.notMatch(many.stderr, 'hunter2');

  const piped = await runCli(['inventory', 'validate', '-'], readFileSync(new URL('../fixtures/inventory/valid-configmap.yaml', import.meta.url), 'utf8'));
  t.equal(piped.code, 0, piped.stderr);
  t.equal(piped.stdout, '<stdin>: valid inventory, 2 machines\n');

  const missingArgument = await runCli(['inventory', 'validate']);
  t.not(missingArgument.code, 0);
  t.match(missingArgument.stderr, "missing required argument 'file'");
});

async function validateAll(files: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await runInventoryValidateAll(files, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  return { code, stdout, stderr };
}

t.test('several inventories of one fleet: each validated, then names across them', async (t) => {
  const apart = await validateAll([fixture('valid.yaml'), fixture('valid-rack-c.yaml')]);
  t.same(apart, {
    code: 0,
    stdout: `${fixture('valid.yaml')}: valid inventory, 4 machines\n${fixture('valid-rack-c.yaml')}: valid inventory, 1 machine\n`,
    stderr: '',
  });

  const shared = await validateAll([fixture('valid.yaml'), fixture('valid-configmap.yaml'), fixture('valid-rack-c.yaml')]);
  t.equal(shared.code, 1, 'a machine in two files is an error');
  t.equal(
    shared.stderr,
    `machine rack-a-01 is listed in ${fixture('valid.yaml')} and ${fixture('valid-configmap.yaml')}; a machine belongs in one inventory\n` +
      `machine rack-b-01 is listed in ${fixture('valid.yaml')} and ${fixture('valid-configmap.yaml')}; a machine belongs in one inventory\n` +
      '2 machine names listed in more than one file\n',
  );
  t.match(shared.stdout, /valid-configmap\.yaml: valid inventory, 2 machines/, 'each file is still valid on its own');

  const oneBad = await validateAll([fixture('valid.yaml'), fixture('unknown-scheme.yaml')]);
  t.equal(oneBad.code, 1, 'an invalid file among several');
  t.match(oneBad.stderr, /unknown-scheme\.yaml: 1 error/);

  t.same(await validateAll([fixture('valid.yaml')]), await validate(fixture('valid.yaml')), 'one file: exactly as before');
});

t.test('the CLI takes several files', async (t) => {
  const r = await runCli(['inventory', 'validate', fixture('valid.yaml'), fixture('valid-configmap.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /machine rack-a-01 is listed in test\/fixtures\/inventory\/valid\.yaml and test\/fixtures\/inventory\/valid-configmap\.yaml/);
});
