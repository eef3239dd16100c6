import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { isIPv6, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { handleReset, refuse, TaskRegistry, type Reply } from './redfish-fake/actions.js';
import {
  collection,
  computerSystem,
  resetActionInfo,
  ROOT,
  serviceRoot,
  session,
  SESSION_SERVICE,
  SESSIONS,
  sessionService,
  SYSTEMS,
  systemPath,
  TASK_MONITORS,
  TASK_SERVICE,
  TASKS,
} from './redfish-fake/resources.js';
import { FakeSystem, type AddSystemOptions } from './redfish-fake/system.js';
import { CHASSIS, chassisCollection, chassisReply } from './redfish-fake/chassis.js';

export { FakeSystem, QUIRK_PROFILES, type AddSystemOptions, type QuirkProfile, type QuirkTunables } from './redfish-fake/system.js';

export interface RedfishFakeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
  /** Serve HTTPS with this PEM key and certificate instead of HTTP. */
  tls?: { key: string; cert: string };
}

/** One request as the fake answered it (status 0: the connection was dropped). */
export interface FakeRequestRecord {
  method: string;
  path: string;
  status: number;
  /** The system the path belongs to, if any. */
  system?: string;
}

interface Session {
  id: string;
  username: string;
  systems: Set<FakeSystem>;
}

interface Authenticated {
  systems: FakeSystem[];
  session: Session | undefined;
}

const MAX_BODY_BYTES = 64 * 1024;
// A system's chassis has the system's id: its requests concern that system.
const SYSTEM_PATH = /^\/redfish\/v1\/(?:Systems|Chassis)\/([^/]+)(\/.*)?$/;
const TASK_PATH = /^\/redfish\/v1\/TaskService\/(?:TaskMonitors|Tasks)\/([^/]+)$/;

/**
 * The project's own Redfish BMC: many simulated systems behind one HTTP listener, each
 * with its credentials, vendor quirk profiles (see QuirkProfile) and faults (SimFaults).
 * A system is one BMC: its credentials see only its own system, and a service-wide
 * behaviour (the service root, the SessionService) follows the systems a request can
 * concern: the one in its path, else those its credentials belong to, else all of them.
 */
export class RedfishFakeServer {
  private readonly host: string;
  private boundPort: number;
  private readonly log: Logger | undefined;
  private readonly tls: { key: string; cert: string } | undefined;
  private server: Server | undefined;
  private readonly systems = new Map<string, FakeSystem>();
  private readonly sessions = new Map<string, Session>();
  private readonly tasks = new TaskRegistry();
  private readonly sockets = new Set<Socket>();
  private readonly requestListeners = new Set<(record: FakeRequestRecord) => void>();

  constructor(opts: RedfishFakeOptions) {
    this.host = opts.host;
    this.boundPort = opts.port;
    this.log = opts.logger?.child({ component: 'redfish-fake' });
    this.tls = opts.tls;
  }

  get port(): number {
    return this.boundPort;
  }

  /** http(s)://host:port */
  get url(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://${isIPv6(this.host) ? `[${this.host}]` : this.host}:${this.boundPort}`;
  }

  /** The inventory address of a system, e.g. redfish+http://127.0.0.1:8000/redfish/v1/Systems/1. */
  addressOf(system: FakeSystem | string, scheme = this.tls === undefined ? 'redfish+http' : 'redfish+https'): string {
    const found = typeof system === 'string' ? this.systems.get(system) : system;
    if (found === undefined) throw new Error(`the Redfish fake has no system ${typeof system === 'string' ? system : system.id}`);
    return `${this.url.replace(/^https?/, scheme)}${systemPath(found)}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Ends every session, as a BMC does when they time out or it restarts. */
  expireSessions(): void {
    this.sessions.clear();
  }

  async start(): Promise<{ port: number }> {
    if (this.server !== undefined) return { port: this.boundPort };
    await this.listen();
    this.log?.info({ url: this.url }, 'Redfish fake listening');
    return { port: this.boundPort };
  }

  async stop(): Promise<void> {
    for (const system of [...this.systems.values()]) await system.stop();
    this.tasks.clear();
    this.sessions.clear();
    await this.closeListener();
  }

  addSystem(opts: AddSystemOptions): FakeSystem {
    if (this.systems.has(opts.id)) throw new Error(`the Redfish fake already has a system ${opts.id}`);
    const system = new FakeSystem(opts, {
      faultsChanged: (s) => {
        // A changed password ends the sessions opened with the old one.
        if (s.faults.wrongPassword === true) for (const sess of this.sessions.values()) sess.systems.delete(s);
      },
      removed: (s) => {
        if (this.systems.get(s.id) === s) this.systems.delete(s.id);
      },
    });
    this.systems.set(opts.id, system);
    return system;
  }

  /** Every request, after it was answered. */
  onRequest(listener: (record: FakeRequestRecord) => void): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  /** The whole server goes away (the listener closes, connections drop) or comes back on the same port. */
  async setUnreachable(unreachable: boolean): Promise<void> {
    if (unreachable) await this.closeListener();
    else if (this.server === undefined) await this.listen();
  }

  private async listen(): Promise<void> {
    const handler: RequestListener = (req, res) => this.receive(req, res);
    const server: Server = this.tls === undefined ? createServer(handler) : createTlsServer({ key: this.tls.key, cert: this.tls.cert }, handler);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address !== null && typeof address === 'object') this.boundPort = address.port;
    this.server = server;
  }

  private async closeListener(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => this.dispatch(req, res, Buffer.concat(chunks).toString('utf8')));
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, text: string, delayed = false): void {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://fake').pathname.replace(/\/+$/, '') || '/';
    const body = parseJson(text);
    const pathSystem = this.systemOfPath(path);
    const concerned = pathSystem ? [pathSystem] : this.systemsOfCredentials(req, path, body);
    // A slow BMC handles (and carries out) each request only after the delay.
    const slowMs = Math.max(0, ...concerned.map((s) => s.faults.slowMs ?? 0));
    if (slowMs > 0 && !delayed) {
      setTimeout(() => this.dispatch(req, res, text, true), slowMs);
      return;
    }
    const record = (status: number) => {
      const entry: FakeRequestRecord = { method, path, status, ...(pathSystem ? { system: pathSystem.id } : {}) };
      this.log?.debug(entry, 'redfish fake request');
      for (const listener of this.requestListeners) listener(entry);
    };
    if (concerned.length > 0 && concerned.every((s) => s.faults.unreachable === true)) {
      req.socket.destroy();
      record(0);
      return;
    }
    // Left unanswered: the client's timeout or stop() ends it.
    if (concerned.length > 0 && concerned.every((s) => s.faults.hang === true)) return;
    let reply: Reply;
    if (/\bidentity\b/i.test(req.headers['accept-encoding'] ?? '') && concerned.length > 0 && concerned.every((s) => s.has('not-acceptable-identity'))) {
      reply = refuse(406, 'Base.1.18.GeneralError', 'The requested encoding (identity) is not acceptable.');
    } else {
      reply = this.route(method, path, req, body, pathSystem);
    }
    const payload = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      'odata-version': '4.0',
      'cache-control': 'no-cache',
      ...(payload === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      ...reply.headers,
    });
    res.end(payload);
    record(reply.status);
  }

  private route(method: string, path: string, req: IncomingMessage, body: unknown, pathSystem: FakeSystem | null | undefined): Reply {
    if (method === 'GET' && path === '/redfish') return { status: 200, body: { v1: `${ROOT}/` } };
    if (method === 'GET' && path === ROOT) {
      const sessionService = !this.everySystem((s) => s.has('no-session-service'));
      return { status: 200, body: serviceRoot({ sessionService, linksSessions: sessionService && !this.everySystem((s) => s.has('sessions-via-service')) }) };
    }
    if (path.startsWith(SESSION_SERVICE) && this.everySystem((s) => s.has('no-session-service'))) return notFound(path);
    if (method === 'POST' && path === SESSIONS) return this.login(body);

    const auth = this.authenticate(req);
    const allowed = pathSystem ? auth.systems.includes(pathSystem) : auth.systems.length > 0;
    if (!allowed) {
      if (pathSystem && method === 'POST' && path.endsWith('/Actions/ComputerSystem.Reset')) pathSystem.emit(resetTypeOf(body), 'refused', 'authentication');
      const basicRefused = pathSystem ? pathSystem.has('session-only') : auth.systems.every((s) => s.has('session-only'));
      return { ...refuse(401, 'Base.1.18.NoValidSession', 'There is no valid session established with the implementation.'), ...(basicRefused ? {} : { headers: { 'www-authenticate': 'Basic realm="Redfish"' } }) };
    }
    if (pathSystem === null) return notFound(path);
    if (pathSystem && path.startsWith(`${SYSTEMS}/`)) return this.routeSystem(method, path, pathSystem, body);
    if (pathSystem && path.startsWith(`${CHASSIS}/`)) return method === 'GET' ? (chassisReply(pathSystem, path) ?? notFound(path)) : notAllowed(method, path);
    return this.routeService(method, path, auth);
  }

  private routeSystem(method: string, path: string, system: FakeSystem, body: unknown): Reply {
    const base = systemPath(system);
    if (path === base && method === 'GET') return { status: 200, body: computerSystem(system) };
    if (path === `${base}/ResetActionInfo` && method === 'GET' && system.has('actioninfo-only')) return { status: 200, body: resetActionInfo(system) };
    if (path === `${base}/Actions/ComputerSystem.Reset`) return method === 'POST' ? handleReset(system, body, this.tasks) : notAllowed(method, path);
    return notFound(path);
  }

  private routeService(method: string, path: string, auth: Authenticated): Reply {
    if (method === 'GET' && path === SYSTEMS) return { status: 200, body: collection(SYSTEMS, 'ComputerSystemCollection', 'Computer System Collection', auth.systems.map(systemPath)) };
    if (method === 'GET' && path === CHASSIS) return { status: 200, body: chassisCollection(auth.systems) };
    if (method === 'GET' && path === SESSION_SERVICE) return { status: 200, body: sessionService() };
    if (method === 'GET' && path === SESSIONS) {
      const visible = [...this.sessions.values()].filter((s) => auth.systems.some((sys) => s.systems.has(sys)));
      return { status: 200, body: collection(SESSIONS, 'SessionCollection', 'Session Collection', visible.map((s) => `${SESSIONS}/${s.id}`)) };
    }
    if (path.startsWith(`${SESSIONS}/`)) {
      const id = path.slice(SESSIONS.length + 1);
      const token = [...this.sessions.entries()].find(([, s]) => s.id === id && auth.systems.some((sys) => s.systems.has(sys)))?.[0];
      const found = token === undefined ? undefined : this.sessions.get(token);
      if (token === undefined || found === undefined) return notFound(path);
      if (method === 'GET') return { status: 200, body: session(found.id, found.username) };
      if (method !== 'DELETE') return notAllowed(method, path);
      this.sessions.delete(token);
      return { status: 204 };
    }
    if (method === 'GET' && path === TASK_SERVICE) return { status: 200, body: { '@odata.id': TASK_SERVICE, Id: 'TaskService', Name: 'Task Service', Tasks: { '@odata.id': TASKS } } };
    const taskId = TASK_PATH.exec(path)?.[1];
    const found = taskId === undefined ? undefined : this.tasks.get(taskId);
    if (found !== undefined && auth.systems.includes(found.system)) {
      if (method !== 'GET') return notAllowed(method, path);
      return path.startsWith(TASK_MONITORS) ? this.tasks.monitor(found) : this.tasks.resource(found);
    }
    return method === 'GET' ? notFound(path) : notAllowed(method, path);
  }

  private login(body: unknown): Reply {
    const username = stringField(body, 'UserName');
    const password = stringField(body, 'Password');
    if (username === undefined || password === undefined) {
      return refuse(400, 'Base.1.18.PropertyMissing', 'The property UserName or Password is a required property and must be included in the request.');
    }
    const owners = [...this.systems.values()].filter((s) => s.credentialsEqual(username, password));
    if (owners.length > 0 && owners.every((s) => s.has('no-session-service'))) return notFound(SESSIONS);
    const accepted = owners.filter((s) => s.credentialsAccepted(username, password) && !s.has('no-session-service'));
    if (accepted.length === 0) return refuse(401, 'Base.1.18.ResourceAtUriUnauthorized', 'While accessing the resource at /redfish/v1/SessionService/Sessions, the service received an authorization error: the credentials are not valid.');
    const exhausted = accepted.map((s) => s.takeSessionFailure()).some(Boolean);
    if (exhausted) {
      const retryAfter = Math.max(...accepted.map((s) => s.tunables.retryAfterSeconds));
      return {
        ...refuse(503, 'Base.1.18.SessionLimitExceeded', 'The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.'),
        headers: { 'retry-after': String(retryAfter) },
      };
    }
    const id = randomBytes(6).toString('hex');
    const token = randomBytes(24).toString('hex');
    this.sessions.set(token, { id, username, systems: new Set(accepted) });
    return { status: 201, body: session(id, username), headers: { 'x-auth-token': token, location: `${SESSIONS}/${id}` } };
  }

  private authenticate(req: IncomingMessage): Authenticated {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && token !== '') {
      const found = this.sessions.get(token);
      const systems = found === undefined ? [] : [...found.systems].filter((s) => this.systems.get(s.id) === s && s.faults.wrongPassword !== true);
      return { systems, session: found };
    }
    const basic = basicCredentials(req);
    if (basic === undefined) return { systems: [], session: undefined };
    const systems = [...this.systems.values()].filter((s) => s.credentialsAccepted(basic.username, basic.password) && !s.has('session-only'));
    return { systems, session: undefined };
  }

  /** FakeSystem for a system path, null for a path naming no system, undefined for other paths. */
  private systemOfPath(path: string): FakeSystem | null | undefined {
    const id = SYSTEM_PATH.exec(path)?.[1];
    if (id !== undefined) return this.systems.get(safeDecode(id)) ?? null;
    const taskId = TASK_PATH.exec(path)?.[1];
    return taskId === undefined ? undefined : this.tasks.get(taskId)?.system;
  }

  /** The systems a service-wide request concerns: by its credentials (faults aside), else all. */
  private systemsOfCredentials(req: IncomingMessage, path: string, body: unknown): FakeSystem[] {
    const all = [...this.systems.values()];
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') {
      const found = this.sessions.get(token);
      if (found !== undefined && found.systems.size > 0) return [...found.systems];
    }
    const basic = basicCredentials(req);
    const username = basic?.username ?? (path === SESSIONS ? stringField(body, 'UserName') : undefined);
    const password = basic?.password ?? (path === SESSIONS ? stringField(body, 'Password') : undefined);
    if (username !== undefined && password !== undefined) {
      const owners = all.filter((s) => s.credentialsEqual(username, password));
      if (owners.length > 0) return owners;
    }
    return all;
  }

  private everySystem(predicate: (s: FakeSystem) => boolean): boolean {
    return this.systems.size > 0 && [...this.systems.values()].every(predicate);
  }
}

function notFound(path: string): Reply {
  return refuse(404, 'Base.1.18.ResourceNotFound', `The requested resource of type Resource named ${path} was not found.`);
}

function notAllowed(method: string, path: string): Reply {
  return refuse(405, 'Base.1.18.OperationNotAllowed', `The HTTP method ${method} is not allowed on ${path}.`);
}

function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (header === undefined || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function stringField(body: unknown, key: string): string | undefined {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function resetTypeOf(body: unknown): string {
  return stringField(body, 'ResetType') ?? 'unknown';
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
