import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { Extender } from '../../extender/extender.js';
import { ExtenderMetrics } from '../../extender/metrics.js';
import { buildExtenderServer } from '../../extender/server.js';
import { capturedNodes, fixtureText } from './fixtures.js';
import { MemoryCache } from './memory-cache.js';

t.test('with a key pair the extender speaks HTTPS (as --extender-cert-dir does)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bamel-ext-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], {
    stdio: 'ignore',
  });
  const cert = readFileSync(join(dir, 'tls.crt'));
  const registry = new Registry();
  const metrics = new ExtenderMetrics(registry);
  const extender = new Extender({ autoscalers: new MemoryCache(), nodes: new MemoryCache(capturedNodes()), pods: new MemoryCache() }, metrics);
  const app = buildExtenderServer({ extender, metrics, logger: pino({ level: 'silent' }), https: { key: readFileSync(join(dir, 'tls.key')), cert } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.addresses()[0];
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const body = fixtureText('filter-names-web');
  const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/extender/filter', method: 'POST', ca: cert, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  t.equal(answer.status, 200);
  t.match(JSON.parse(answer.text), { NodeNames: ['cap-a', 'cap-c'] });
});
