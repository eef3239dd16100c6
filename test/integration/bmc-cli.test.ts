import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { BMC_EXIT_CODES, runBmc } from '../../cmd/bmc.js';
import { RedfishFakeServer } from '../../sim/redfish-fake.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { bamelEntry, kubeconfigPath, localCluster, repoRoot, testNamespace } from './helpers/cluster.js';

// `bamel bmc --inventory FILE --machine NAME`: the address comes from the inventory and
// the credentials from the machine's Secret, read through the kubeconfig, exactly as the
// controller will find them. Each CLI start costs seconds of CPU (the TypeScript loader):
// the cases that need a real process run as one, the variants call runBmc in-process.

const USERNAME = 'admin';
const PASSWORD = 'inv-Pw-0b7d44';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...bamelEntry(), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BAMEL_LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

type BmcIo = NonNullable<Parameters<typeof runBmc>[2]>;

async function runInProcess(action: 'status' | 'on' | 'off', flags: Partial<Parameters<typeof runBmc>[1]>): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  // runBmc only ever calls write(): a string sink stands in for the process streams.
  const io = {
    out: { write: (text: string) => ((stdout += text), true) },
    err: { write: (text: string) => ((stderr += text), true) },
  } as unknown as BmcIo;
  const code = await runBmc(action, { timeout: '60', gracefulTimeout: '20', kubeconfig: kubeconfigPath, ...flags }, io);
  return { code, stdout, stderr };
}

t.test('bamel bmc reads the machine from the inventory and its credentials from the Secret', async (t) => {
  const { core } = await localCluster();
  const ns = await testNamespace(t, 'bmc-cli');
  const dir = await mkdtemp(join(tmpdir(), 'bamel-bmc-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const redfish = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await redfish.start();
  t.teardown(() => redfish.stop());
  const events: SimPowerEvent[] = [];
  for (const [id, initialPower] of [
    ['rack-i-01', 'off'],
    ['rack-i-02', 'off'],
    ['rack-i-03', 'on'],
    ['rack-i-04', 'off'],
    ['rack-i-05', 'off'],
    ['rack-i-06', 'off'],
  ] as const) {
    redfish.addSystem({ id, machine: id, credentials: { username: USERNAME, password: PASSWORD }, initialPower }).onPower((e) => {
      if (!(e.detail ?? '').startsWith('completed')) events.push(e);
    });
  }

  // data (base64), as kubectl create secret writes it.
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc-rack-i' }, data: { username: b64(USERNAME), password: b64(PASSWORD) } } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc-stale' }, stringData: { username: USERNAME, password: 'inv-Stale-9a' } } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc-no-password' }, stringData: { username: USERNAME } } });

  const machine = (name: string, secret: string) => ({
    name,
    // The project's Redfish fake speaks plain HTTP: the credentials travel in clear, so the opt-in.
    bmc: { address: redfish.addressOf(name), credentialsSecret: secret, allowInsecureCredentials: true },
    capacity: { cpu: '8', memory: '32Gi' },
  });
  const machinesYaml = stringify({
    machines: [
      machine('rack-i-01', 'bmc-rack-i'),
      machine('rack-i-02', 'bmc-rack-i'),
      machine('rack-i-03', 'bmc-rack-i'),
      machine('rack-i-04', 'bmc-rack-i-04'),
      machine('rack-i-05', 'bmc-stale'),
      machine('rack-i-06', 'bmc-no-password'),
    ],
  });
  // The ConfigMap form names the namespace of the Secrets; the bare document needs --namespace.
  const configMapFile = join(dir, 'inventory.yaml');
  await writeFile(
    configMapFile,
    stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'machines', namespace: ns, labels: { 'autoscaling.bamel.io/inventory': 'true' } },
      data: { 'machines.yaml': machinesYaml },
    }),
  );
  const machinesFile = join(dir, 'machines.yaml');
  await writeFile(machinesFile, machinesYaml);

  const [status, on, missing] = await Promise.all([
    runCli(['bmc', 'status', '--inventory', configMapFile, '--machine', 'rack-i-01', '--kubeconfig', kubeconfigPath]),
    // The kubeconfig from $KUBECONFIG, as in an operator's shell.
    runCli(['bmc', 'on', '--inventory', machinesFile, '--machine', 'rack-i-02', '--namespace', ns], { KUBECONFIG: kubeconfigPath }),
    runCli(['bmc', 'status', '--inventory', configMapFile, '--machine', 'rack-i-04', '--kubeconfig', kubeconfigPath]),
  ]);

  t.same(status, { code: 0, stdout: 'off\n', stderr: '' }, 'status of the machine, credentials from the ConfigMap namespace');
  t.same(on, { code: 0, stdout: 'on\n', stderr: '' }, 'on, credentials from --namespace');
  t.same(
    events.map((e) => [e.machine, e.action, e.result]),
    [['rack-i-02', 'on', 'ok']],
    'only the named machine was powered',
  );

  t.equal(missing.code, BMC_EXIT_CODES.USAGE, 'a missing Secret is a configuration error: exit 2');
  t.equal(missing.stdout, '');
  t.ok(missing.stderr.includes(`Secret ${ns}/bmc-rack-i-04 does not exist`), `names the Secret: ${missing.stderr.trim()}`);
  t.match(missing.stderr, /machines\[3\] \(rack-i-04\)/, 'and the machine');
  t.match(missing.stderr, /create it with the keys username and password/, 'and the fix');

  // Variants of the same path, in this process.
  const off = await runInProcess('off', { inventory: configMapFile, machine: 'rack-i-03', force: true });
  t.same(off, { code: 0, stdout: 'off\n', stderr: '' });
  t.same(events.at(-1), { machine: 'rack-i-03', action: 'force-off', result: 'ok', state: 'off' });

  const stale = await runInProcess('status', { inventory: configMapFile, machine: 'rack-i-05' });
  t.equal(stale.code, BMC_EXIT_CODES.BMC_AUTH, 'a Secret with an old password: BMC_AUTH, exit 4');
  t.match(stale.stderr, /BMC_AUTH: .*check the username and password in the machine's credentials Secret/);
  t.notOk(stale.stderr.includes('inv-Stale-9a') || stale.stderr.includes(PASSWORD), 'no password in the message');

  const noPassword = await runInProcess('status', { inventory: configMapFile, machine: 'rack-i-06' });
  t.equal(noPassword.code, BMC_EXIT_CODES.USAGE);
  t.ok(noPassword.stderr.includes(`Secret ${ns}/bmc-no-password has no password; it needs the keys username and password`), noPassword.stderr.trim());

  const wrongNamespace = await runInProcess('status', { inventory: machinesFile, machine: 'rack-i-01' });
  t.equal(wrongNamespace.code, BMC_EXIT_CODES.USAGE, 'the bare document without --namespace looks in bamel-system');
  t.match(wrongNamespace.stderr, /Secret bamel-system\/bmc-rack-i does not exist/);

  const unknown = await runInProcess('status', { inventory: configMapFile, machine: 'rack-i-99' });
  t.equal(unknown.code, BMC_EXIT_CODES.USAGE);
  t.match(unknown.stderr, /no machine rack-i-99 in .*inventory\.yaml; it has rack-i-01, rack-i-02/);

  for (const run of [status, on, missing, off, stale, noPassword, wrongNamespace, unknown]) {
    t.notOk(run.stdout.includes(PASSWORD) || run.stderr.includes(PASSWORD), 'the password is in no output');
  }
});
