import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { localWebhookConfiguration, manifestPath } from '../../hack/webhook-config.js';
import { ROUTES } from '../../webhook/server.js';

interface Webhook {
  name: string;
  clientConfig: { service?: { name: string; namespace: string; path: string; port: number }; url?: string; caBundle?: string };
  rules: { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[]; scope: string }[];
  objectSelector?: { matchLabels?: Record<string, string> };
  failurePolicy: string;
  matchPolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
}

const manifest = parse(readFileSync(manifestPath(), 'utf8')) as { kind: string; webhooks: Webhook[] };

t.test('config/webhook: the contract of the issue', async (t) => {
  t.equal(manifest.kind, 'ValidatingWebhookConfiguration');
  const [bma, inventory] = manifest.webhooks;
  for (const w of manifest.webhooks) {
    t.equal(w.failurePolicy, 'Fail', `${w.name}: failurePolicy`);
    t.equal(w.sideEffects, 'None');
    t.equal(w.timeoutSeconds, 5);
    t.equal(w.matchPolicy, 'Equivalent');
    t.same(w.admissionReviewVersions, ['v1']);
    t.match(w.clientConfig.service, { name: 'bamel-webhook-service', namespace: 'bamel-system', port: 443 });
    t.same(w.rules[0]?.operations, ['CREATE', 'UPDATE']);
  }
  t.equal(bma?.clientConfig.service?.path, ROUTES.baremetalautoscaler);
  t.same(bma?.rules[0], { apiGroups: ['autoscaling.bamel.io'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['baremetalautoscalers'], scope: 'Cluster' });
  t.equal(inventory?.clientConfig.service?.path, ROUTES.inventory);
  t.same(inventory?.rules[0]?.resources, ['configmaps']);
  t.same(inventory?.objectSelector, { matchLabels: { 'autoscaling.bamel.io/inventory': 'true' } }, 'only labelled ConfigMaps are sent');
  t.same(inventory?.rules[1], { apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['configmaps'], scope: 'Namespaced' }, "an inventory's DELETE is sent too");
  t.equal(inventory?.rules.length, 2);
  t.equal(bma?.rules.length, 1, "an autoscaler's DELETE is not");
});

t.test('the local variant: url and caBundle instead of the Service, and an optional extra label', async (t) => {
  const local = localWebhookConfiguration({ url: 'https://127.0.0.1:19443/', caBundle: 'PEM', name: 'mine', selector: { 'bamel.io/webhook-test': 'x' } }) as unknown as { metadata: { name: string }; webhooks: Webhook[] };
  t.equal(local.metadata.name, 'mine');
  const [bma, inventory] = local.webhooks;
  t.same(bma?.clientConfig, { url: 'https://127.0.0.1:19443/validate/baremetalautoscaler', caBundle: Buffer.from('PEM').toString('base64') });
  t.same(inventory?.clientConfig.url, 'https://127.0.0.1:19443/validate/inventory');
  t.same(bma?.objectSelector, { matchLabels: { 'bamel.io/webhook-test': 'x' } });
  t.same(inventory?.objectSelector, { matchLabels: { 'autoscaling.bamel.io/inventory': 'true', 'bamel.io/webhook-test': 'x' } }, 'the inventory label stays');
  t.equal(inventory?.failurePolicy, 'Fail', 'everything else as in config/webhook');
  t.same(inventory?.rules.flatMap((r) => r.operations), ['CREATE', 'UPDATE', 'DELETE'], 'DELETE of inventories included');
  const plain = localWebhookConfiguration({ url: 'https://127.0.0.1:1', caBundle: 'PEM' }) as unknown as { metadata: { name: string }; webhooks: Webhook[] };
  t.equal(plain.metadata.name, 'bamel-validating-webhook-configuration');
  t.notOk(plain.webhooks[0]?.objectSelector, 'no selector unless asked');
});
