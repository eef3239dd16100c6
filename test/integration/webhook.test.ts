import { connect } from 'node:tls';
import { Agent } from 'node:https';
import t from 'tap';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../api/v1alpha1/baremetalautoscaler.js';
import { localWebhookConfiguration } from '../../hack/webhook-config.js';
import { freeTcpPort } from '../helpers/ports.js';
import { malformedBodies } from '../helpers/malformed-reviews.js';
import { admissionReview, post, webhookCerts } from '../helpers/webhook.js';
import { kubectl, localCluster, testNamespace, uniqueName, waitFor } from './helpers/cluster.js';
import { installCrd } from './helpers/crd.js';
import { startManager } from './helpers/manager.js';

/**
 * The admission webhook as operators meet it: a real `bamel manager` serves it, the real
 * kube-apiserver calls it for `kubectl apply`, and kubectl prints the refusal or the
 * warnings. The registration is this test's own (a unique name, and an objectSelector on a
 * label only this test's objects carry), removed when the test ends.
 */

const TEST_LABEL = 'bamel.io/webhook-test';
const DENIED = /admission webhook "(baremetalautoscalers|inventories)\.autoscaling\.bamel\.io" denied the request/;

t.test('kubectl apply through the webhook: bad objects refused with field and fix, good ones accepted with warnings', async (t) => {
  const { core, custom } = await localCluster();
  await installCrd();
  const ns = await testNamespace(t, 'webhook');
  const id = uniqueName('wh');
  const certs = await webhookCerts();
  const port = await freeTcpPort();
  const url = `https://127.0.0.1:${port}`;

  // The manager reconciles nothing of this test (its autoscalers do not carry this label),
  // so the status the test writes stays as written; its webhook sees every autoscaler.
  const manager = startManager(['--autoscaler-selector', `${TEST_LABEL}-reconcile=none`], { webhook: { bindAddress: `127.0.0.1:${port}`, certDir: certs.dir } });
  t.teardown(() => manager.stop());
  await manager.waitForLog((l) => l.msg === 'webhook server listening');
  const started = await manager.waitForLog((l) => l.msg === 'manager started');
  const metricsAddress = (started.addresses as string[])[0];

  const configName = `bamel-test-${id}`;
  const config = localWebhookConfiguration({ url, caBundle: certs.ca.toString(), name: configName, selector: { [TEST_LABEL]: id } });
  const registered = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(config) });
  t.equal(registered.code, 0, `registered: ${registered.stderr}`);
  t.teardown(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', configName, '--ignore-not-found']);
    await kubectl(['delete', 'bma', '-l', `${TEST_LABEL}=${id}`, '--ignore-not-found', '--wait=false']);
  });

  const labels = { [TEST_LABEL]: id };
  const m = (name: string): string => `${id}-${name}`;
  const bma = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'BareMetalAutoscaler',
    metadata: { name: m(name), labels },
    spec: { inventory: { namespace: ns, name: 'machines' }, ...spec },
  });
  const inventory = (name: string, machines: string | Record<string, unknown>[], extraLabels: Record<string, string> = { 'autoscaling.bamel.io/inventory': 'true', ...labels }) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: ns, labels: extraLabels },
    data: { 'machines.yaml': typeof machines === 'string' ? machines : stringify({ machines }) },
  });
  const machine = (name: string, more: Record<string, unknown> = {}) => ({
    name: m(name),
    bmc: { address: `redfish+http://127.0.0.1:1/redfish/v1/Systems/${m(name)}`, credentialsSecret: 'bmc', allowInsecureCredentials: true },
    labels: { rack: name.split('-')[0] },
    capacity: { cpu: '16', memory: '64Gi' },
    power: { idleWatts: 100, maxWatts: 400 },
    ...more,
  });
  const apply = (obj: unknown, args: string[] = []) => kubectl(['apply', '-f', '-', ...args], { input: JSON.stringify(obj) });

  let refusals = 0;
  const refused = async (what: string, obj: unknown, field: string, fix: RegExp): Promise<void> => {
    const r = await apply(obj);
    refusals++;
    t.not(r.code, 0, `${what}: refused`);
    t.match(r.stderr, DENIED, `${what}: by the webhook`);
    t.ok(r.stderr.includes(field), `${what}: names ${field}`);
    t.match(r.stderr, fix, `${what}: says how to fix it`);
  };

  // The API server learns of a new webhook configuration within a moment: wait for it.
  await waitFor('the API server to call the webhook', 20_000, async () => DENIED.test((await apply(bma('probe', { inventory: { namespace: ns, name: 'nowhere' } }), ['--dry-run=server'])).stderr));

  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password: 'pw' } } });
  const machines = [machine('a-1'), machine('a-2'), machine('b-1', { bootSeconds: 300, bmc: { address: `ipmi://127.0.0.1:1623`, credentialsSecret: 'bmc-b' } }), machine('b-2', { power: { idleWatts: 100 } })];

  await t.test('good objects are accepted; their warnings are in kubectl output', async (t) => {
    const inv = await apply(inventory('machines', machines));
    t.equal(inv.code, 0, inv.stderr);
    t.match(inv.stdout, /configmap\/machines created/);
    t.match(inv.stderr, new RegExp(`Warning: machines\\.yaml: machines\\[3\\] \\(${m('b-2')}\\)\\.power\\.maxWatts: not set`));

    // Applied right after its inventory: the webhook's cache may not have it yet, and then it reads it live.
    const a = await apply(bma('a', { machineSelector: { matchLabels: { rack: 'a' } }, minMachines: 1, maxMachines: 2 }));
    t.equal(a.code, 0, a.stderr);
    t.notMatch(a.stderr, /Warning/, 'no warnings for a sound autoscaler');

    const b = await apply(bma('b', { machineSelector: { matchLabels: { rack: 'b' } }, scaleUp: { joinTimeoutSeconds: 120 }, scaleDown: { unneededSeconds: 30 } }));
    t.equal(b.code, 0, b.stderr);
    t.match(b.stderr, /Warning: spec\.scaleDown\.unneededSeconds: 30s is under a minute/);
    t.match(b.stderr, new RegExp(`Warning: spec\\.scaleUp\\.joinTimeoutSeconds: 120s is not longer than the bootSeconds of ${m('b-1')} \\(300s\\)`));
    t.match(b.stderr, new RegExp(`Warning: spec\\.inventory: Secret ${ns}/bmc-b \\(BMC credentials of ${m('b-1')}\\) not found; create it`));

    const small = await apply(inventory('small', [machine('s-1')]));
    t.equal(small.code, 0, small.stderr);
  });

  await t.test('bad autoscalers are refused, naming the field and the fix', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'plain' }, data: { 'machines.yaml': 'machines: []' } } });
    // Labelled as an inventory but not for this test's webhook: stored as it is, broken.
    await core.createNamespacedConfigMap({ namespace: ns, body: inventory('broken', 'machines:\n  - name: x\n', { 'autoscaling.bamel.io/inventory': 'true' }) });

    await refused('an inventory that does not exist', bma('c', { inventory: { namespace: ns, name: 'nowhere' } }), 'spec.inventory', /ConfigMap .*\/nowhere not found; apply the inventory first/);
    await refused('a ConfigMap that is not an inventory', bma('c', { inventory: { namespace: ns, name: 'plain' } }), 'spec.inventory', /is not labelled autoscaling\.bamel\.io\/inventory: "true".*kubectl label configmap -n/);
    await refused('an invalid inventory', bma('c', { inventory: { namespace: ns, name: 'broken' } }), 'spec.inventory', /inventory .*\/broken is invalid: machines\[0\] \(x\)\.bmc: missing required field.*fix it \(bamel inventory validate/);
    await refused('minMachines more than the machines selected', bma('c', { inventory: { namespace: ns, name: 'small' }, minMachines: 2 }), 'spec.minMachines', /selects only 1 .* lower minMachines to 1 or less, or widen machineSelector/);
    await refused('machines another autoscaler already selects', bma('c', {}), 'spec.machineSelector', new RegExp(`2 problems:[^]*BareMetalAutoscaler ${m('a')} already selects[^]*make the selectors disjoint`));
  });

  await t.test('bad inventories are refused with every error of bamel inventory validate', async () => {
    const bad = (what: string, entries: string | Record<string, unknown>[], field: string, fix: RegExp) => refused(what, inventory('bad', entries), field, fix);
    await bad('an unknown BMC scheme', [machine('x-1', { bmc: { address: 'ipmii://10.0.0.1', credentialsSecret: 'bmc' } })], `machines.yaml: machines[0] (${m('x-1')}).bmc.address`, /unknown scheme "ipmii"; expected one of ipmi, redfish/);
    await bad('two machines with one name', [machine('x-1'), machine('x-1', { bmc: { address: 'ipmi://10.0.0.9', credentialsSecret: 'bmc' } })], 'machines.yaml: machines[1]', /duplicate machine name .* give it a unique name/);
    await bad('a misspelt taint effect', [machine('x-1', { taints: [{ key: 'gpu', effect: 'NoSchedul' }] })], '.taints[0].effect', /did you mean "NoSchedule"\?/);
    await bad('a quantity that is not one', [machine('x-1', { capacity: { cpu: 'lots', memory: '64Gi' } })], '.capacity.cpu', /"lots"/);
    await bad('a password in the inventory', [machine('x-1', { bmc: { address: 'ipmi://10.0.0.1', credentialsSecret: 'bmc', password: 'hunter2' } })], '.bmc.password', /credentials belong only in the Secret named by bmc\.credentialsSecret/);
    await refused('no machines.yaml key', { ...inventory('bad', []), data: { 'machines.yml': 'machines: []' } }, 'data["machines.yaml"]', /missing; put the machines document under the key machines\.yaml \(found "machines\.yml"\)/);
    await bad('a YAML syntax error', 'machines:\n  - name: x\n   bmc: {}\n', 'data["machines.yaml"], line', /YAML syntax error: .*check the indentation/);
  });

  await t.test('machines in the middle of an operation cannot be stranded', async (t) => {
    const since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = { machines: [{ name: m('a-1'), phase: 'PoweringOn', since, operation: { id: 'op-test-1', action: 'PowerOn', startedAt: since } }] };
    const patched = await kubectl(['patch', 'bma', m('a'), '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    t.equal(patched.code, 0, patched.stderr);

    const narrower = bma('a', { machineSelector: { matchLabels: { rack: 'a', spare: 'yes' } }, minMachines: 0, maxMachines: 2 });
    // The webhook's cache sees the status within a watch latency.
    await waitFor('the webhook to see the operation', 10_000, async () => /would no longer select machine/.test((await apply(narrower, ['--dry-run=server'])).stderr));
    await refused('a selector that drops a machine being powered on', narrower, 'spec.machineSelector', new RegExp(`would no longer select machine ${m('a-1')}, which is being powered on \\(PowerOn operation op-test-1.*wait until its phase is Ready or Off`));
    await refused('dryRun while a machine is being powered on', bma('a', { machineSelector: { matchLabels: { rack: 'a' } }, minMachines: 1, maxMachines: 2, dryRun: true }), 'spec.dryRun', /true would stop bamel from finishing machine .* wait until its phase is Ready or Off/);

    const without = machines.filter((x) => x.name !== m('a-1'));
    await refused('an inventory without the machine being powered on', inventory('machines', without), 'machines.yaml: machines', new RegExp(`machine ${m('a-1')} is removed while BareMetalAutoscaler ${m('a')} has it being powered on.*keep it listed until its phase is Ready or Off`));
    const moved = machines.map((x) => (x.name === m('a-1') ? { ...x, bmc: { address: 'ipmi://10.1.1.1', credentialsSecret: 'bmc' } } : x));
    await refused('a new BMC address for the machine being powered on', inventory('machines', moved), `machines[0] (${m('a-1')}).bmc.address`, /changed from redfish\+http:\/\/.* Keep the address until its phase is Ready or Off/);

    // Deleting the inventory under it: refused, naming the autoscaler and the machine; the inventory stays.
    const deleted = await kubectl(['delete', 'configmap', 'machines', '-n', ns, '--wait=false']);
    refusals++;
    t.not(deleted.code, 0, 'deleting the inventory: refused');
    t.match(deleted.stderr, DENIED, 'by the webhook');
    t.match(deleted.stderr, new RegExp(`inventory ${ns}/machines cannot be deleted while BareMetalAutoscaler ${m('a')} has a machine in flight: ${m('a-1')} being powered on \\(PowerOn operation op-test-1.*Delete it once their phase is Ready or Off`));
    t.equal((await kubectl(['get', 'configmap', 'machines', '-n', ns, '-o', 'name'])).stdout.trim(), 'configmap/machines', 'the inventory is still there');

    const wider = await apply(bma('a', { machineSelector: { matchLabels: { rack: 'a' } }, minMachines: 1, maxMachines: 3 }));
    t.equal(wider.code, 0, `a change that keeps the machine is accepted: ${wider.stderr}`);
    t.ok(refusals >= 15, `${refusals} bad objects refused`);
  });

  await t.test('certificates rotated during a stream of API requests: none fails', async (t) => {
    let stop = false;
    const failures: string[] = [];
    let allowed = 0;
    let denied = 0;
    const good = (i: number) => bma(`stream-${i}`, { machineSelector: { matchLabels: { rack: 'z' } } });
    const stream = async (worker: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const bad = worker === 3;
        const body = bad ? bma(`stream-bad-${i}`, { inventory: { namespace: ns, name: 'nowhere' } }) : good(worker * 100_000 + i);
        try {
          await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, body, dryRun: 'All' });
          if (bad) failures.push('a bad object was let through');
          else allowed++;
        } catch (err) {
          const text = apiErrorMessage(err);
          if (bad && DENIED.test(text) && /nowhere not found/.test(text)) denied++;
          else failures.push(text.slice(0, 300));
        }
      }
    };
    const streams = [0, 1, 2, 3].map(stream);
    const serials: string[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400));
      serials.push(await certs.rotate());
    }
    await new Promise((r) => setTimeout(r, 600));
    stop = true;
    await Promise.all(streams);
    t.same(failures, [], `${allowed + denied} requests during 4 rotations: ${allowed} allowed, ${denied} refused as they should be, none failed`);
    t.ok(allowed > 10 && denied > 3, 'a real stream through the API server');
    const served = await waitFor('the manager to serve the newest certificate', 10_000, async () => {
      const serial = await peerSerial(port, certs.ca);
      return serial === serials.at(-1) ? serial : false;
    });
    t.equal(served, serials.at(-1));
    const accepted = await apply(bma('after', { machineSelector: { matchLabels: { rack: 'z' } } }), ['--dry-run=server']);
    t.equal(accepted.code, 0, `the API server still reaches it: ${accepted.stderr}`);
  });

  await t.test('10,000 malformed AdmissionReviews: each answered 400 with a message; the manager goes on', async (t) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: certs.ca });
    t.teardown(() => agent.destroy());
    const bodies = malformedBodies(10_000, 11);
    const bad: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let b = bodies[next++]; b !== undefined; b = bodies[next++]) {
        const r = await post(`${url}/validate/${next % 2 === 0 ? 'inventory' : 'baremetalautoscaler'}`, b.body, { ca: certs.ca, agent, contentType: b.contentType });
        const message = r.json?.message;
        if (r.status !== 400 || typeof message !== 'string' || message === '') bad.push(`${b.what}: ${r.status} ${r.body.slice(0, 160)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    t.same(bad.slice(0, 5), [], `10,000 answered 400 with a message (${bad.length} not)`);
    t.equal(manager.child.exitCode, null, 'the manager is still running');
    const direct = await post(`${url}/validate/baremetalautoscaler`, JSON.stringify(admissionReview('baremetalautoscalers', 'CREATE', bma('direct', { inventory: { namespace: ns, name: 'nowhere' } }))), { ca: certs.ca });
    t.match(direct.json, { response: { allowed: false, status: { message: /nowhere not found/ } } }, 'and still judges well-formed reviews');

    const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    const count = (webhook: string, verdict: string): number => Number(new RegExp(`bamel_webhook_requests_total\\{webhook="${webhook}",verdict="${verdict}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    t.equal(count('baremetalautoscaler', 'malformed') + count('inventory', 'malformed'), 10_000, 'the metrics count them as malformed');
    t.ok(count('baremetalautoscaler', 'denied') >= 5 && count('inventory', 'denied') >= 9, 'and the refusals as denied');
    t.match(metrics, /bamel_webhook_request_duration_seconds_bucket\{le="0\.005",webhook="baremetalautoscaler"\} \d+/);
    t.match(metrics, /bamel_webhook_certificate_reloads_total\{result="ok"\} [1-9]/);
  });
});

t.test('without --webhook-cert-dir the webhook server stays off, and the manager says so', async (t) => {
  await localCluster();
  const manager = startManager(['--autoscaler-selector', `${TEST_LABEL}-reconcile=none`]);
  t.teardown(() => manager.stop());
  const line = await manager.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('webhook server off'));
  t.match(line.msg, /no --webhook-cert-dir; BareMetalAutoscalers and inventories are not checked at admission/);
  const started = await manager.waitForLog((l) => l.msg === 'manager started');
  t.equal((started.addresses as string[]).length, 2, 'only the metrics and health servers listen');
});

/** The message of the API server's Status in a client-node error, or the error's own. */
function apiErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: unknown };
      if (typeof status.message === 'string') return status.message;
    } catch {
      return body;
    }
  }
  return err instanceof Error ? err.message : JSON.stringify(err);
}

/** The serial of the certificate a new TLS connection to the port is served. */
function peerSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}
