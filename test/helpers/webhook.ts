import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * For tests and benchmarks of the admission webhook: certificates made by hack/webhook.sh
 * (the same script an operator runs), an HTTPS client that trusts them, and AdmissionReviews.
 */

const execFileP = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface WebhookCerts {
  dir: string;
  ca: Buffer;
  /** The serial of the serving certificate in the directory now. */
  serial(): string;
  /** A new serving certificate from the same CA, written as hack/webhook.sh rotate does. */
  rotate(): Promise<string>;
}

export async function webhookCerts(dir = mkdtempSync(join(tmpdir(), 'bamel-webhook-'))): Promise<WebhookCerts> {
  const env = { ...process.env, BAMEL_WEBHOOK_DIR: dir };
  await execFileP(join(repoRoot, 'hack', 'webhook.sh'), ['certs'], { env });
  const serial = (): string => new X509Certificate(readFileSync(join(dir, 'tls.crt'))).serialNumber;
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt')),
    serial,
    rotate: async () => {
      await execFileP(join(repoRoot, 'hack', 'webhook.sh'), ['rotate'], { env });
      return serial();
    },
  };
}

export interface PostResult {
  status: number;
  body: string;
  json: Record<string, unknown> | undefined;
  /** The serving certificate's serial, and the connection, as this request saw them. */
  serial: string;
  socket: TLSSocket;
}

/** POSTs a body over HTTPS, trusting only the webhook's CA. */
export function post(url: string, body: string | Buffer, opts: { ca: Buffer; agent?: Agent; contentType?: string | null; timeoutMs?: number }): Promise<PostResult> {
  return new Promise((resolvePost, reject) => {
    const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
    if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
    const req = request(url, { method: 'POST', ca: opts.ca, agent: opts.agent ?? false, headers, timeout: opts.timeoutMs ?? 10_000 }, (res) => {
      // Captured now: a kept-alive socket goes back to its pool when the body ends.
      const socket = res.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolvePost({ status: res.statusCode ?? 0, body: text, json, serial, socket });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

let uidCounter = 0;

/** An AdmissionReview v1 as the API server sends it. */
/** On DELETE, `object` is null and `oldObject` the stored object, as the API server sends them. */
export function admissionReview(resource: 'baremetalautoscalers' | 'configmaps', operation: 'CREATE' | 'UPDATE' | 'DELETE', object: unknown, oldObject?: unknown): Record<string, unknown> {
  const bma = resource === 'baremetalautoscalers';
  const kind = bma ? { group: 'autoscaling.bamel.io', version: 'v1alpha1', kind: 'BareMetalAutoscaler' } : { group: '', version: 'v1', kind: 'ConfigMap' };
  const meta = ((object ?? oldObject) as { metadata?: { name?: string; namespace?: string } } | null | undefined)?.metadata;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${process.pid}-${uidCounter++}`,
      kind,
      resource: { group: kind.group, version: kind.version, resource },
      requestKind: kind,
      requestResource: { group: kind.group, version: kind.version, resource },
      name: meta?.name ?? '',
      ...(meta?.namespace ? { namespace: meta.namespace } : {}),
      operation,
      userInfo: { username: 'test' },
      object,
      oldObject: oldObject ?? null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'CREATE' ? 'CreateOptions' : operation === 'DELETE' ? 'DeleteOptions' : 'UpdateOptions' },
    },
  };
}
