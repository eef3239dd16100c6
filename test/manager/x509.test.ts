import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import t from 'tap';
import { issueCertificate, pemBlocks } from '../../manager/x509.js';

const now = new Date('2026-06-01T00:00:00Z');
const year = 365 * 86_400_000;

function pair(notAfter = new Date(now.getTime() + year)) {
  const ca = issueCertificate({ commonName: 'bamel-ca@1', organization: 'bamel-autoscaler', isCA: true, notBefore: now, notAfter: new Date(now.getTime() + 10 * year) });
  const leaf = issueCertificate({
    commonName: 'bamel-webhook-service',
    isCA: false,
    hosts: ['bamel-webhook-service.bamel-system.svc', 'bamel-extender.bamel-system.svc', '10.0.0.7'],
    notBefore: now,
    notAfter,
    issuer: { commonName: 'bamel-ca@1', organization: 'bamel-autoscaler', key: ca.key, spki: ca.spki },
  });
  return { ca, leaf };
}

t.test('a CA and a serving certificate Node reads, verifies and serves', async (t) => {
  const { ca, leaf } = pair();
  const caX = new X509Certificate(ca.certPem);
  const leafX = new X509Certificate(leaf.certPem);
  t.ok(caX.ca, 'the CA is a CA');
  t.notOk(leafX.ca, 'the serving certificate is not');
  t.ok(caX.verify(caX.publicKey), 'the CA is self-signed');
  t.ok(leafX.verify(caX.publicKey), 'the CA signed the serving certificate');
  t.ok(leafX.checkIssued(caX), 'issuer and subject match');
  t.equal(leafX.checkHost('bamel-webhook-service.bamel-system.svc'), 'bamel-webhook-service.bamel-system.svc', 'the webhook Service name');
  t.equal(leafX.checkHost('bamel-extender.bamel-system.svc'), 'bamel-extender.bamel-system.svc', 'the extender Service name');
  t.equal(leafX.checkIP('10.0.0.7'), '10.0.0.7', 'an IP address');
  t.equal(leafX.checkHost('other.bamel-system.svc'), undefined, 'no other name');
  t.equal(new Date(leafX.validTo).toISOString(), new Date(now.getTime() + year).toISOString(), 'the requested end');
  t.doesNotThrow(() => createSecureContext({ cert: leaf.certPem, key: leaf.keyPem }), 'key and certificate fit');
  t.equal(pemBlocks(ca.certPem + leaf.certPem).length, 2, 'PEM blocks are found in a bundle');
});

t.test('dates after 2049 are GeneralizedTime', async (t) => {
  const { leaf } = pair(new Date('2060-01-02T03:04:05Z'));
  t.equal(new Date(new X509Certificate(leaf.certPem).validTo).toISOString(), '2060-01-02T03:04:05.000Z');
});

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}

t.test('openssl agrees', { skip: openssl ? false : 'no openssl' }, async (t) => {
  const { ca, leaf } = pair();
  const dir = mkdtempSync(join(tmpdir(), 'bamel-x509-'));
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  const out = execFileSync('openssl', ['verify', '-attime', String(Math.floor(now.getTime() / 1000) + 60), '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), join(dir, 'tls.crt')]).toString();
  t.match(out, /OK/);
});
