import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { WebhookMetrics } from '../../webhook/metrics.js';
import { WebhookServer, type WebhookStores } from '../../webhook/server.js';
import { malformedBodies } from '../helpers/malformed-reviews.js';
import { admissionReview, post, webhookCerts, type WebhookCerts } from '../helpers/webhook.js';
import { autoscaler, inventoryConfigMap, poweringOn } from './fixtures.js';
import { parseBindAddress } from '../../kube/net.js';

/** The real HTTPS server in this process, over stores filled by the test. */

class ListStore<T extends k8s.KubernetesObject> {
  synced = true;
  constructor(private readonly items: T[] = []) {}
  add(item: T): void {
    this.items.push(item);
  }
  get(key: string): T | undefined {
    return this.items.find((i) => (i.metadata?.namespace ? `${i.metadata.namespace}/${i.metadata.name}` : i.metadata?.name) === key);
  }
  list(): T[] {
    return [...this.items];
  }
  hasSynced(): boolean {
    return this.synced;
  }
}

interface Running {
  server: WebhookServer;
  url: string;
  registry: Registry;
  stores: { autoscalers: ListStore<BareMetalAutoscaler>; inventories: ListStore<k8s.V1ConfigMap>; secrets: ListStore<k8s.KubernetesObject> };
  liveReads: string[];
}

let certs: WebhookCerts;

t.before(async () => {
  certs = await webhookCerts();
});

async function start(t: { teardown(fn: () => unknown): void }, opts: { liveInventory?: k8s.V1ConfigMap; syncWaitMs?: number } = {}): Promise<Running> {
  const stores = {
    autoscalers: new ListStore<BareMetalAutoscaler>([autoscaler('rack-a', { machineSelector: { matchLabels: { rack: 'a' } } })]),
    inventories: new ListStore<k8s.V1ConfigMap>([inventoryConfigMap('inv', 'machines', [{ name: 'a-1', labels: { rack: 'a' } }, { name: 'b-1', labels: { rack: 'b' } }])]),
    secrets: new ListStore<k8s.KubernetesObject>([{ metadata: { namespace: 'inv', name: 'bmc' } }]),
  };
  const registry = new Registry();
  const liveReads: string[] = [];
  const server = new WebhookServer({
    bindAddress: '127.0.0.1:0',
    certDir: certs.dir,
    stores: stores satisfies WebhookStores,
    readConfigMap: async (namespace, name) => {
      liveReads.push(`${namespace}/${name}`);
      const cm = opts.liveInventory;
      return cm && cm.metadata?.namespace === namespace && cm.metadata.name === name ? cm : undefined;
    },
    metrics: new WebhookMetrics(registry),
    logger: pino({ level: 'silent' }),
    ...(opts.syncWaitMs !== undefined ? { syncWaitMs: opts.syncWaitMs } : {}),
  });
  await server.start();
  t.teardown(() => server.stop());
  return { server, url: `https://${server.address()}`, registry, stores, liveReads };
}

const bma = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', metadata: { name }, spec: { inventory: { namespace: 'inv', name: 'machines' }, ...spec } });

function response(json: Record<string, unknown> | undefined): { uid: string; allowed: boolean; status?: { code: number; message: string }; warnings?: string[] } {
  return (json as { response: ReturnType<typeof response> }).response;
}

t.test('answers AdmissionReviews on both routes, with the verdict, the message and the warnings', async (t) => {
  const { url, registry } = await start(t);
  const ok = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('rack-b', { machineSelector: { matchLabels: { rack: 'b' } } }))), { ca: certs.ca });
  t.equal(ok.status, 200);
  t.match(ok.json, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { allowed: true } });
  t.notOk(response(ok.json).warnings, 'no warnings');

  const review = admissionReview('baremetalautoscalers', 'CREATE', bma('rack-x', { minMachines: 1, scaleDown: { unneededSeconds: 10 } }));
  const denied = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(review), { ca: certs.ca });
  const r = response(denied.json);
  t.equal(r.uid, (review.request as { uid: string }).uid, 'the uid is echoed');
  t.equal(r.allowed, false);
  t.equal(r.status?.code, 403);
  t.match(r.status?.message, /spec\.machineSelector: selects machine that BareMetalAutoscaler rack-a already selects \(a-1\)/);
  t.match(r.warnings, [/spec\.scaleDown\.unneededSeconds: 10s is under a minute/]);

  const inv = await post(`${url}/validate/inventory`, JSON.stringify(admissionReview('configmaps', 'CREATE', inventoryConfigMap('inv', 'new', [{ name: 'BAD' }]))), { ca: certs.ca });
  t.match(response(inv.json), { allowed: false, status: { message: /machines\.yaml: machines\[0\] \(BAD\)\.name: "BAD" is not a valid DNS-1123 subdomain/ } });

  const wrongRoute = await post(`${url}/validate/inventory`, JSON.stringify(review), { ca: certs.ca });
  t.match(response(wrongRoute.json), { allowed: false, status: { message: /\/validate\/inventory validates core\/ConfigMap, not autoscaling.bamel.io\/BareMetalAutoscaler; fix the rules/ } });

  const del = admissionReview('baremetalautoscalers', 'CREATE', bma('x', {}));
  (del.request as Record<string, unknown>).operation = 'DELETE';
  t.match(response((await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(del), { ca: certs.ca })).json), { allowed: true }, 'DELETE has nothing to refuse');

  const notFound = await post(`${url}/validate/pods`, '{}', { ca: certs.ca });
  t.equal(notFound.status, 404);
  t.match(notFound.json, { kind: 'Status', message: /no route POST \/validate\/pods; the webhook serves POST \/validate\/baremetalautoscaler and POST \/validate\/inventory/ });

  const metrics = await registry.metrics();
  t.match(metrics, /bamel_webhook_requests_total\{webhook="baremetalautoscaler",verdict="allowed"\} 2/);
  t.match(metrics, /bamel_webhook_requests_total\{webhook="baremetalautoscaler",verdict="denied"\} 1/);
  t.match(metrics, /bamel_webhook_requests_total\{webhook="inventory",verdict="denied"\} 2/);
  t.match(metrics, /bamel_webhook_request_duration_seconds_count\{webhook="baremetalautoscaler"\} 3/);
  t.match(metrics, /bamel_webhook_warnings_total\{webhook="baremetalautoscaler"\} 1/);
});

t.test('an inventory missing from the cache is read live; found or not, the answer says so', async (t) => {
  const fresh = inventoryConfigMap('fresh', 'machines', [{ name: 'f-1' }]) as k8s.V1ConfigMap;
  const { url, liveReads, registry } = await start(t, { liveInventory: fresh });
  const found = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('f', { inventory: { namespace: 'fresh', name: 'machines' } }))), { ca: certs.ca });
  t.match(response(found.json), { allowed: true });
  const missing = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('g', { inventory: { namespace: 'nowhere', name: 'machines' } }))), { ca: certs.ca });
  t.match(response(missing.json), { allowed: false, status: { message: /spec\.inventory: ConfigMap nowhere\/machines not found/ } });
  await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('h', { machineSelector: { matchLabels: { rack: 'b' } } }))), { ca: certs.ca });
  t.same(liveReads, ['fresh/machines', 'nowhere/machines'], 'a cached inventory is not read again');
  const metrics = await registry.metrics();
  t.match(metrics, /bamel_webhook_inventory_lookups_total\{source="live"\} 1/);
  t.match(metrics, /bamel_webhook_inventory_lookups_total\{source="missing"\} 1/);
  t.match(metrics, /bamel_webhook_inventory_lookups_total\{source="cache"\} 1/);
});

t.test('DELETE of an inventory: refused while a machine depending on it is in flight, admitted at rest', async (t) => {
  const { url, stores, registry } = await start(t);
  const stored = inventoryConfigMap('inv', 'machines', [{ name: 'a-1', labels: { rack: 'a' } }, { name: 'b-1', labels: { rack: 'b' } }]);
  const atRest = response((await post(`${url}/validate/inventory`, JSON.stringify(admissionReview('configmaps', 'DELETE', null, stored)), { ca: certs.ca })).json);
  t.match(atRest, { allowed: true, warnings: [/deleting inventory inv\/machines: BareMetalAutoscaler rack-a will find no inventory/] }, 'no machine in flight: admitted, with a warning');

  stores.autoscalers.add(autoscaler('rack-b', { machineSelector: { matchLabels: { rack: 'b' } } }, [poweringOn('b-1')]));
  const review = admissionReview('configmaps', 'DELETE', null, stored);
  const denied = response((await post(`${url}/validate/inventory`, JSON.stringify(review), { ca: certs.ca })).json);
  t.equal(denied.uid, (review.request as { uid: string }).uid);
  t.equal(denied.allowed, false);
  t.equal(denied.status?.code, 403);
  t.match(denied.status?.message, /^inventory inv\/machines cannot be deleted while BareMetalAutoscaler rack-b has a machine in flight: b-1 being powered on \(PowerOn operation op-b-1/);

  // An autoscaler's DELETE is still not judged.
  const bmaDelete = admissionReview('baremetalautoscalers', 'DELETE', null, bma('rack-b', {}));
  t.match(response((await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(bmaDelete), { ca: certs.ca })).json), { allowed: true });
  t.match(await registry.metrics(), /bamel_webhook_requests_total\{webhook="inventory",verdict="denied"\} 1/);
});

t.test('until the caches are synced, requests are refused with a reason (never judged on an empty cache)', async (t) => {
  const { url, stores } = await start(t, { syncWaitMs: 100 });
  stores.autoscalers.synced = false;
  const r = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('rack-x', {}))), { ca: certs.ca });
  t.match(response(r.json), { allowed: false, status: { message: /still loading its caches .*; retry in a few seconds/ } });
});

// (10,000 of them go to a real `bamel manager` in test/integration/webhook.test.ts.)
t.test('3,000 malformed AdmissionReviews: each is answered 400 with a message, and the server goes on', async (t) => {
  const { url } = await start(t);
  const bodies = malformedBodies(3_000);
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: certs.ca });
  t.teardown(() => agent.destroy());
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const b = bodies[next++];
      if (b === undefined) break;
      const r = await post(`${url}/validate/${next % 2 === 0 ? 'baremetalautoscaler' : 'inventory'}`, b.body, { ca: certs.ca, agent, contentType: b.contentType });
      const message = r.json?.message;
      if (r.status !== 400 || typeof message !== 'string' || message.length < 10) {
        failures.push(`${b.what} (${JSON.stringify(b.body.toString('utf8').slice(0, 80))}): ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  t.same(failures.slice(0, 10), [], `all 3,000 answered 400 with a message (${failures.length} were not)`);
  const after = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('ok', { machineSelector: { matchLabels: { rack: 'b' } } }))), { ca: certs.ca });
  t.match(response(after.json), { allowed: true }, 'a good review is still answered');
  const sample = await post(`${url}/validate/baremetalautoscaler`, '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}', { ca: certs.ca });
  t.match(sample.json, { kind: 'Status', code: 400, reason: 'BadRequest', message: /^malformed AdmissionReview: .*request\.uid: expected string length greater or equal to 1/ });
});

t.test('certificates rotated during a stream of requests: none fails, open connections stay, new ones get the new certificate', async (t) => {
  const { server, url } = await start(t);
  const body = JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('rack-b', { machineSelector: { matchLabels: { rack: 'b' } } })));
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca: certs.ca });
  t.teardown(() => keepAlive.destroy());
  const first = await post(`${url}/validate/baremetalautoscaler`, body, { ca: certs.ca, agent: keepAlive });
  const firstSerial = first.serial;

  let stop = false;
  const failures: string[] = [];
  let sent = 0;
  const serials = new Set<string>();
  // Fresh connections (a handshake each) and one kept-alive connection, side by side.
  const stream = async (agent: Agent | undefined): Promise<void> => {
    while (!stop) {
      try {
        const r = await post(`${url}/validate/baremetalautoscaler`, body, { ca: certs.ca, ...(agent ? { agent } : {}) });
        sent++;
        if (!agent) serials.add(r.serial);
        if (r.status !== 200 || response(r.json).allowed !== true) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const streams = [stream(undefined), stream(undefined), stream(keepAlive)];
  const rotatedTo: string[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    rotatedTo.push(await certs.rotate());
  }
  // The watcher picks the last one up within its debounce; reload() makes it certain.
  await server.reloadCertificates();
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await Promise.all(streams);

  t.same(failures, [], `${sent} requests during 5 rotations, none failed`);
  t.ok(sent > 20, `a real stream (${sent} requests)`);
  const last = await post(`${url}/validate/baremetalautoscaler`, body, { ca: certs.ca });
  t.equal(last.serial, rotatedTo.at(-1), 'a new connection is served the newest certificate');
  t.not(last.serial, firstSerial);
  t.ok(serials.size >= 2, `fresh connections saw ${serials.size} certificates during the stream`);
  const kept = await post(`${url}/validate/baremetalautoscaler`, body, { ca: certs.ca, agent: keepAlive });
  t.equal(kept.socket, first.socket, 'the kept-alive connection from before the rotations is still open');
  t.equal(kept.serial, firstSerial, 'and still speaks with the certificate of its handshake');
});

t.test('a certificate that does not fit its key is not served; the previous one stays', async (t) => {
  const { url, server, registry } = await start(t);
  const before = certs.serial();
  const key = readFileSync(join(certs.dir, 'tls.key'));
  await certs.rotate();
  writeFileSync(join(certs.dir, 'tls.key'), key); // the old key beside the new certificate
  await server.reloadCertificates();
  const r = await post(`${url}/validate/baremetalautoscaler`, '{}', { ca: certs.ca });
  t.equal(r.status, 400, 'still answering');
  t.equal(r.serial, before, 'with the last good certificate');
  t.match(await registry.metrics(), /bamel_webhook_certificate_reloads_total\{result="error"\} 1/);
  await certs.rotate();
  await server.reloadCertificates();
  t.equal((await post(`${url}/validate/baremetalautoscaler`, '{}', { ca: certs.ca })).serial, certs.serial(), 'a good pair is taken again');
});

t.test('bind addresses', async (t) => {
  t.same(parseBindAddress(':9443', '--webhook-bind-address'), { host: '0.0.0.0', port: 9443 });
  t.same(parseBindAddress('127.0.0.1:0', '--webhook-bind-address'), { host: '127.0.0.1', port: 0 });
  t.same(parseBindAddress('[::1]:9443', '--webhook-bind-address'), { host: '::1', port: 9443 });
  t.throws(() => parseBindAddress('9443x', '--webhook-bind-address'), /--webhook-bind-address "9443x": expected host:port or :port/);
});

t.test('without certificates the server does not start, and says which file', async (t) => {
  const server = new WebhookServer({
    bindAddress: '127.0.0.1:0',
    certDir: '/nonexistent/certs',
    stores: { autoscalers: new ListStore(), inventories: new ListStore(), secrets: new ListStore() },
    metrics: new WebhookMetrics(new Registry()),
    logger: pino({ level: 'silent' }),
  });
  await t.rejects(server.start(), /--webhook-cert-dir \/nonexistent\/certs: cannot read tls\.crt \(ENOENT\)/);
});
