import * as http from 'node:http';
// The class alone, not the package's index: importing that costs a process ~70 MiB, and the
// node agent, which uses this module, never loads the rest of client-node (same module
// file, so the same class as the generated clients throw).
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';

/**
 * The errors of talking to the API server, described once: client-node's ApiException
 * (from the generated clients) and KubeApiError (from kube-http's raw GETs and watches)
 * both say what was being done, the HTTP code and the Status message, never the headers
 * ApiException's own message embeds.
 */

/** The metav1.Status the API server sends with an error. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/** The API server answered with an error status (directly, or as a watch ERROR event). */
export class KubeApiError extends Error {
  readonly statusCode: number;
  readonly reason: string | undefined;

  constructor(what: string, statusCode: number, status?: KubeStatus) {
    const detail = status?.message ?? http.STATUS_CODES[statusCode] ?? 'error';
    super(`${what}: ${statusCode} ${detail}`);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = status?.reason;
  }

  /** The resourceVersion asked for is older than the server's history: relist. */
  get gone(): boolean {
    return this.statusCode === 410 || this.reason === 'Expired' || this.reason === 'Gone';
  }
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The HTTP status of an API error (either kind), or undefined for anything else. */
export function apiStatusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err instanceof KubeApiError) return err.statusCode;
  return undefined;
}

/** True when err is an API error with this HTTP status. */
export function isApiStatus(err: unknown, code: number): boolean {
  return apiStatusCode(err) === code;
}

/** The Status message in an ApiException's body (a JSON string or an object), else its code. */
export function apiExceptionMessage(err: ApiException<unknown>): string {
  const body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string' && parsed.message !== '') return parsed.message;
    } catch {
      // not a Status: the raw body says what there is
    }
    return body.slice(0, 300);
  }
  if (body && typeof body === 'object' && 'message' in body && typeof body.message === 'string') return body.message;
  return `HTTP ${err.code}`;
}

/** A loggable one-line summary of any error: "HTTP 403: <Status message>" for API errors. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}: ${apiExceptionMessage(err)}`;
  return errorMessage(err);
}
