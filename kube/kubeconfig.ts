import { existsSync, readFileSync } from 'node:fs';
import type * as https from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubeEndpoint } from './kube-http.js';

/**
 * Credentials for a process that needs the API server and nothing of client-node (the node
 * agent: client-node costs ~70 MiB to import). What it reads: the in-cluster service account
 * (token, CA, KUBERNETES_SERVICE_HOST/PORT), or a kubeconfig file's current context with its
 * cluster (server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name)
 * and user (token, tokenFile, client-certificate(-data), client-key(-data), username and
 * password). Exec plugins and auth providers are refused by name: they are not for agents.
 * A token file is read again every TOKEN_REREAD_MS, as client-go does: the kubelet rotates
 * projected service account tokens.
 */

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const TOKEN_REREAD_MS = 60_000;

export class KubeconfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeconfigError';
  }
}

export interface KubeAccessOptions {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  token?: string;
  /** Read now, and again when the last read is TOKEN_REREAD_MS old. */
  tokenFile?: string;
  username?: string;
  password?: string;
  /** Where the settings came from, for errors ("kubeconfig /x, context y", "in-cluster"). */
  source: string;
  now?: () => number;
}

/** One cluster and one identity, applied to each request as client-node's KubeConfig does. */
export class KubeAccess implements KubeEndpoint {
  private token: string | undefined;
  private tokenReadAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(readonly opts: KubeAccessOptions) {
    this.now = opts.now ?? Date.now;
    this.token = opts.token;
    if (opts.tokenFile !== undefined) this.readToken(true);
  }

  get server(): string {
    return this.opts.server;
  }

  getCurrentCluster(): { readonly server: string } {
    return { server: this.opts.server };
  }

  /** The bearer token now: a token file's content, re-read when due. */
  currentToken(): string | undefined {
    if (this.opts.tokenFile !== undefined && this.now() - this.tokenReadAt >= TOKEN_REREAD_MS) this.readToken(false);
    return this.token;
  }

  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const { ca, cert, key, insecureSkipTlsVerify, tlsServerName, username, password } = this.opts;
    if (ca) opts.ca = ca;
    if (cert) opts.cert = cert;
    if (key) opts.key = key;
    if (insecureSkipTlsVerify) opts.rejectUnauthorized = false;
    if (tlsServerName) opts.servername = tlsServerName;
    const headers = { ...(opts.headers as Record<string, string> | undefined) };
    const token = this.currentToken();
    if (token) headers.authorization = `Bearer ${token}`;
    else if (username !== undefined) headers.authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    opts.headers = headers;
    return Promise.resolve();
  }

  private readToken(first: boolean): void {
    const file = this.opts.tokenFile as string;
    this.tokenReadAt = this.now();
    try {
      this.token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      // Later failures keep the last token (as client-go does): it may well still be valid.
      if (first || this.token === undefined) throw new KubeconfigError(`${this.opts.source}: cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The service account the kubelet mounts into every pod, and the API server's service address. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new KubeconfigError('in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod?)');
  const caFile = join(dir, 'ca.crt');
  return new KubeAccess({
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readPart(caFile, 'in-cluster: the service account CA'),
    tokenFile: join(dir, 'token'),
    source: 'in-cluster',
  });
}

/**
 * The access of --kubeconfig when given; else $KUBECONFIG's files (merged, the first
 * definition of a name wins, as kubectl does); else ~/.kube/config when it exists; else the
 * in-cluster service account: the order of client-node's loadFromDefault.
 */
export function loadKubeAccess(path?: string, env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeAccess {
  if (path) return accessFromKubeconfig([path]);
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '');
    const present = files.filter((f) => existsSync(f));
    if (present.length === 0) throw new KubeconfigError(`KUBECONFIG names no file that exists: ${files.join(delimiter)}`);
    return accessFromKubeconfig(present);
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return accessFromKubeconfig([home]);
  if (env.KUBERNETES_SERVICE_HOST) return inClusterAccess(env, serviceAccountDir);
  throw new KubeconfigError('no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster');
}

interface Entries {
  currentContext: string | undefined;
  /** name → [the entry's body, the directory relative paths in it are resolved against] */
  contexts: Map<string, [Record<string, unknown>, string]>;
  clusters: Map<string, [Record<string, unknown>, string]>;
  users: Map<string, [Record<string, unknown>, string]>;
}

/** The current context of the merged files, as one KubeAccess. */
export function accessFromKubeconfig(files: string[]): KubeAccess {
  const e: Entries = { currentContext: undefined, contexts: new Map(), clusters: new Map(), users: new Map() };
  for (const file of files) mergeFile(e, file);
  const where = `kubeconfig ${files.join(delimiter)}`;
  if (!e.currentContext) throw new KubeconfigError(`${where}: no current-context is set (kubectl config use-context NAME)`);
  const ctx = e.contexts.get(e.currentContext)?.[0];
  if (!ctx) throw new KubeconfigError(`${where}: current-context "${e.currentContext}" is not among its contexts (${[...e.contexts.keys()].join(', ') || 'none'})`);
  const source = `${where}, context "${e.currentContext}"`;
  const clusterName = str(ctx.cluster, `${source}: cluster`);
  if (!clusterName) throw new KubeconfigError(`${source}: the context names no cluster`);
  const userName = str(ctx.user, `${source}: user`) || undefined;
  const [cluster, clusterDir] = e.clusters.get(clusterName) ?? [];
  if (!cluster || !clusterDir) throw new KubeconfigError(`${source}: cluster "${clusterName}" is not defined in the kubeconfig`);
  const server = str(cluster.server, `${source}: cluster "${clusterName}" server`);
  if (!server) throw new KubeconfigError(`${source}: cluster "${clusterName}" has no server`);
  const [user, userDir] = userName === undefined ? [{}, clusterDir] : (e.users.get(userName) ?? []);
  if (!user || !userDir) throw new KubeconfigError(`${source}: user "${userName}" is not defined in the kubeconfig`);
  for (const unsupported of ['exec', 'auth-provider'] as const) {
    if (user[unsupported] !== undefined) throw new KubeconfigError(`${source}: user "${userName}" authenticates with ${unsupported}, which the agent does not run; give it a token, tokenFile or client certificate`);
  }
  const part = (body: Record<string, unknown>, dir: string, key: string, what: string): Buffer | undefined => {
    const data = str(body[`${key}-data`], `${source}: ${what} ${key}-data`);
    if (data) return Buffer.from(data, 'base64');
    const file = str(body[key], `${source}: ${what} ${key}`);
    return file ? readPart(isAbsolute(file) ? file : join(dir, file), `${source}: ${what} ${key}`) : undefined;
  };
  const ca = part(cluster, clusterDir, 'certificate-authority', `cluster "${clusterName}"`);
  const cert = part(user, userDir, 'client-certificate', `user "${userName}"`);
  const key = part(user, userDir, 'client-key', `user "${userName}"`);
  if ((cert === undefined) !== (key === undefined)) throw new KubeconfigError(`${source}: user "${userName}" has a client ${cert ? 'certificate without its key' : 'key without its certificate'}`);
  const tokenFile = str(user.tokenFile, `${source}: user "${userName}" tokenFile`);
  const token = str(user.token, `${source}: user "${userName}" token`);
  const username = str(user.username, `${source}: user "${userName}" username`);
  const password = str(user.password, `${source}: user "${userName}" password`);
  const tlsServerName = str(cluster['tls-server-name'], `${source}: cluster "${clusterName}" tls-server-name`);
  return new KubeAccess({
    server,
    source,
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(token ? { token } : tokenFile ? { tokenFile: isAbsolute(tokenFile) ? tokenFile : join(userDir, tokenFile) } : {}),
    ...(username !== undefined ? { username, ...(password !== undefined ? { password } : {}) } : {}),
  });
}

function mergeFile(e: Entries, file: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubeconfigError(`cannot read kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KubeconfigError(`kubeconfig ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new KubeconfigError(`kubeconfig ${file} is not a kubeconfig (expected a mapping with clusters, contexts, users)`);
  const d = doc as Record<string, unknown>;
  const dir = dirname(file);
  e.currentContext ??= str(d['current-context'], `kubeconfig ${file}: current-context`) || undefined;
  for (const [list, key, into] of [['clusters', 'cluster', e.clusters], ['contexts', 'context', e.contexts], ['users', 'user', e.users]] as const) {
    const items = d[list] ?? [];
    if (!Array.isArray(items)) throw new KubeconfigError(`kubeconfig ${file}: ${list} must be a list`);
    for (const [i, item] of (items as unknown[]).entries()) {
      const entry = item && typeof item === 'object' ? (item as Record<string, unknown>) : {};
      const name = entry.name;
      if (typeof name !== 'string' || name === '') throw new KubeconfigError(`kubeconfig ${file}: ${list}[${i}] has no name`);
      const body = entry[key] ?? {};
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new KubeconfigError(`kubeconfig ${file}: ${list}[${i}] ("${name}"): ${key} must be a mapping`);
      if (!into.has(name)) into.set(name, [body as Record<string, unknown>, dir]);
    }
  }
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new KubeconfigError(`${what} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function readPart(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KubeconfigError(`${what}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
