import { seededRandom } from '../../bench/helpers/random.js';

/**
 * Bodies that are not well-formed AdmissionReviews, drawn from a seeded generator so every
 * run sends the same ones: broken JSON, wrong roots, a wrong envelope, and every field of
 * the request with the wrong type or missing. Each must be answered 400 with a message.
 */

export interface MalformedBody {
  body: Buffer;
  /** What was broken, for a failing assertion's message. */
  what: string;
  contentType: string | null;
}

const valid = (): Record<string, unknown> => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: 'autoscaling.bamel.io', version: 'v1alpha1', kind: 'BareMetalAutoscaler' },
    resource: { group: 'autoscaling.bamel.io', version: 'v1alpha1', resource: 'baremetalautoscalers' },
    name: 'rack-a',
    operation: 'UPDATE',
    userInfo: { username: 'admin' },
    object: { metadata: { name: 'rack-a' }, spec: { inventory: { namespace: 'a', name: 'b' } } },
    oldObject: { metadata: { name: 'rack-a' }, spec: { inventory: { namespace: 'a', name: 'b' } } },
    dryRun: false,
  },
});

const WRONG_VALUES: unknown[] = [null, 0, -1, 1.5, true, false, '', 'x', [], [1, 2], {}, { a: 1 }, '\u0000', 'ℵ'.repeat(50)];
const REQUEST_FIELDS = ['uid', 'kind', 'resource', 'operation', 'object', 'oldObject', 'dryRun', 'name', 'namespace', 'userInfo', 'subResource'];
const REQUIRED = new Set(['uid', 'kind', 'resource', 'operation', 'object', 'oldObject']);
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream', null];

function isWrongFor(field: string, value: unknown): boolean {
  switch (field) {
    case 'uid':
      return typeof value !== 'string' || value === '';
    case 'kind':
    case 'resource':
      return true;
    case 'operation':
      return !['CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(value as string);
    case 'object':
    case 'oldObject':
      // on UPDATE both are needed; an object ({}, {a:1}) would be well-formed
      return typeof value !== 'object' || value === null || Array.isArray(value);
    case 'dryRun':
      return typeof value !== 'boolean';
    case 'name':
    case 'namespace':
    case 'subResource':
      return typeof value !== 'string';
    case 'userInfo':
      return typeof value !== 'object' || value === null || Array.isArray(value);
    default:
      return false;
  }
}

export function malformedBodies(count: number, seed = 7): MalformedBody[] {
  const rnd = seededRandom(seed);
  const out: MalformedBody[] = [];
  const text = JSON.stringify(valid());
  while (out.length < count) {
    const contentType = rnd.pick(CONTENT_TYPES);
    const push = (body: string | Buffer, what: string): void => {
      out.push({ body: Buffer.isBuffer(body) ? body : Buffer.from(body), what, contentType });
    };
    switch (rnd.int(9)) {
      case 0: {
        const cut = rnd.int(text.length - 1);
        push(text.slice(0, cut), `truncated at ${cut}`);
        break;
      }
      case 1: {
        const bytes = Buffer.alloc(1 + rnd.int(200));
        for (let i = 0; i < bytes.length; i++) bytes[i] = rnd.int(256);
        // A random byte string that happens to be JSON must still not be an AdmissionReview object.
        push(bytes[0] === 0x7b ? Buffer.concat([Buffer.from('x'), bytes]) : bytes, 'random bytes');
        break;
      }
      case 2:
        push(JSON.stringify(rnd.pick([null, 0, 42, 'AdmissionReview', [], [valid()], true])), 'not an object at the root');
        break;
      case 3: {
        const v = valid();
        const field = rnd.pick(['apiVersion', 'kind']);
        v[field] = rnd.pick(['admission.k8s.io/v1beta1', 'v1', 'AdmissionRequest', null, 3, '']);
        if (rnd.chance(0.3)) delete v[field];
        push(JSON.stringify(v), `envelope ${field}`);
        break;
      }
      case 4: {
        const v = valid();
        if (rnd.chance(0.5)) delete v.request;
        else v.request = rnd.pick([null, 'request', 5, [], [v.request]]);
        push(JSON.stringify(v), 'request missing or not an object');
        break;
      }
      case 5: {
        const v = valid();
        const request = v.request as Record<string, unknown>;
        const field = rnd.pick(REQUEST_FIELDS);
        const candidates = WRONG_VALUES.filter((w) => isWrongFor(field, w));
        if (REQUIRED.has(field) && rnd.chance(0.3)) delete request[field];
        else request[field] = rnd.pick(candidates);
        push(JSON.stringify(v), `request.${field}`);
        break;
      }
      case 6: {
        const v = valid();
        const request = v.request as Record<string, unknown>;
        const which = rnd.pick(['kind', 'resource']);
        const inner = { ...(request[which] as Record<string, unknown>) };
        const key = rnd.pick(Object.keys(inner));
        if (rnd.chance(0.5)) delete inner[key];
        else inner[key] = rnd.pick([null, 1, [], {}, true]);
        request[which] = inner;
        push(JSON.stringify(v), `request.${which}.${key}`);
        break;
      }
      case 7: {
        const depth = 1 + rnd.int(5000);
        push(`${'['.repeat(depth)}${']'.repeat(rnd.chance(0.5) ? depth : depth - 1)}`, `nested ${depth}`);
        break;
      }
      default: {
        push(rnd.pick(['', ' ', '\n', '\ufeff', '{', '}', '{"apiVersion":', 'null', '{}', '{"__proto__":{"apiVersion":"admission.k8s.io/v1"}}']), 'tiny');
        break;
      }
    }
  }
  return out;
}
