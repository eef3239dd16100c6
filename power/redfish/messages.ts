import { BmcAuthError, BmcRefusedError, type BmcError } from '../errors.js';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What a BMC answered, with the body parsed when it was JSON. */
export interface RedfishResponse {
  method: string;
  /** The path the request went to (never a full URL with credentials). */
  path: string;
  status: number;
  headers: ResponseHeaders;
  body: unknown;
  /** The raw body, for messages when it was not JSON. */
  text: string;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(value: unknown, key: string): string | undefined {
  if (!isRecord(value)) return undefined;
  const field = value[key];
  return typeof field === 'string' ? field : undefined;
}

/** The `@odata.id` of a link property such as `Systems` or `Links.Sessions`. */
export function linkField(value: unknown, key: string): string | undefined {
  return isRecord(value) ? stringField(value[key], '@odata.id') : undefined;
}

interface RedfishMessage {
  id: string | undefined;
  text: string | undefined;
}

function messageList(value: unknown): RedfishMessage[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isRecord).map((m) => ({ id: stringField(m, 'MessageId'), text: stringField(m, 'Message') }));
}

/**
 * The messages of a Redfish error (`error.@Message.ExtendedInfo`, `error.message`) or of a
 * Task (`Messages`), as "text [MessageId]" lines.
 */
export function redfishMessages(body: unknown): string[] {
  const error = isRecord(body) ? body.error : undefined;
  const messages = [...messageList(isRecord(error) ? error['@Message.ExtendedInfo'] : undefined), ...messageList(isRecord(body) ? body.Messages : undefined)];
  const lines = messages
    .filter((m) => m.text !== undefined || m.id !== undefined)
    .map((m) => (m.text === undefined ? (m.id ?? '') : m.id === undefined ? m.text : `${m.text} [${m.id}]`));
  const summary = stringField(error, 'message');
  // sushy-tools and some BMCs put the text only in error.message, with a bare MessageId beside it.
  if (summary !== undefined && !messages.some((m) => m.text !== undefined)) lines.unshift(summary);
  return lines;
}

function messageIds(body: unknown): string[] {
  const error = isRecord(body) ? body.error : undefined;
  const ids = messageList(isRecord(error) ? error['@Message.ExtendedInfo'] : undefined).map((m) => m.id ?? '');
  const code = stringField(error, 'code');
  return code === undefined ? ids : [...ids, code];
}

const ALREADY_REQUESTED = /\balready\s+in\s+(?:the\s+)?(?:requested|desired|same|that)\s+(?:power\s+)?state/i;
const ALREADY: Record<'On' | 'Off', RegExp> = {
  On: /\balready\b[^.;:]{0,30}\bon\b/i,
  Off: /\balready\b[^.;:]{0,30}\boff\b/i,
};

/** A 400/409 whose message says the system already is in the requested power state. */
export function saysAlreadyInState(res: RedfishResponse, target: 'On' | 'Off'): boolean {
  if (res.status !== 400 && res.status !== 409) return false;
  const text = [...redfishMessages(res.body), res.body === undefined ? res.text : ''].join(' ');
  return ALREADY[target].test(text) || ALREADY_REQUESTED.test(text);
}

/**
 * Refusals of a Reset that go away by themselves: iDRAC answers 409 (SYS518,
 * ActionParameterValueConflict) for a while after a power change, iLO 5 answers 400
 * InvalidOperationForSystemState while the server changes state. Any other 409 is a
 * resource-state conflict too, which is also worth waiting out.
 */
export function isTransientResetRefusal(res: RedfishResponse): boolean {
  if (res.status === 409) return true;
  if (res.status !== 400) return false;
  return messageIds(res.body).some((id) => /InvalidOperationForSystemState|ActionParameterValueConflict|SYS518/i.test(id));
}

/** Statuses worth retrying after a pause: the service is busy or out of sessions. */
export function isBusyStatus(status: number): boolean {
  return status === 503 || status === 429;
}

const MAX_RETRY_AFTER_MS = 60_000;

/** Retry-After in milliseconds (seconds or an HTTP date), capped at a minute. */
export function retryAfterMs(headers: ResponseHeaders): number | undefined {
  const raw = headers['retry-after'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

export interface ErrorPlace {
  operation: string;
  endpoint: string;
  /** Removes secrets from text that came from the BMC. */
  redact: (text: string) => string;
}

/** The typed error for a non-success answer, with the BMC's own messages. */
export function statusError(place: ErrorPlace, what: string, res: RedfishResponse, extra?: { transient?: boolean; hint?: string }): BmcError {
  const messages = redfishMessages(res.body);
  if (messages.length === 0 && res.body === undefined && res.text.trim() !== '') messages.push(res.text.trim().slice(0, 200));
  const detail = messages.length === 0 ? '' : `: ${messages.join('; ')}`;
  const message = place.redact(`${what}: ${res.method} ${res.path} answered ${res.status}${detail}`);
  const opts = { address: place.endpoint, operation: place.operation, status: res.status };
  if (res.status === 401 || res.status === 403) return new BmcAuthError(message, opts);
  const transient = extra?.transient ?? (isBusyStatus(res.status) || isTransientResetRefusal(res));
  return new BmcRefusedError(message, { ...opts, transient, ...(extra?.hint === undefined ? {} : { hint: extra.hint }) });
}
