import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * Just enough X.509 to issue the manager's own CA and serving certificate (cert-rotator.ts):
 * ECDSA P-256 keys, SHA-256 signatures, DER written by hand. Node's crypto reads
 * certificates (X509Certificate) but cannot write them, and the image carries no openssl.
 */

// --- DER ----------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, c: Buffer): Buffer => tlv(0xa0 | n, c);

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps it positive). */
function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

function name(commonName: string, organization?: string): Buffer {
  const rdns = [set(seq(oid(OID.commonName), utf8(commonName)))];
  if (organization !== undefined) rdns.unshift(set(seq(oid(OID.organization), utf8(organization))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** The key identifier of RFC 5280 4.2.1.2 (1): SHA-1 of the subjectPublicKey bits. */
function keyId(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, BIT STRING }: for P-256 the BIT STRING is
  // the last 65 bytes (uncompressed point) after its 0x00 unused-bits octet.
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

function ipBytes(ip: string): Buffer | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return Buffer.from(v4.slice(1).map(Number));
  return undefined;
}

// --- certificates -------------------------------------------------------------------------

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  key: KeyObject;
}

export interface CertificateRequest {
  commonName: string;
  organization?: string;
  notBefore: Date;
  notAfter: Date;
  /** A CA (basicConstraints CA, keyCertSign); else a TLS server certificate. */
  isCA: boolean;
  /** Subject alternative names: DNS names, and IPv4 addresses written as such. */
  hosts?: readonly string[];
  /** The issuer; absent: self-signed. */
  issuer?: { commonName: string; organization?: string; key: KeyObject; spki: Buffer };
}

export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export function issueCertificate(req: CertificateRequest, keys = newKeyPair()): IssuedCertificate & { der: Buffer; spki: Buffer } {
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01; // positive and never zero
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const exts: Buffer[] = [];
  if (req.isCA) {
    exts.push(extension(OID.basicConstraints, true, seq(bool(true))));
    // digitalSignature (bit 0), keyCertSign (5), cRLSign (6): 1000 0110, one unused bit.
    exts.push(extension(OID.keyUsage, true, bits(Buffer.from([0x86]), 1)));
  } else {
    exts.push(extension(OID.basicConstraints, true, seq()));
    // digitalSignature only (ECDSA signs the handshake): 1000 0000, seven unused bits.
    exts.push(extension(OID.keyUsage, true, bits(Buffer.from([0x80]), 7)));
    exts.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))));
  }
  const hosts = req.hosts ?? [];
  if (hosts.length > 0) {
    const names = hosts.map((h) => {
      const ip = ipBytes(h);
      return ip ? tlv(0x87, ip) : tlv(0x82, Buffer.from(h, 'ascii'));
    });
    exts.push(extension(OID.subjectAltName, false, seq(...names)));
  }
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyId(spki))));
  if (req.issuer) exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyId(req.issuer.spki)))));
  const subject = name(req.commonName, req.organization);
  const issuerName = req.issuer ? name(req.issuer.commonName, req.issuer.organization) : subject;
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))), // v3
    uint(serial),
    algorithm,
    issuerName,
    seq(time(req.notBefore), time(req.notAfter)),
    subject,
    spki,
    explicit(3, seq(...exts)),
  );
  // ECDSA signatures come out DER-encoded (Ecdsa-Sig-Value), as X.509 wants them.
  const signature = sign('sha256', tbs, req.issuer?.key ?? keys.privateKey);
  const der = seq(tbs, algorithm, bits(signature));
  return {
    der,
    spki,
    key: keys.privateKey,
    certPem: pem('CERTIFICATE', der),
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every PEM certificate block in text, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
