import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from '../kube/errors.js';
import { issueCertificate, pemBlocks } from './x509.js';

/**
 * Serving certificates without a human (`bamel manager --cert-rotation`): a CA and a
 * serving certificate kept in one Secret of the manager's namespace, written into the
 * webhook's (and extender's) certificate directories, and the CA put into the caBundle of
 * the ValidatingWebhookConfiguration, checked again every interval. Every replica runs it:
 * the first to find no usable pair makes one and creates the Secret; the others lose the
 * create (409) or the update (resourceVersion) and take what won. The webhook server reloads
 * the files when they change (webhook/certificates.ts).
 *
 * A CA renewed while the old one is still valid is kept after the new one in ca.crt for the
 * rest of its life, so the API server trusts both the old and the new serving certificate
 * while replicas pick the new one up.
 */

export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

const DAY = 86_400_000;

export interface CertRotatorOptions {
  kc: k8s.KubeConfig;
  namespace: string;
  secretName: string;
  /** ValidatingWebhookConfiguration whose webhooks get the CA; absent: none is touched. */
  webhookConfigurationName?: string;
  /** DNS names (and IPv4 addresses) of the serving certificate: the Services' names. */
  hosts: readonly string[];
  /** Where tls.crt, tls.key and ca.crt are written (each directory gets all three). */
  certDirs: readonly string[];
  logger: Logger;
  caValidityMs?: number;
  certValidityMs?: number;
  /** A certificate this close to its end is renewed. */
  renewBeforeMs?: number;
  /** How often the Secret and the caBundle are looked at again. */
  checkIntervalMs?: number;
  now?: () => Date;
}

export interface ServingPair {
  caPem: string;
  certPem: string;
  keyPem: string;
}

type Problem = string | undefined;

export class CertRotator {
  private readonly core: k8s.CoreV1Api;
  private readonly admission: k8s.AdmissionregistrationV1Api;
  private readonly opts: Required<Omit<CertRotatorOptions, 'webhookConfigurationName'>> & { webhookConfigurationName?: string };
  private timer: NodeJS.Timeout | undefined;
  private written = '';
  private ticking: Promise<void> | undefined;
  private configMissingLogged = false;
  private injected = false;
  private stopped = false;

  constructor(opts: CertRotatorOptions) {
    this.opts = {
      caValidityMs: 10 * 365 * DAY,
      certValidityMs: 365 * DAY,
      renewBeforeMs: 90 * DAY,
      checkIntervalMs: 30_000,
      now: () => new Date(),
      ...opts,
    };
    if (this.opts.renewBeforeMs >= this.opts.certValidityMs) throw new RangeError('renewBeforeMs must be shorter than certValidityMs');
    this.core = opts.kc.makeApiClient(k8s.CoreV1Api);
    this.admission = opts.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  }

  /**
   * Makes sure the Secret holds a usable pair, writes it into the certificate directories,
   * and puts the CA into the webhook configuration. Call before the servers start.
   */
  async ensure(): Promise<ServingPair> {
    const pair = await this.ensureSecret();
    await this.writeFiles(pair);
    this.injected = await this.injectCaBundle(pair.caPem).catch((err: unknown) => {
      this.opts.logger.warn({ err: errorMessage(err), configuration: this.opts.webhookConfigurationName }, 'cannot update the webhook caBundle yet; retrying');
      return false;
    });
    return pair;
  }

  /**
   * Checks again every interval (renewal, a caBundle reset by an upgrade or a human); every
   * 2 s while the webhook configuration has not got the CA (an install creates it beside
   * the pods, and until then admission fails).
   */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.ensure()
        .then(() => undefined)
        .catch((err: unknown) => this.opts.logger.error({ err: errorMessage(err), secret: `${this.opts.namespace}/${this.opts.secretName}` }, 'certificate rotation failed; retrying'))
        .finally(() => {
          this.ticking = undefined;
          this.timer = undefined;
          this.start();
        });
    }, this.injected ? this.opts.checkIntervalMs : Math.min(2000, this.opts.checkIntervalMs));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  private async ensureSecret(): Promise<ServingPair> {
    const { namespace, secretName: name, logger } = this.opts;
    for (let attempt = 0; attempt < 5; attempt++) {
      let secret: k8s.V1Secret | undefined;
      try {
        secret = await this.core.readNamespacedSecret({ name, namespace });
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 404)) throw new Error(`reading Secret ${namespace}/${name}: ${errorMessage(err)}`, { cause: err });
      }
      const current = secret ? decode(secret) : undefined;
      const caProblem = current ? this.caProblem(current) : 'no Secret yet';
      const certProblem = current && !caProblem ? this.certProblem(current) : undefined;
      if (current && !caProblem && !certProblem) return current;
      const next = caProblem || !current ? this.withNewCa(current) : this.withNewCert(current);
      const data = encode(next, caProblem || !current ? this.keyOf(next) : (secret?.data?.[SECRET_KEYS.caKey] ?? ''));
      try {
        if (!secret) {
          await this.core.createNamespacedSecret({
            namespace,
            body: { metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'bamel-autoscaler', 'app.kubernetes.io/component': 'certificates' } }, type: 'kubernetes.io/tls', data },
          });
        } else {
          await this.core.replaceNamespacedSecret({ name, namespace, body: { ...secret, data } });
        }
        logger.info({ secret: `${namespace}/${name}`, reason: caProblem ?? certProblem, renewedCa: Boolean(caProblem) }, 'serving certificate issued');
        return next;
      } catch (err) {
        // Another replica was first: take what it wrote.
        if (err instanceof k8s.ApiException && err.code === 409) continue;
        throw new Error(`writing Secret ${namespace}/${name}: ${errorMessage(err)}`, { cause: err });
      }
    }
    throw new Error(`Secret ${namespace}/${name} kept changing under the certificate rotation`);
  }

  /** The CA is the first certificate of ca.crt; its key is ca.key. */
  private caProblem(p: ServingPair & { caKeyPem?: string }): Problem {
    const first = pemBlocks(p.caPem)[0];
    if (!first || !p.caKeyPem) return 'no CA';
    try {
      const ca = new X509Certificate(first);
      if (!ca.ca) return 'ca.crt is not a CA';
      if (!ca.publicKey.equals(publicKeyOf(p.caKeyPem))) return 'ca.key does not fit ca.crt';
      if (new Date(ca.validTo).getTime() - this.opts.now().getTime() < this.opts.renewBeforeMs) return 'the CA expires soon';
    } catch (err) {
      return `the CA does not parse: ${errorMessage(err)}`;
    }
    return undefined;
  }

  private certProblem(p: ServingPair): Problem {
    try {
      const cert = new X509Certificate(p.certPem);
      const ca = new X509Certificate(pemBlocks(p.caPem)[0] ?? '');
      if (!cert.verify(ca.publicKey)) return 'the serving certificate is not signed by the CA';
      createSecureContext({ cert: p.certPem, key: p.keyPem });
      if (new Date(cert.validTo).getTime() - this.opts.now().getTime() < this.opts.renewBeforeMs) return 'the serving certificate expires soon';
      const missing = this.opts.hosts.filter((h) => (/^\d+\.\d+\.\d+\.\d+$/.test(h) ? cert.checkIP(h) === undefined : cert.checkHost(h, { wildcards: false }) === undefined));
      if (missing.length > 0) return `the serving certificate lacks ${missing.join(', ')}`;
    } catch (err) {
      return `the serving certificate does not parse: ${errorMessage(err)}`;
    }
    return undefined;
  }

  private readonly caKeys = new WeakMap<ServingPair, string>();
  private keyOf(p: ServingPair): string {
    return Buffer.from(this.caKeys.get(p) ?? '').toString('base64');
  }

  private withNewCa(previous: (ServingPair & { caKeyPem?: string }) | undefined): ServingPair {
    const now = this.opts.now();
    const notBefore = new Date(now.getTime() - 60 * 60_000); // clocks of other machines run behind
    const commonName = `bamel-ca@${Math.floor(now.getTime() / 1000)}`;
    const ca = issueCertificate({ commonName, organization: 'bamel-autoscaler', isCA: true, notBefore, notAfter: new Date(now.getTime() + this.opts.caValidityMs) });
    const pair = this.sign({ commonName, organization: 'bamel-autoscaler', key: ca.key, spki: ca.spki }, ca.certPem);
    // The old CA stays trusted beside the new one until it expires.
    const old = previous ? pemBlocks(previous.caPem).filter((b) => stillValid(b, now)) : [];
    const result = { ...pair, caPem: [ca.certPem, ...old.slice(0, 1)].join('') };
    this.caKeys.set(result, ca.keyPem);
    return result;
  }

  private withNewCert(current: ServingPair & { caKeyPem?: string }): ServingPair {
    const first = pemBlocks(current.caPem)[0] ?? '';
    const ca = new X509Certificate(first);
    const key = createPrivateKey(current.caKeyPem ?? '');
    const subject = /CN=([^\n,]+)/.exec(ca.subject)?.[1] ?? 'bamel-ca';
    const organization = /O=([^\n,]+)/.exec(ca.subject)?.[1];
    const spki = ca.publicKey.export({ type: 'spki', format: 'der' });
    return this.sign({ commonName: subject, ...(organization ? { organization } : {}), key, spki }, current.caPem);
  }

  private sign(issuer: { commonName: string; organization?: string; key: KeyObject; spki: Buffer }, caPem: string): ServingPair {
    const now = this.opts.now();
    const leaf = issueCertificate({
      commonName: this.opts.hosts[0] ?? 'bamel-manager',
      isCA: false,
      hosts: this.opts.hosts,
      notBefore: new Date(now.getTime() - 60 * 60_000),
      notAfter: new Date(now.getTime() + this.opts.certValidityMs),
      issuer,
    });
    return { caPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
  }

  private async writeFiles(p: ServingPair): Promise<void> {
    const stamp = `${p.caPem}\n${p.certPem}\n${p.keyPem}`;
    if (stamp === this.written) return;
    for (const dir of this.opts.certDirs) {
      await mkdir(dir, { recursive: true });
      // The key before the certificate: the watcher takes a pair only once they fit.
      for (const [file, content, mode] of [
        [SECRET_KEYS.caCert, p.caPem, 0o644],
        [SECRET_KEYS.key, p.keyPem, 0o600],
        [SECRET_KEYS.cert, p.certPem, 0o644],
      ] as const) {
        const tmp = join(dir, `.${file}.tmp`);
        await writeFile(tmp, content, { mode });
        await rename(tmp, join(dir, file));
      }
    }
    this.written = stamp;
    const cert = new X509Certificate(p.certPem);
    this.opts.logger.info({ dirs: this.opts.certDirs, serial: cert.serialNumber, notAfter: cert.validTo }, 'serving certificate written');
  }

  /** True once the configuration carries the CA (or none is to be kept current). */
  private async injectCaBundle(caPem: string): Promise<boolean> {
    const name = this.opts.webhookConfigurationName;
    if (!name) return true;
    const bundle = Buffer.from(caPem).toString('base64');
    for (let attempt = 0; attempt < 3; attempt++) {
      let config: k8s.V1ValidatingWebhookConfiguration;
      try {
        config = await this.admission.readValidatingWebhookConfiguration({ name });
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 404) {
          if (!this.configMissingLogged) this.opts.logger.info({ configuration: name }, 'no ValidatingWebhookConfiguration to inject the CA into (yet)');
          this.configMissingLogged = true;
          return false;
        }
        throw err;
      }
      this.configMissingLogged = false;
      const stale = (config.webhooks ?? []).filter((w) => w.clientConfig.caBundle !== bundle);
      if (stale.length === 0) return true;
      for (const w of stale) w.clientConfig.caBundle = bundle;
      try {
        await this.admission.replaceValidatingWebhookConfiguration({ name, body: config });
        this.opts.logger.info({ configuration: name, webhooks: stale.map((w) => w.name) }, 'webhook caBundle updated');
        return true;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 409) continue;
        throw err;
      }
    }
    return false;
  }
}

function stillValid(pemText: string, now: Date): boolean {
  try {
    return new Date(new X509Certificate(pemText).validTo).getTime() > now.getTime();
  } catch {
    return false;
  }
}

/** The public half of a PEM private key. */
function publicKeyOf(keyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(keyPem));
}

function decode(secret: k8s.V1Secret): (ServingPair & { caKeyPem?: string }) | undefined {
  const d = secret.data ?? {};
  const text = (k: string): string | undefined => (d[k] !== undefined ? Buffer.from(d[k], 'base64').toString('utf8') : undefined);
  const caPem = text(SECRET_KEYS.caCert);
  const certPem = text(SECRET_KEYS.cert);
  const keyPem = text(SECRET_KEYS.key);
  const caKeyPem = text(SECRET_KEYS.caKey);
  if (caPem === undefined || certPem === undefined || keyPem === undefined) return caKeyPem !== undefined ? { caPem: caPem ?? '', certPem: '', keyPem: '', caKeyPem } : undefined;
  return { caPem, certPem, keyPem, ...(caKeyPem !== undefined ? { caKeyPem } : {}) };
}

function encode(p: ServingPair, caKeyB64: string): Record<string, string> {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return { [SECRET_KEYS.caCert]: b64(p.caPem), [SECRET_KEYS.caKey]: caKeyB64, [SECRET_KEYS.cert]: b64(p.certPem), [SECRET_KEYS.key]: b64(p.keyPem) };
}
