// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/webhook.bench.ts
//        [--requests N] [--applies N] [--no-cluster] [--no-server] [--json]
//
// What admission costs (printed, nothing asserted; about a minute):
// (a) at the server: the webhook server in this process over caches holding 100 autoscalers
//     and 20 inventories of 100 machines (2,000 machines; 10 machines powering on), AdmissionReviews over one kept-alive
//     HTTPS connection. The handler's own time (body parsed to answer) and the round trip the
//     client sees, p50/p99, per kind of review;
// (b) end to end on the local control plane: `bamel manager` serving the webhook, the real
//     kube-apiserver calling it. `kubectl apply --dry-run=server` of an autoscaler and of an
//     inventory, with the webhook and without it (an object its objectSelector skips), and
//     the same through the API alone (no kubectl process), so the webhook's share shows.
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import type * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { localWebhookConfiguration } from '../hack/webhook-config.js';
import { kubectl, localCluster, testNamespace, uniqueName, waitFor } from '../test/integration/helpers/cluster.js';
import { startManager } from '../test/integration/helpers/manager.js';
import { installCrd } from '../test/integration/helpers/crd.js';
import { freeTcpPort } from '../test/helpers/ports.js';
import { admissionReview, post, webhookCerts, type WebhookCerts } from '../test/helpers/webhook.js';
import { autoscaler, inventoryConfigMap, poweringOn, type MachineEntry } from '../test/webhook/fixtures.js';
import { WebhookMetrics, type WebhookName } from '../webhook/metrics.js';
import { WebhookServer } from '../webhook/server.js';
import { ms, summarize, table } from './helpers/stats.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? undefined : Number(process.argv[i + 1]);
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

const REQUESTS = flag('requests', 1000);
const APPLIES = flag('applies', 40);

class MapStore<T extends k8s.KubernetesObject> {
  private readonly items = new Map<string, T>();
  constructor(items: T[]) {
    for (const i of items) this.items.set(i.metadata?.namespace ? `${i.metadata.namespace}/${i.metadata.name}` : (i.metadata?.name ?? ''), i);
  }
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  list(): T[] {
    return [...this.items.values()];
  }
  hasSynced(): boolean {
    return true;
  }
}

const INVENTORIES = 20;
const MACHINES_PER_INVENTORY = 100;
const AUTOSCALERS_PER_INVENTORY = 5;

function machinesOf(inv: number): MachineEntry[] {
  return Array.from({ length: MACHINES_PER_INVENTORY }, (_, i) => ({
    name: `inv${inv}-m${i}`,
    labels: { rack: `r${i % AUTOSCALERS_PER_INVENTORY}`, zone: `z${i % 3}` },
    address: `redfish+https://10.${inv}.${Math.floor(i / 250)}.${i % 250}/redfish/v1/Systems/1`,
    bootSeconds: 240,
  }));
}

async function atTheServer(certs: WebhookCerts): Promise<ServerFigures> {
  const inventories = Array.from({ length: INVENTORIES }, (_, inv) => inventoryConfigMap(`ns${inv}`, 'machines', machinesOf(inv)) as k8s.V1ConfigMap);
  const autoscalers: BareMetalAutoscaler[] = [];
  for (let inv = 0; inv < INVENTORIES; inv++) {
    for (let r = 0; r < AUTOSCALERS_PER_INVENTORY; r++) {
      const status = r === 0 && inv % 2 === 1 ? [poweringOn(`inv${inv}-m0`)] : undefined;
      autoscalers.push(autoscaler(`inv${inv}-rack${r}`, { inventory: { namespace: `ns${inv}`, name: 'machines' }, machineSelector: { matchLabels: { rack: `r${r}` } }, minMachines: 1 }, status));
    }
  }
  const secrets = inventories.map((cm) => ({ metadata: { namespace: cm.metadata?.namespace ?? '', name: 'bmc' } }));
  const samples = new Map<string, number[]>();
  let current = '';
  const server = new WebhookServer({
    bindAddress: '127.0.0.1:0',
    certDir: certs.dir,
    stores: { autoscalers: new MapStore(autoscalers), inventories: new MapStore(inventories), secrets: new MapStore(secrets) },
    metrics: new WebhookMetrics(new Registry()),
    logger: pino({ level: 'silent' }),
    onAnswer: (_w: WebhookName, seconds: number) => samples.get(current)?.push(seconds * 1000),
  });
  await server.start();
  const url = `https://${server.address()}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: certs.ca });

  const bma = (name: string, spec: Record<string, unknown>) => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'BareMetalAutoscaler', metadata: { name }, spec: { inventory: { namespace: 'ns3', name: 'machines' }, ...spec } });
  const stored = autoscalers[15] as BareMetalAutoscaler; // inv3-rack0, with a machine powering on
  const storedInventory = inventories[3] as k8s.V1ConfigMap;
  const changed = (inv: number, bootSeconds = 300) => inventoryConfigMap(`ns${inv}`, 'machines', machinesOf(inv).map((m, i) => (i === 99 ? { ...m, bootSeconds } : m)));
  // Each request a new machines.yaml (one machine's bootSeconds counts up): nothing cached helps.
  const fresh = (inv: number, stored: k8s.V1ConfigMap) => (i: number) => JSON.stringify(admissionReview('configmaps', 'UPDATE', changed(inv, 1000 + i), stored));
  const kinds: { name: string; route: string; body: string | ((i: number) => string); group: 'autoscaler' | 'inventory' | 'inventory-cached' | 'other' }[] = [
    { name: 'autoscaler create, allowed', group: 'autoscaler', route: 'baremetalautoscaler', body: JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('new', { machineSelector: { matchLabels: { rack: 'r9' } } }))) },
    { name: 'autoscaler create, overlap denied', group: 'autoscaler', route: 'baremetalautoscaler', body: JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('new', {}))) },
    {
      name: 'autoscaler update (ratcheted)',
      group: 'autoscaler',
      route: 'baremetalautoscaler',
      body: JSON.stringify(admissionReview('baremetalautoscalers', 'UPDATE', { ...stored, spec: { ...stored.spec, maxMachines: 7 } }, stored)),
    },
    { name: 'inventory update, 100 machines, new content', group: 'inventory', route: 'inventory', body: fresh(4, inventories[4] as k8s.V1ConfigMap) },
    { name: 'inventory update, 100 machines, 1 busy, new', group: 'inventory', route: 'inventory', body: fresh(3, storedInventory) },
    { name: 'inventory update, 100 machines, same content', group: 'inventory-cached', route: 'inventory', body: JSON.stringify(admissionReview('configmaps', 'UPDATE', changed(4), inventories[4])) },
    { name: 'inventory update, 100 machines, 1 busy, same', group: 'inventory-cached', route: 'inventory', body: JSON.stringify(admissionReview('configmaps', 'UPDATE', changed(3), storedInventory)) },
    { name: 'malformed body (400)', group: 'other', route: 'baremetalautoscaler', body: '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}' },
  ];
  const rows: string[][] = [];
  const pooled = new Map<string, number[]>();
  for (const kind of kinds) {
    current = kind.name;
    samples.set(kind.name, []);
    const roundTrips: number[] = [];
    for (let i = 0; i < REQUESTS + 100; i++) {
      const body = typeof kind.body === 'string' ? kind.body : kind.body(i);
      const t0 = performance.now();
      const r = await post(`${url}/validate/${kind.route}`, body, { ca: certs.ca, agent });
      if (i >= 100) roundTrips.push(performance.now() - t0);
      if (r.status !== 200 && r.status !== 400) throw new Error(`${kind.name}: ${r.status} ${r.body}`);
    }
    const kept = (samples.get(kind.name) ?? []).slice(100);
    pooled.set(kind.group, [...(pooled.get(kind.group) ?? []), ...kept]);
    const handler = summarize(kept);
    const trip = summarize(roundTrips);
    rows.push([kind.name, String(handler.n), ms(handler.p50), ms(handler.p99), ms(trip.p50), ms(trip.p99)]);
  }
  agent.destroy();
  await server.stop();
  console.log(`\n(a) at the server: ${AUTOSCALERS_PER_INVENTORY * INVENTORIES} autoscalers, ${INVENTORIES} inventories x ${MACHINES_PER_INVENTORY} machines in the caches; one kept-alive HTTPS connection`);
  console.log(table(['review', 'n', 'handler p50', 'handler p99', 'HTTPS round trip p50', 'p99'], rows));
  const p99 = (group: string): number => Number(summarize(pooled.get(group) ?? []).p99.toFixed(3));
  return { autoscalerP99Ms: p99('autoscaler'), inventoryP99Ms: p99('inventory'), inventoryCachedP99Ms: p99('inventory-cached') };
}

async function endToEnd(certs: WebhookCerts): Promise<void> {
  const { custom, core } = await localCluster();
  const teardowns: (() => unknown)[] = [];
  const t = { teardown: (fn: () => unknown) => teardowns.push(fn) };
  try {
    await installCrd();
    const ns = await testNamespace(t, 'webhook-bench');
    const id = uniqueName('whb');
    const port = await freeTcpPort();
    const manager = startManager(['--autoscaler-selector', 'bamel.io/webhook-bench-reconcile=none'], { webhook: { bindAddress: `127.0.0.1:${port}`, certDir: certs.dir } });
    teardowns.push(() => manager.stop());
    await manager.waitForLog((l) => l.msg === 'webhook server listening', 60_000);
    const name = `bamel-bench-${id}`;
    const config = localWebhookConfiguration({ url: `https://127.0.0.1:${port}`, caBundle: certs.ca.toString(), name, selector: { 'bamel.io/webhook-bench': id } });
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(config) });
    teardowns.push(() => kubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']));
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'u', password: 'p' } } });

    const machines = machinesOf(0).map((m) => ({ ...m, name: `${id}-${m.name}` }));
    const inventory = (labelled: boolean, name = 'machines') => inventoryConfigMap(ns, name, machines, { 'autoscaling.bamel.io/inventory': 'true', ...(labelled ? { 'bamel.io/webhook-bench': id } : {}) });
    const created = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(inventory(true)) });
    if (created.code !== 0) throw new Error(`inventory: ${created.stderr}`);
    const bma = (labelled: boolean) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'BareMetalAutoscaler',
      metadata: { name: `${id}-rack`, ...(labelled ? { labels: { 'bamel.io/webhook-bench': id } } : {}) },
      spec: { inventory: { namespace: ns, name: 'machines' }, machineSelector: { matchLabels: { rack: 'r1' } }, minMachines: 1 },
    });
    await waitFor('the API server to call the webhook', 20_000, async () => {
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify({ ...bma(true), spec: { ...bma(true).spec, inventory: { namespace: ns, name: 'nowhere' } } }) });
      return /denied the request/.test(r.stderr);
    });

    const rows: string[][] = [];
    const timeKubectl = async (what: string, obj: unknown): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < APPLIES + 3; i++) {
        const t0 = performance.now();
        const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(obj) });
        if (i >= 3) out.push(performance.now() - t0);
        if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
      }
      return out;
    };
    const timeApi = async (labelled: boolean): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < APPLIES * 5 + 10; i++) {
        const body = { ...bma(labelled), metadata: { ...bma(labelled).metadata, name: `${id}-api-${i}` } };
        const t0 = performance.now();
        await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, body, dryRun: 'All' });
        if (i >= 10) out.push(performance.now() - t0);
      }
      return out;
    };
    const add = (what: string, withHook: number[], without: number[]): void => {
      const a = summarize(withHook);
      const b = summarize(without);
      rows.push([what, String(a.n), ms(a.p50), ms(a.p99), ms(b.p50), ms(b.p99), ms(a.p50 - b.p50)]);
    };
    add('kubectl apply --dry-run=server, autoscaler', await timeKubectl('bma', bma(true)), await timeKubectl('bma', bma(false)));
    // A name that does not exist: every apply is a (dry-run) create that reaches the API
    // server; an unchanged object would be skipped by kubectl itself.
    add('kubectl apply --dry-run=server, inventory (100 machines)', await timeKubectl('inventory', inventory(true, 'bench')), await timeKubectl('inventory', inventory(false, 'bench')));
    add('API create dryRun=All, autoscaler (no kubectl)', await timeApi(true), await timeApi(false));
    console.log(`\n(b) end to end: the local kube-apiserver calling bamel manager's webhook (${APPLIES} kubectl applies, ${APPLIES * 5} API creates per row)`);
    console.log(table(['request', 'n', 'webhook p50', 'webhook p99', 'skipped p50', 'skipped p99', 'webhook share p50'], rows));
  } finally {
    for (const fn of teardowns.reverse()) await fn();
  }
}

interface ServerFigures {
  /** Handler p99 over every autoscaler review kind. */
  autoscalerP99Ms: number;
  /** Handler p99 of 100-machine inventory updates whose content is new each time (parsed). */
  inventoryP99Ms: number;
  /** The same updates repeated with one content (the parse cache answers). */
  inventoryCachedP99Ms: number;
}

async function main(): Promise<void> {
  const certs = await webhookCerts();
  console.log(`webhook benchmark: ${REQUESTS} reviews per kind at the server${process.argv.includes('--no-cluster') ? '' : `, ${APPLIES} kubectl applies per row end to end`}`);
  const figures = process.argv.includes('--no-server') ? undefined : await atTheServer(certs);
  if (!process.argv.includes('--no-cluster')) await endToEnd(certs);
  if (process.argv.includes('--json') && figures) console.log(JSON.stringify({ bench: 'webhook', ...figures }));
}

await main();
