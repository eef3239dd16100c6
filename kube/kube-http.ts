import * as http from 'node:http';
import * as https from 'node:https';
import { KubeApiError, type KubeStatus } from './errors.js';

export { KubeApiError, type KubeStatus };

/**
 * Plain requests against the API server with the kubeconfig's credentials: the list-watch
 * cache's GETs, and the node agent's few writes. The generated clients cannot stream a
 * watch, and client-node's Watch cannot be aborted before the response headers arrive and
 * drops the body of an error response (the Status that says 410 Gone); node's own http
 * client does both. And client-node costs a process ~70 MiB just to import: the agent
 * (kube/kubeconfig.ts) speaks to the API server through this module alone.
 */

/**
 * Where the API server is and how to authenticate to it: what client-node's KubeConfig
 * offers (the manager passes one) and kube/kubeconfig.ts's KubeAccess (the agent's).
 */
export interface KubeEndpoint {
  getCurrentCluster(): { readonly server: string } | null;
  /** Sets the TLS options and auth headers of one request (asked per request: tokens rotate). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export type Query = Record<string, string | number | boolean | undefined>;

/** Default deadline of one API request. Lists of large collections go through the informer, not here. */
export const API_REQUEST_TIMEOUT_MS = 30_000;

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  signal: AbortSignal;
  /** What is being done, for errors: "writing TrafficReport n1". */
  what: string;
  accept?: string;
  /** Sent as is (JSON text), with `contentType` (default application/json). */
  body?: string;
  contentType?: string;
}

/** Opens a GET and resolves with the response once its headers are in and its status is 2xx. */
export function kubeGet(kc: KubeEndpoint, path: string, query: Query, signal: AbortSignal, what: string, accept = 'application/json'): Promise<http.IncomingMessage> {
  return kubeRequest(kc, { method: 'GET', path, query, signal, what, accept });
}

/** Sends one request and resolves with the response once its headers are in and its status is 2xx. */
export async function kubeRequest(kc: KubeEndpoint, r: KubeRequest): Promise<http.IncomingMessage> {
  const { what, signal } = r;
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${what}: the kubeconfig has no current cluster`);
  const url = new URL(cluster.server.replace(/\/+$/, '') + r.path);
  for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));

  // Asked per request: token files and exec plugins rotate credentials.
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  signal.throwIfAborted();
  const headers: http.OutgoingHttpHeaders = { ...(opts.headers as http.OutgoingHttpHeaders | undefined), accept: r.accept ?? 'application/json' };
  if (r.body !== undefined) {
    headers['content-type'] = r.contentType ?? 'application/json';
    headers['content-length'] = Buffer.byteLength(r.body);
  }
  const request = url.protocol === 'http:' ? http.request : https.request;

  return new Promise((resolve, reject) => {
    const req = request(url, { ...opts, method: r.method, headers, signal });
    req.on('socket', (socket) => {
      // Lets the kernel notice a dead peer on a long watch.
      socket.setKeepAlive(true, 15_000);
    });
    req.on('error', (err) => reject(new Error(`${what}: ${err.message}`, { cause: err })));
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      if (code >= 200 && code < 300) {
        resolve(res);
        return;
      }
      readBody(res, 64 << 10)
        .then((body) => reject(new KubeApiError(what, code, parseStatus(body))))
        .catch(() => reject(new KubeApiError(what, code)));
    });
    req.end(r.body);
  });
}

/** A GET whose JSON body is read whole. */
export function kubeGetJson<T>(kc: KubeEndpoint, path: string, query: Query, signal: AbortSignal, what: string, accept?: string): Promise<T> {
  return kubeJson<T>(kc, { method: 'GET', path, query, signal, what, ...(accept === undefined ? {} : { accept }) });
}

/** A request whose JSON answer is read whole. */
export async function kubeJson<T>(kc: KubeEndpoint, r: KubeRequest): Promise<T> {
  const { what } = r;
  const res = await kubeRequest(kc, r);
  let body: string;
  try {
    body = await readBody(res, Infinity);
  } catch (err) {
    throw new Error(`${what}: reading the response: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(body) as T;
  } catch (err) {
    throw new Error(`${what}: the response is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

export function parseStatus(body: string): KubeStatus | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function readBody(res: http.IncomingMessage, limit: number): Promise<string> {
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) {
    body += chunk as string;
    if (body.length > limit) {
      res.destroy();
      break;
    }
  }
  return body;
}
