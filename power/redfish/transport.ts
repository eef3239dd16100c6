import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { DriverTimeouts } from '../driver.js';
import { BmcProtocolError, BmcResponseTooLargeError, BmcTimeoutError, BmcUnreachableError, type BmcError } from '../errors.js';
import type { RedfishResponse } from './messages.js';
import type { Operation } from '../operation.js';
import { errorMessage } from '../../kube/errors.js';

export interface TransportOptions {
  /** protocol://host:port of the BMC. */
  baseUrl: string;
  timeouts: DriverTimeouts;
  insecureSkipVerify: boolean;
  caBundle: string | undefined;
  /** Send Accept-Encoding: identity until the BMC answers 406 to it. */
  identityEncoding: boolean;
  logger: Logger;
}

export interface TransportRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** A path on the BMC, or an absolute URL on the same origin. */
  path: string;
  body?: unknown;
  /** Authentication headers; never logged. */
  headers?: Record<string, string>;
}

// Redfish bodies are small; a BMC that sends megabytes is answering something else. The
// same limit holds for the body as sent and once decompressed: a few KiB of gzip can expand
// to gigabytes (a "gzip bomb"), so decompression stops at the limit.
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  UND_ERR_SOCKET: 'connection closed without an answer',
  UND_ERR_CLOSED: 'connection closed',
};
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|SSL_|HOSTNAME_MISMATCH/;

/**
 * HTTP to one BMC over one undici Agent (so the TLS settings are this machine's own).
 * Maps network failures to typed errors; HTTP statuses are left to the caller. Sends
 * `Accept-Encoding: identity` as sushy does, and stops sending it for good when the BMC
 * answers 406 to it (HPE iLO 5 Gen10 Plus does).
 */
export class RedfishTransport {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly agent: Agent;
  private readonly timeouts: DriverTimeouts;
  private readonly log: Logger;
  private identityEncoding: boolean;
  readonly #secrets = new Set<string>();

  constructor(opts: TransportOptions) {
    this.baseUrl = opts.baseUrl;
    this.origin = new URL(opts.baseUrl).origin;
    this.timeouts = opts.timeouts;
    this.log = opts.logger;
    this.identityEncoding = opts.identityEncoding;
    this.agent = new Agent({
      connect: {
        timeout: opts.timeouts.connectMs,
        rejectUnauthorized: !opts.insecureSkipVerify,
        ...(opts.caBundle === undefined ? {} : { ca: opts.caBundle }),
      },
      headersTimeout: opts.timeouts.requestMs,
      bodyTimeout: opts.timeouts.requestMs,
    });
  }

  /** Text from the BMC is shown to people: never with a password or token in it. */
  addSecret(secret: string): void {
    if (secret !== '') this.#secrets.add(secret);
  }

  removeSecret(secret: string): void {
    this.#secrets.delete(secret);
  }

  redact = (text: string): string => {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join('[redacted]');
    return out;
  };

  /** The path of a same-origin URL the BMC handed out (Location, @odata.id), else undefined. */
  sameOriginPath(location: string): string | undefined {
    try {
      const url = new URL(location, this.baseUrl);
      return url.origin === this.origin ? `${url.pathname}${url.search}` : undefined;
    } catch {
      return undefined;
    }
  }

  async send(op: Operation, req: TransportRequest): Promise<RedfishResponse> {
    const res = await this.sendOnce(op, req);
    if (res.status === 406 && this.identityEncoding) {
      this.identityEncoding = false;
      this.log.info({ path: res.path }, 'the BMC refused Accept-Encoding: identity (406); sending no Accept-Encoding from now on');
      return this.sendOnce(op, req);
    }
    return res;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private async sendOnce(op: Operation, req: TransportRequest): Promise<RedfishResponse> {
    const path = this.sameOriginPath(req.path);
    if (path === undefined) {
      throw new BmcProtocolError(`the BMC pointed to ${JSON.stringify(req.path)}, which is not on ${this.origin}; not following it`, { address: op.endpoint, operation: op.operation });
    }
    const headers: Record<string, string> = { accept: 'application/json', 'odata-version': '4.0', ...req.headers };
    if (this.identityEncoding) headers['accept-encoding'] = 'identity';
    let payload: string | undefined;
    if (req.body !== undefined) {
      payload = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    const started = Date.now();
    try {
      const res = await request(`${this.origin}${path}`, { dispatcher: this.agent, method: req.method, headers, body: payload ?? null, signal: op.signal });
      const raw = await readLimited(res.body);
      const text = this.decode(op, `${req.method} ${path}`, raw, res.headers['content-encoding']).toString('utf8');
      this.log.debug({ method: req.method, path, status: res.statusCode, ms: Date.now() - started }, 'redfish request');
      return { method: req.method, path, status: res.statusCode, headers: res.headers, body: parseJson(text), text };
    } catch (err) {
      if (op.signal.aborted) throw err;
      throw this.networkError(op, `${req.method} ${path}`, err);
    }
  }

  /** The body as the Content-Encoding says, decompressed up to MAX_BODY_BYTES and no further. */
  private decode(op: Operation, what: string, raw: Buffer, encoding: string | string[] | undefined): Buffer {
    const value = (Array.isArray(encoding) ? encoding[0] : encoding)?.trim().toLowerCase();
    if (raw.length === 0 || value === undefined || value === '' || value === 'identity') return raw;
    const limit = { maxOutputLength: MAX_BODY_BYTES };
    try {
      if (value === 'gzip' || value === 'x-gzip') return gunzipSync(raw, limit);
      if (value === 'deflate') return inflateSync(raw, limit);
      if (value === 'br') return brotliDecompressSync(raw, limit);
    } catch (err) {
      if (errorCode(err) === 'ERR_BUFFER_TOO_LARGE') {
        throw new BmcResponseTooLargeError(
          `${what}: the answer (${raw.length} bytes, ${value}) decompresses to more than ${describeBytes(MAX_BODY_BYTES)}, the limit for a Redfish answer; not decompressed further`,
          { address: op.endpoint, operation: op.operation, limitBytes: MAX_BODY_BYTES },
        );
      }
      // Not what the header said: parse it as it came.
    }
    return raw;
  }

  private networkError(op: Operation, what: string, err: unknown): BmcError {
    if (err instanceof BmcProtocolError) return err;
    const code = errorCode(err);
    const place = { address: op.endpoint, operation: op.operation, cause: err };
    if (code !== undefined && TIMEOUT_CODES.has(code)) {
      const limit = code === 'UND_ERR_CONNECT_TIMEOUT' ? `connecting took longer than ${this.timeouts.connectMs} ms` : `no answer within ${this.timeouts.requestMs} ms`;
      return new BmcTimeoutError(`${what}: ${limit}`, place);
    }
    const unreachable = code === undefined ? undefined : UNREACHABLE[code];
    if (unreachable !== undefined) return new BmcUnreachableError(`${what}: ${unreachable} (${code})`, place);
    if (code !== undefined && TLS_CODE.test(code)) {
      return new BmcProtocolError(`${what}: TLS failed (${code})`, {
        ...place,
        hint: "give the BMC's CA certificate in caBundle, or set insecureSkipVerify for a BMC with a self-signed certificate",
      });
    }
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return new BmcResponseTooLargeError(`${what}: the answer is larger than ${describeBytes(MAX_BODY_BYTES)}, the limit for a Redfish answer; not read further`, { ...place, limitBytes: MAX_BODY_BYTES });
    const message = errorMessage(err);
    return new BmcUnreachableError(`${what}: ${code ?? message}`, place);
  }
}

function errorCode(err: unknown): string | undefined {
  // Happy-eyeballs connects fail with an AggregateError, undici wraps some causes.
  const candidates: unknown[] = [err];
  if (err instanceof AggregateError) candidates.push(...(err.errors as unknown[]));
  if (err instanceof Error && err.cause !== undefined) candidates.push(err.cause);
  for (const candidate of candidates) {
    const code = (candidate as { code?: unknown } | null)?.code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw Object.assign(new Error('response too large'), { code: 'UND_ERR_RES_EXCEEDED_MAX_SIZE' });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function describeBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB (${n} bytes)` : `${n} bytes`;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
