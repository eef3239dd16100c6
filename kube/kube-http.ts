import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, type KubeStatus } from './errors.js';

export { KubeApiError, type KubeStatus };

/**
 * Plain GETs against the API server with the KubeConfig's credentials, for the list-watch
 * cache. The generated clients cannot stream a watch, and client-node's Watch cannot be
 * aborted before the response headers arrive and drops the body of an error response (the
 * Status that says 410 Gone); node's own http client does both.
 */

export type Query = Record<string, string | number | boolean | undefined>;

/** Opens a GET and resolves with the response once its headers are in and its status is 2xx. */
export async function kubeGet(kc: KubeConfig, path: string, query: Query, signal: AbortSignal, what: string, accept = 'application/json'): Promise<http.IncomingMessage> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${what}: the kubeconfig has no current cluster`);
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));

  // Asked per request: token files and exec plugins rotate credentials.
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  signal.throwIfAborted();
  const headers: http.OutgoingHttpHeaders = { ...(opts.headers as http.OutgoingHttpHeaders | undefined), accept };
  const request = url.protocol === 'http:' ? http.request : https.request;

  return new Promise((resolve, reject) => {
    const req = request(url, { ...opts, method: 'GET', headers, signal });
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
    req.end();
  });
}

/** A GET whose JSON body is read whole. */
export async function kubeGetJson<T>(kc: KubeConfig, path: string, query: Query, signal: AbortSignal, what: string, accept?: string): Promise<T> {
  const res = await kubeGet(kc, path, query, signal, what, accept);
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
