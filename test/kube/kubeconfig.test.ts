import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeAccess, KubeconfigError, TOKEN_REREAD_MS, accessFromKubeconfig, inClusterAccess, loadKubeAccess } from '../../kube/kubeconfig.js';
import { kubeJson } from '../../kube/kube-http.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'kubeconfig');
const fixture = (name: string): string => join(fixtures, name);

async function applied(access: KubeAccess): Promise<RequestOptions> {
  const opts: RequestOptions = {};
  await access.applyToHTTPSOptions(opts);
  return opts;
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bamel-kubeconfig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the current context: its cluster, CA data, TLS server name and token', async (t) => {
  const access = accessFromKubeconfig([fixture('token.yaml')]);
  t.equal(access.getCurrentCluster().server, 'https://10.0.0.1:6443');
  const opts = await applied(access);
  t.match(String(opts.ca), /BEGIN CERTIFICATE/);
  t.equal(opts.servername, 'kubernetes.default');
  t.same(opts.headers, { authorization: 'Bearer prod-token' });
  t.equal(opts.rejectUnauthorized, undefined, 'TLS verified');
});

t.test('a token file relative to the kubeconfig, an insecure cluster', async (t) => {
  const opts = await applied(accessFromKubeconfig([fixture('files.yaml')]));
  t.same(opts.headers, { authorization: 'Bearer token-from-file' });
  t.equal(opts.rejectUnauthorized, false);
});

t.test('username and password; an IPv6 server as written', async (t) => {
  const access = accessFromKubeconfig([fixture('basic-auth.yaml')]);
  t.equal(access.server, 'http://[::1]:8080');
  t.same((await applied(access)).headers, { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` });
});

t.test('errors name what is wrong, and where', async (t) => {
  const cases: [string, RegExp][] = [
    ['no-current-context.yaml', /no-current-context\.yaml: no current-context is set/],
    ['unknown-context.yaml', /current-context "staging" is not among its contexts \(a, b\)/],
    ['unknown-cluster.yaml', /context "a": cluster "elsewhere" is not defined in the kubeconfig/],
    ['unknown-user.yaml', /context "a": user "nobody" is not defined in the kubeconfig/],
    ['exec-user.yaml', /user "cloud" authenticates with exec, which the agent does not run/],
    ['missing-ca-file.yaml', /cluster "c" certificate-authority: cannot read .*does-not-exist\.crt: ENOENT/],
    ['not-yaml.yaml', /kubeconfig .*not-yaml\.yaml is not valid YAML/],
    ['absent.yaml', /cannot read kubeconfig .*absent\.yaml: ENOENT/],
  ];
  for (const [file, message] of cases) {
    t.throws(() => accessFromKubeconfig([fixture(file)]), { name: 'KubeconfigError', message }, file);
  }
});

t.test('KUBECONFIG files merge: the first current-context and the first definition of a name win', async (t) => {
  const dir = tempDir(t);
  const first = join(dir, 'first.yaml');
  writeFileSync(first, 'users:\n  - name: agent\n    user: {token: overriding-token}\n');
  const access = loadKubeAccess(undefined, { KUBECONFIG: [join(dir, 'absent.yaml'), first, fixture('token.yaml')].join(delimiter) });
  t.equal(access.server, 'https://10.0.0.1:6443');
  t.same((await applied(access)).headers, { authorization: 'Bearer overriding-token' });
  t.throws(() => loadKubeAccess(undefined, { KUBECONFIG: join(dir, 'absent.yaml') }), /KUBECONFIG names no file that exists/);
});

t.test('defaults: --kubeconfig, then KUBECONFIG, then ~/.kube/config, then in-cluster, else a clear error', async (t) => {
  const home = tempDir(t);
  const sa = tempDir(t);
  writeFileSync(join(sa, 'token'), 'sa-token');
  writeFileSync(join(sa, 'ca.crt'), 'sa-ca');
  const inCluster = { HOME: home, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  t.equal(loadKubeAccess(fixture('basic-auth.yaml'), { ...inCluster, KUBECONFIG: fixture('token.yaml') }, sa).server, 'http://[::1]:8080');
  t.equal(loadKubeAccess(undefined, { ...inCluster, KUBECONFIG: fixture('token.yaml') }, sa).server, 'https://10.0.0.1:6443');
  t.equal(loadKubeAccess(undefined, inCluster, sa).server, 'https://10.96.0.1:443');
  mkdirSync(join(home, '.kube'));
  copyFileSync(fixture('token.yaml'), join(home, '.kube', 'config'));
  t.equal(loadKubeAccess(undefined, inCluster, sa).server, 'https://10.0.0.1:6443');
  t.throws(() => loadKubeAccess(undefined, { HOME: tempDir(t) }, sa), { name: 'KubeconfigError', message: /no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster/ });
});

t.test('in-cluster: the service account token and CA, an IPv6 service address', async (t) => {
  const sa = tempDir(t);
  writeFileSync(join(sa, 'token'), 'sa-token\n');
  writeFileSync(join(sa, 'ca.crt'), 'sa-ca');
  const access = inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
  t.equal(access.server, 'https://[fd00::1]:443');
  const opts = await applied(access);
  t.equal(String(opts.ca), 'sa-ca');
  t.same(opts.headers, { authorization: 'Bearer sa-token' });
  t.throws(() => inClusterAccess({}, sa), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
  unlinkSync(join(sa, 'ca.crt'));
  t.throws(() => inClusterAccess({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, sa), /in-cluster: the service account CA: cannot read/);
});

t.test('a rotated token file is read again once the last read is a minute old; a failed re-read keeps the last token', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, 'first');
  let now = 1_000_000;
  const access = new KubeAccess({ server: 'https://x', tokenFile: file, source: 'test', now: () => now });
  t.equal(access.currentToken(), 'first');
  writeFileSync(file, 'second');
  now += TOKEN_REREAD_MS - 1;
  t.equal(access.currentToken(), 'first', 'not yet due');
  now += 1;
  t.equal(access.currentToken(), 'second', 'rotated');
  t.same((await applied(access)).headers, { authorization: 'Bearer second' });
  unlinkSync(file);
  now += TOKEN_REREAD_MS;
  t.equal(access.currentToken(), 'second', 'kept while the file is missing');
  writeFileSync(file, 'third');
  now += TOKEN_REREAD_MS;
  t.equal(access.currentToken(), 'third');
  t.throws(() => new KubeAccess({ server: 'https://x', tokenFile: join(dir, 'absent'), source: 'test' }), KubeconfigError);
});

t.test('requests carry the rotated token (kube-http over plain HTTP)', async (t) => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Node"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, 'one');
  let now = 0;
  const access = new KubeAccess({ server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, tokenFile: file, source: 'test', now: () => now });
  const get = () => kubeJson<{ kind: string }>(access, { method: 'GET', path: '/api/v1/nodes/n1', signal: AbortSignal.timeout(5000), what: 'reading Node n1' });
  t.same(await get(), { kind: 'Node' });
  writeFileSync(file, 'two');
  now += TOKEN_REREAD_MS;
  await get();
  t.same(seen.map((h) => h.authorization), ['Bearer one', 'Bearer two']);
});

t.test('TLS: the server verified against the kubeconfig CA, the client by its certificate (relative paths)', async (t) => {
  const dir = tempDir(t);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name === 'client' ? 'system:node:n1' : '127.0.0.1'}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }
  const server = createHttpsServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')), ca: readFileSync(join(dir, 'ca.crt')), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cn: peer.subject.CN }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  mkdirSync(join(dir, 'conf'));
  const kubeconfig = join(dir, 'conf', 'config');
  writeFileSync(
    kubeconfig,
    [
      'current-context: n1',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:' + String(port) + '", certificate-authority: ../ca.crt}}]',
      'contexts: [{name: n1, context: {cluster: c, user: node}}]',
      'users: [{name: node, user: {client-certificate: ../client.crt, client-key: ../client.key}}]',
    ].join('\n'),
  );
  const got = await kubeJson<{ cn: string }>(accessFromKubeconfig([kubeconfig]), { method: 'GET', path: '/version', signal: AbortSignal.timeout(5000), what: 'version' });
  t.same(got, { cn: 'system:node:n1' });

  // The same server, seen through a kubeconfig without the CA: refused.
  writeFileSync(kubeconfig, readFileSync(kubeconfig, 'utf8').replace(', certificate-authority: ../ca.crt', ''));
  await t.rejects(kubeJson(accessFromKubeconfig([kubeconfig]), { method: 'GET', path: '/version', signal: AbortSignal.timeout(5000), what: 'version' }), /version: .*(self[- ]signed|unable to verify|local issuer)/i);
  // A client certificate without its key is a kubeconfig error.
  writeFileSync(kubeconfig, readFileSync(kubeconfig, 'utf8').replace(', client-key: ../client.key', ''));
  t.throws(() => accessFromKubeconfig([kubeconfig]), /user "node" has a client certificate without its key/);
});
