import t from 'tap';
import { MalformedReviewError, parseAdmissionReview, reviewResponse } from '../../webhook/review.js';
import { admissionWarnings, denialMessage, MAX_WARNING_LENGTH } from '../../webhook/verdict.js';
import { admissionReview } from '../helpers/webhook.js';

const good = admissionReview('configmaps', 'UPDATE', { metadata: { name: 'm', namespace: 'n' } }, { metadata: { name: 'm', namespace: 'n' } });

t.test('a well-formed AdmissionReview parses, as JSON text or object', async (t) => {
  const request = parseAdmissionReview(JSON.stringify(good));
  t.equal(request.operation, 'UPDATE');
  t.equal(request.namespace, 'n');
  t.same(parseAdmissionReview(good), request);
});

t.test('a malformed one is refused with what is wrong', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['', /^empty body; expected an admission.k8s.io\/v1 AdmissionReview in JSON/],
    ['{"a":', /^body is not JSON \(.*\); expected an admission.k8s.io\/v1 AdmissionReview/],
    ['[1]', /^body is a JSON array; expected an admission.k8s.io\/v1 AdmissionReview object/],
    ['null', /^body is JSON null/],
    [{ ...good, apiVersion: 'admission.k8s.io/v1beta1' }, /apiVersion "admission.k8s.io\/v1beta1", kind "AdmissionReview": expected apiVersion admission.k8s.io\/v1, kind AdmissionReview \(set admissionReviewVersions: \[v1\]/],
    [{ ...good, request: 5 }, /^malformed AdmissionReview: request: /],
    [{ ...good, request: { ...(good.request as object), operation: 'PATCH' } }, /^malformed AdmissionReview: request\.operation: /],
    [{ ...good, request: { ...(good.request as object), object: null } }, /request\.object is missing; a UPDATE request carries the object/],
    [{ ...good, request: { ...(good.request as object), oldObject: null } }, /request\.oldObject is missing; an UPDATE request carries the stored object/],
    [{ ...good, request: { ...(good.request as object), kind: { group: '', version: 'v1' } } }, /request\.kind\.kind: expected required property/],
  ];
  for (const [body, message] of cases) {
    t.throws(() => parseAdmissionReview(body), { name: 'MalformedReviewError', message }, JSON.stringify(body).slice(0, 60));
  }
  t.ok(new MalformedReviewError('x') instanceof Error);
});

t.test('the response: denied with every problem, 403; warnings either way', async (t) => {
  const denied = reviewResponse('u1', { errors: [{ field: 'spec.a', message: 'bad; fix it' }], warnings: [{ field: 'spec.b', message: 'risky' }] });
  t.same(denied, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'u1', allowed: false, status: { code: 403, reason: 'Forbidden', message: 'spec.a: bad; fix it' }, warnings: ['spec.b: risky'] },
  });
  t.same(reviewResponse('u2', { errors: [], warnings: [] }), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u2', allowed: true } });
  t.equal(denialMessage([{ field: 'spec.a', message: 'one' }, { field: '', message: 'two' }]), '2 problems:\n- spec.a: one\n- two');
});

t.test('warnings are cut where the API server would cut them, by us', async (t) => {
  const long = admissionWarnings([{ field: 'f', message: `${'x'.repeat(400)}\nnext line é` }]);
  t.equal(long[0]?.length, MAX_WARNING_LENGTH);
  t.match(long[0], /\.\.\.$/);
  const many = admissionWarnings(Array.from({ length: 40 }, (_, i) => ({ field: `w${i}`, message: 'y'.repeat(200) })));
  t.ok(many.join('').length <= 4200);
  t.match(many.at(-1), /^\d+ more warnings not shown$/);
  t.same(admissionWarnings([{ field: 'f', message: 'a\nb\tc é' }]), ['f: a b c ?']);
});
