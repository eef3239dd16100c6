import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fieldOf } from './structure.js';
import { admissionWarnings, denialMessage, type Verdict } from './verdict.js';
import { errorMessage } from '../kube/errors.js';

/**
 * The admission.k8s.io/v1 AdmissionReview envelope: what the API server sends and what it
 * expects back. A body that is not a well-formed AdmissionReview is answered 400 with what
 * is wrong; it never reaches the checks.
 */

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type Operation = (typeof OPERATIONS)[number];

const GroupVersionKind = Type.Object({ group: Type.String(), version: Type.String(), kind: Type.String() });
const GroupVersionResource = Type.Object({ group: Type.String(), version: Type.String(), resource: Type.String() });
const EmbeddedObject = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: true })]);

export const AdmissionRequestSchema = Type.Object({
  uid: Type.String({ minLength: 1, maxLength: 128 }),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: Type.Optional(Type.String()),
  requestKind: Type.Optional(GroupVersionKind),
  requestResource: Type.Optional(GroupVersionResource),
  requestSubResource: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  operation: Type.Union(OPERATIONS.map((o) => Type.Literal(o))),
  userInfo: Type.Optional(Type.Object({}, { additionalProperties: true })),
  object: Type.Optional(EmbeddedObject),
  oldObject: Type.Optional(EmbeddedObject),
  dryRun: Type.Optional(Type.Boolean()),
  options: Type.Optional(Type.Unknown()),
});

export const AdmissionReviewSchema = Type.Object({
  apiVersion: Type.Literal(ADMISSION_API_VERSION),
  kind: Type.Literal('AdmissionReview'),
  request: AdmissionRequestSchema,
});

export type AdmissionRequest = Static<typeof AdmissionRequestSchema>;

/** A body that is not a well-formed AdmissionReview: answered 400 with this message. */
export class MalformedReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReviewError';
  }
}

/** Parses and checks the envelope; throws MalformedReviewError saying what is wrong. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  let value: unknown = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const text = body.toString();
    if (text.trim() === '') throw new MalformedReviewError('empty body; expected an admission.k8s.io/v1 AdmissionReview in JSON');
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new MalformedReviewError(`body is not JSON (${errorMessage(err)}); expected an admission.k8s.io/v1 AdmissionReview`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedReviewError(`body is ${Array.isArray(value) ? 'a JSON array' : `JSON ${value === null ? 'null' : typeof value}`}; expected an admission.k8s.io/v1 AdmissionReview object`);
  }
  const review = value as Record<string, unknown>;
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview') {
    throw new MalformedReviewError(
      `apiVersion ${JSON.stringify(review.apiVersion ?? null)}, kind ${JSON.stringify(review.kind ?? null)}: expected apiVersion ${ADMISSION_API_VERSION}, kind AdmissionReview (set admissionReviewVersions: [v1] in the webhook configuration)`,
    );
  }
  const problems: string[] = [];
  for (const error of Value.Errors(AdmissionReviewSchema, value)) {
    const field = fieldOf(error.path);
    if (problems.some((p) => p.startsWith(`${field}:`))) continue;
    problems.push(`${field}: ${error.message.toLowerCase()}`);
    if (problems.length >= 5) break;
  }
  if (problems.length > 0) throw new MalformedReviewError(`malformed AdmissionReview: ${problems.join('; ')}`);
  const request = review.request as AdmissionRequest;
  if ((request.operation === 'CREATE' || request.operation === 'UPDATE') && (request.object === undefined || request.object === null)) {
    throw new MalformedReviewError(`malformed AdmissionReview: request.object is missing; a ${request.operation} request carries the object`);
  }
  if (request.operation === 'UPDATE' && (request.oldObject === undefined || request.oldObject === null)) {
    throw new MalformedReviewError('malformed AdmissionReview: request.oldObject is missing; an UPDATE request carries the stored object');
  }
  return request;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; reason: string; message: string };
    warnings?: string[];
  };
}

/** The AdmissionReview answer: denied with every problem when there are errors, and the warnings either way. */
export function reviewResponse(uid: string, verdict: Verdict): AdmissionReviewResponse {
  const warnings = admissionWarnings(verdict.warnings);
  const allowed = verdict.errors.length === 0;
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed,
      // 403 Forbidden, as kubectl and controller-runtime's webhooks report a denial; 422
      // would make kubectl print "The request is invalid" and drop the message.
      ...(allowed ? {} : { status: { code: 403, reason: 'Forbidden', message: denialMessage(verdict.errors) } }),
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}
