import type { Logger } from 'pino';
import type { BmcCredentials } from '../credentials.js';
import { BmcProtocolError } from '../errors.js';
import { isBusyStatus, linkField, retryAfterMs, statusError, stringField, type RedfishResponse } from './messages.js';
import type { Operation } from '../operation.js';
import type { RedfishTransport, TransportRequest } from './transport.js';

export interface RetryPolicy {
  /** Tries of one request in all, the first included. */
  attempts: number;
  /** Pause between tries when the BMC gives no Retry-After. */
  delayMs: number;
}

const SERVICE_ROOT = '/redfish/v1';

/**
 * Redfish authentication the way sushy does it: one session (X-Auth-Token) per driver,
 * created on first use and reused; HTTP Basic when the service has no SessionService or
 * will not create sessions. A 401 on a session means it expired: log in again once, and
 * if that is refused the credentials are wrong (BmcAuthError, no more tries: BMCs lock
 * accounts after a few failures). Busy answers (503, 429) are retried after Retry-After.
 */
export class RedfishAuth {
  private mode: 'unknown' | 'session' | 'basic' = 'unknown';
  private sessionsPath: string | undefined;
  // ES private fields: util.inspect and console.log of a driver do not show them.
  #token: string | undefined;
  private sessionPath: string | undefined;
  private sessionEverWorked = false;
  readonly #basicHeader: string;

  constructor(
    private readonly transport: RedfishTransport,
    private readonly credentials: BmcCredentials,
    private readonly retry: RetryPolicy,
    private readonly log: Logger,
  ) {
    const encoded = Buffer.from(`${credentials.username}:${credentials.reveal()}`).toString('base64');
    this.#basicHeader = `Basic ${encoded}`;
    transport.addSecret(credentials.reveal());
    transport.addSecret(encoded);
  }

  get sessionActive(): boolean {
    return this.#token !== undefined;
  }

  /**
   * GETs the service root (anonymous, as the specification allows; with Basic when the BMC
   * insists) and learns from it where sessions are created.
   */
  async serviceRoot(op: Operation): Promise<Record<string, unknown>> {
    let res = await this.sendBusy(op, { method: 'GET', path: SERVICE_ROOT });
    if (res.status === 401) res = await this.sendBusy(op, { method: 'GET', path: SERVICE_ROOT, headers: { authorization: this.#basicHeader } });
    if (res.status !== 200) throw statusError(this.place(op), 'reading the Redfish service root', res);
    const root = res.body;
    if (root === null || typeof root !== 'object' || Array.isArray(root)) {
      throw new BmcProtocolError(`GET ${SERVICE_ROOT} did not answer a JSON object; is this a Redfish service?`, { address: op.endpoint, operation: op.operation });
    }
    await this.findSessions(op, root as Record<string, unknown>);
    return root as Record<string, unknown>;
  }

  /** Sends a request with credentials, logging in first if needed. The caller maps statuses. */
  async request(op: Operation, req: TransportRequest): Promise<RedfishResponse> {
    if (this.mode === 'unknown') await this.login(op);
    const res = await this.sendBusy(op, this.authenticated(req));
    if (res.status !== 401 || this.mode !== 'session') return res;
    this.log.info({ path: res.path }, 'the BMC no longer accepts the session (401); logging in again');
    this.forgetSession();
    await this.login(op);
    return this.sendBusy(op, this.authenticated(req));
  }

  /** Deletes the session, if there is one. Failures only matter to the BMC's session table. */
  async logout(op: Operation): Promise<void> {
    const token = this.#token;
    const sessionPath = this.sessionPath;
    this.forgetSession();
    this.mode = 'unknown';
    if (token === undefined || sessionPath === undefined) return;
    try {
      const res = await this.transport.send(op, { method: 'DELETE', path: sessionPath, headers: { 'x-auth-token': token } });
      if (res.status >= 300 && res.status !== 404) this.log.warn({ status: res.status, path: sessionPath }, 'the BMC did not delete the session');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not delete the Redfish session');
    }
  }

  private async findSessions(op: Operation, root: Record<string, unknown>): Promise<void> {
    this.sessionsPath = linkField(root.Links, 'Sessions');
    if (this.sessionsPath !== undefined) return;
    const service = linkField(root, 'SessionService');
    if (service === undefined) return;
    const res = await this.sendBusy(op, { method: 'GET', path: service, headers: { authorization: this.#basicHeader } });
    // The SessionService may not be readable without a session: its Sessions collection
    // is where the specification puts it anyway.
    this.sessionsPath = (res.status === 200 ? linkField(res.body, 'Sessions') : undefined) ?? `${service.replace(/\/+$/, '')}/Sessions`;
  }

  private async login(op: Operation): Promise<void> {
    if (this.sessionsPath === undefined) {
      this.useBasic('the service has no SessionService');
      return;
    }
    const res = await this.sendBusy(op, {
      method: 'POST',
      path: this.sessionsPath,
      body: { UserName: this.credentials.username, Password: this.credentials.reveal() },
    });
    if (res.status === 200 || res.status === 201) {
      const token = header(res, 'x-auth-token');
      if (token === undefined) {
        this.useBasic('the session answer had no X-Auth-Token');
        return;
      }
      const location = header(res, 'location') ?? stringField(res.body, '@odata.id');
      this.#token = token;
      this.transport.addSecret(token);
      this.sessionPath = location === undefined ? undefined : this.transport.sameOriginPath(location);
      this.mode = 'session';
      this.sessionEverWorked = true;
      this.log.debug({ session: this.sessionPath }, 'Redfish session created');
      return;
    }
    if (res.status === 401 || res.status === 403 || isBusyStatus(res.status)) throw statusError(this.place(op), 'logging in', res);
    if (res.status === 404 || res.status === 405 || res.status === 501 || !this.sessionEverWorked) {
      this.useBasic(`creating a session answered ${res.status}`);
      return;
    }
    throw statusError(this.place(op), 'logging in', res);
  }

  private useBasic(why: string): void {
    if (this.mode !== 'basic') this.log.info({ why }, 'using HTTP Basic authentication');
    this.mode = 'basic';
  }

  private forgetSession(): void {
    if (this.#token !== undefined) this.transport.removeSecret(this.#token);
    this.#token = undefined;
    this.sessionPath = undefined;
  }

  private authenticated(req: TransportRequest): TransportRequest {
    const auth = this.mode === 'session' && this.#token !== undefined ? { 'x-auth-token': this.#token } : { authorization: this.#basicHeader };
    return { ...req, headers: { ...req.headers, ...auth } };
  }

  /** Sends, waiting out busy answers (session exhaustion, service unavailable). */
  private async sendBusy(op: Operation, req: TransportRequest): Promise<RedfishResponse> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.transport.send(op, req);
      if (!isBusyStatus(res.status) || attempt >= this.retry.attempts) return res;
      const waitMs = retryAfterMs(res.headers) ?? this.retry.delayMs;
      this.log.info({ status: res.status, path: res.path, attempt, waitMs }, 'the BMC is busy; retrying');
      await op.sleep(waitMs);
    }
  }

  private place(op: Operation) {
    return { operation: op.operation, endpoint: op.endpoint, redact: this.transport.redact };
  }
}

function header(res: RedfishResponse, name: string): string | undefined {
  const value = res.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
