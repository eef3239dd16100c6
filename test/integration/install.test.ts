import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { freeTcpPort } from '../helpers/ports.js';
import { kubectl, localCluster, repoRoot, testNamespace, waitFor } from './helpers/cluster.js';
import { CHART, helm, run } from './helpers/install.js';
import { startSim } from './helpers/sim.js';

/**
 * The install on a real node (hack/node.sh: containerd and a kubelet beside kwok's
 * simulated Nodes), as an operator does it: the image built twice (one digest), imported;
 * the chart installed; the manager pods run from the image, one leads, power a simulated
 * machine on for a pending pod and off again once it is gone, without one `forbidden` in
 * their logs; the webhook refuses a bad autoscaler through its Service with the certificate
 * the manager made; the agent attaches on the real node; `helm uninstall` leaves only what
 * the user owns. Root only (containerd, runc, a bridge): CI runs as root.
 */

const IMG = 'bamel-autoscaler:it';
const RELEASE = 'bamel';
const SYSTEM = 'bamel-system';

const asRoot = process.getuid?.() === 0;

t.test('the install on a real node', { skip: asRoot ? false : 'needs root (containerd, runc, the kubelet, a bridge): run as root, as CI does' }, async (t) => {
  const started = Date.now();
  const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;
  const { core } = await localCluster();
  const work = mkdtempSync(join(tmpdir(), 'bamel-install-'));
  // Two image archives (about 80 MiB each): gone with the test.
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  // --- the image, twice -------------------------------------------------------------------
  const archive = join(work, 'a.oci.tar');
  const archives = [archive, join(work, 'b.oci.tar')];
  const digests: string[] = [];
  for (const out of archives) {
    const t0 = Date.now();
    const r = await run(join(repoRoot, 'hack', 'image.sh'), ['build', IMG], { env: { BAMEL_IMAGE_ARCHIVE: out }, timeoutMs: 600_000 });
    t.equal(r.code, 0, `hack/image.sh build\n${r.stderr.slice(-3000)}`);
    const digest = /^digest (sha256:[0-9a-f]{64})$/m.exec(r.stdout)?.[1];
    t.ok(digest, `a digest in ${seconds(t0)}`);
    digests.push(digest ?? '');
  }
  t.equal(digests[0], digests[1], 'two builds of one tree have one digest');
  t.comment(`image ${IMG} ${digests[0]}, ${(statSync(archive).size / 2 ** 20).toFixed(1)} MiB`);

  // --- the real node ------------------------------------------------------------------------
  const env = { BAMEL_IMAGE_ARCHIVE: archive, IMG };
  const wasUp = (await run(join(repoRoot, 'hack', 'node.sh'), ['status'])).code === 0;
  // The node this test starts, it stops (also when starting it failed half-way).
  if (!wasUp) t.teardown(async () => void (await run(join(repoRoot, 'hack', 'node.sh'), ['down'], { timeoutMs: 120_000 })));
  const t1 = Date.now();
  const up = await run(join(repoRoot, 'hack', 'node.sh'), wasUp ? ['import', IMG] : ['up', IMG], { env, timeoutMs: 300_000 });
  t.equal(up.code, 0, `hack/node.sh ${wasUp ? 'import' : 'up'}\n${up.stderr.slice(-3000)}`);
  if (up.code !== 0) return;
  t.comment(`node ${wasUp ? 'was up; image imported' : 'up'} in ${seconds(t1)}`);
  const nodeEnv = Object.fromEntries(
    (await run(join(repoRoot, 'hack', 'node.sh'), ['env'])).stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  const bridgeIp = nodeEnv.BAMEL_NODE_BRIDGE_IP ?? '';
  const nodeName = nodeEnv.BAMEL_NODE_NAME ?? '';
  const apiPort = nodeEnv.BAMEL_APISERVER_PORT ?? '';

  // --- an inventory the pods can reach: simulated BMCs on the bridge's address -------------
  const ns = await testNamespace(t, 'install');
  const machine = `${ns.slice(-12)}-m1`.replace(/^-+/, '');
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password: 'install-test' } } });
  const port = await freeTcpPort();
  const inventory = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'machines', namespace: ns, labels: { 'autoscaling.bamel.io/inventory': 'true' } },
    data: {
      'machines.yaml': stringify({
        machines: [
          {
            name: machine,
            // Plain HTTP on the host's own bridge (the simulated BMC): opted in, as the inventory asks.
            bmc: { address: `redfish+http://${bridgeIp}:${port}/redfish/v1/Systems/${machine}`, credentialsSecret: 'bmc', allowInsecureCredentials: true },
            labels: { 'bamel.io/test': ns },
            capacity: { cpu: '8', memory: '32Gi', pods: '110' },
            bootSeconds: 2,
          },
        ],
      }),
    },
  };
  await core.createNamespacedConfigMap({ namespace: ns, body: inventory });
  const sim = await startSim(stringify(inventory), work, ['--boot-jitter', '0']);
  t.teardown(async () => {
    await sim.stop();
    await core.deleteNode({ name: machine }).catch(() => undefined);
  });

  // --- helm install ---------------------------------------------------------------------------
  // A namespace an earlier test deleted may still be terminating.
  await waitFor(`namespace ${SYSTEM} gone or active`, 120_000, async () => {
    const r = await kubectl(['get', 'namespace', SYSTEM, '-o', 'jsonpath={.status.phase}']);
    return r.code !== 0 || r.stdout === 'Active';
  });
  const systemExisted = (await kubectl(['get', 'namespace', SYSTEM])).code === 0;
  const autoscaler = `install-${ns.slice(-8)}`;
  let installed = false;
  t.teardown(async () => {
    if (installed) await helm(['uninstall', RELEASE, '--namespace', SYSTEM, '--wait', '--timeout', '2m'], 150_000);
    await kubectl(['patch', 'bma', autoscaler, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    await kubectl(['delete', 'bma', autoscaler, '--ignore-not-found', '--wait=false']);
    if (!systemExisted) await kubectl(['delete', 'namespace', SYSTEM, '--ignore-not-found', '--wait=false']);
  });
  const t2 = Date.now();
  const install = await helm(
    [
      'install', RELEASE, CHART, '--namespace', SYSTEM, '--create-namespace',
      // The CRDs may be there already, applied with kubectl (make install, other tests).
      '--force-conflicts',
      '--set', 'image.tag=it',
      '--set', `inventoryNamespaces={${SYSTEM},${ns}}`,
      // The local node has no kube-proxy: the API server through the bridge (hack/node.sh).
      '--set', `hostAliases[0].ip=${bridgeIp}`, '--set', 'hostAliases[0].hostnames[0]=kubernetes.default.svc',
      '--set', 'extraEnv[0].name=KUBERNETES_SERVICE_HOST', '--set', 'extraEnv[0].value=kubernetes.default.svc',
      '--set', 'extraEnv[1].name=KUBERNETES_SERVICE_PORT', '--set-string', `extraEnv[1].value=${apiPort}`,
      '--set', 'manager.extraArgs={--settle-grace=3,--quarantine-base=5,--graceful-power-off-timeout=5}',
      '--wait', '--timeout', '3m',
    ],
    240_000,
  );
  installed = install.code === 0;
  t.equal(install.code, 0, `helm install\n${install.stdout.slice(-2000)}${install.stderr.slice(-3000)}`);
  if (!installed) {
    t.comment((await kubectl(['-n', SYSTEM, 'get', 'pods', '-o', 'wide'])).stdout);
    return;
  }
  t.comment(`helm install --wait: ${seconds(t2)}`);

  // --- the manager: from the image, on the real node, one leader ------------------------------
  type PodList = { items: { metadata: { name: string }; spec: { nodeName?: string; containers: { image: string }[] }; status: { phase?: string; containerStatuses?: { imageID: string }[] } }[] };
  const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])).stdout) as { config: { digest: string } };
  const configDigest = manifest.config.digest;
  const pods = async (component: string): Promise<PodList['items']> =>
    (JSON.parse((await kubectl(['-n', SYSTEM, 'get', 'pods', '-l', `app.kubernetes.io/component=${component}`, '-o', 'json'])).stdout) as PodList).items;
  const managers = await pods('manager');
  t.equal(managers.length, 2, 'two manager replicas');
  for (const p of managers) {
    t.equal(p.spec.nodeName, nodeName, `${p.metadata.name} runs on the real node`);
    t.equal(p.status.phase, 'Running', `${p.metadata.name} runs`);
    t.equal(p.spec.containers[0]?.image, IMG, `${p.metadata.name} asks for ${IMG}`);
    t.equal(p.status.containerStatuses?.[0]?.imageID, configDigest, `${p.metadata.name} runs the image built above (config ${configDigest})`);
  }
  const leader = await waitFor('a leader', 60_000, async () => {
    const r = await kubectl(['-n', SYSTEM, 'get', 'lease', 'bamel-manager', '-o', 'jsonpath={.spec.holderIdentity}']);
    return managers.find((p) => r.stdout.startsWith(`${p.metadata.name}_`))?.metadata.name;
  });
  t.ok(leader, `${leader} leads`);

  // --- the webhook, through its Service, with the manager's own certificate --------------------
  const secret = JSON.parse((await kubectl(['-n', SYSTEM, 'get', 'secret', 'bamel-webhook-server-cert', '-o', 'json'])).stdout) as { data?: Record<string, string> };
  const caPem = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString();
  t.match(caPem, /BEGIN CERTIFICATE/, 'the manager wrote a CA into its Secret');
  const bundle = await waitFor('the caBundle', 60_000, async () => {
    const r = await kubectl(['get', 'validatingwebhookconfiguration', 'bamel-validating-webhook-configuration', '-o', 'jsonpath={.webhooks[*].clientConfig.caBundle}']);
    const all = r.stdout.split(' ').filter((b) => b !== '');
    return all.length === 2 && all.every((b) => Buffer.from(b, 'base64').toString() === caPem) ? all : false;
  });
  t.equal(bundle.length, 2, 'both webhooks carry the CA the manager made');
  const bad = await kubectl(['apply', '-f', '-'], {
    input: stringify({ apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', metadata: { name: `${autoscaler}-bad` }, spec: { inventory: { namespace: ns, name: 'no-such-inventory' }, maxMachines: 2 } }),
  });
  t.not(bad.code, 0, 'a bad autoscaler is refused');
  t.match(bad.stderr, /admission webhook "baremetalautoscalers.autoscaling.bamel.io" denied the request: .*no-such-inventory/, `by the webhook: ${bad.stderr.trim()}`);

  // --- scale-up: a pending pod powers the machine on; the pod is bound to it ------------------
  const t3 = Date.now();
  const good = await kubectl(['apply', '-f', '-'], {
    input: stringify({
      apiVersion: 'autoscaling.bamel.io/v1alpha1',
      kind: 'BareMetalAutoscaler',
      metadata: { name: autoscaler },
      spec: {
        inventory: { namespace: ns, name: 'machines' },
        machineSelector: { matchLabels: { 'bamel.io/test': ns } },
        minMachines: 0,
        maxMachines: 2,
        scaleUp: { cooldownSeconds: 0 },
        scaleDown: { unneededSeconds: 5, cooldownSeconds: 0 },
      },
    }),
  });
  t.equal(good.code, 0, `a good autoscaler is admitted\n${good.stderr}`);
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'work' },
      spec: {
        nodeSelector: { 'bamel.io/test': ns },
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: '2', memory: '1Gi' } } }],
      },
    },
  });
  await sim.waitForEvent((e) => e.event === 'power' && e.machine === machine && e.action === 'on', 120_000);
  const bound = await waitFor('the pod bound', 120_000, async () => (await core.readNamespacedPod({ namespace: ns, name: 'work' })).spec?.nodeName);
  t.equal(bound, machine, `scale-up: the pod runs on the machine powered on (${seconds(t3)})`);

  // --- scale-down: the pod goes, the machine is powered off -----------------------------------
  const t4 = Date.now();
  await core.deleteNamespacedPod({ namespace: ns, name: 'work', gracePeriodSeconds: 0 });
  const off = await sim.waitForEvent((e) => e.event === 'power' && e.machine === machine && /-off$/.test(e.action ?? '') && e.result === 'ok' && e.state === 'off', 180_000);
  t.ok(off, `scale-down: the machine is powered off (${seconds(t4)})`);

  // --- the agent on the real node ---------------------------------------------------------------
  const agents = await pods('agent');
  t.equal(agents.length, 1, 'one agent: the real node only, none on simulated Nodes');
  t.equal(agents[0]?.spec.nodeName, nodeName, 'on the real node');
  const agentLog = await waitFor('the agent attached', 60_000, async () => {
    const r = await kubectl(['-n', SYSTEM, 'logs', '-l', 'app.kubernetes.io/component=agent', '--tail=-1']);
    return /TrafficReport written/.test(r.stdout) ? r.stdout : false;
  });
  t.match(agentLog, /"attached":\[/, 'its programs are attached');
  const report = await kubectl(['get', 'trafficreport', nodeName, '-o', 'name']);
  t.equal(report.code, 0, 'it wrote the TrafficReport of the real node');

  // --- no forbidden: the RBAC covers every call the manager made --------------------------------
  const logs = await kubectl(['-n', SYSTEM, 'logs', '-l', 'app.kubernetes.io/component=manager', '--tail=-1', '--prefix']);
  t.equal(logs.code, 0, 'the managers logs are read through the kubelet');
  const forbidden = logs.stdout.split('\n').filter((l) => /forbidden/i.test(l));
  t.same(forbidden, [], 'no forbidden in the managers logs');
  t.match(logs.stdout, /serving certificate (issued|written)/, 'the managers made their certificate');

  // --- SIGTERM: the leader stops well inside its grace period and the other replica leads ------
  const t6 = Date.now();
  const del = await kubectl(['-n', SYSTEM, 'delete', 'pod', leader, '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  const stopSeconds = (Date.now() - t6) / 1000;
  t.equal(del.code, 0, `the leader pod deleted\n${del.stderr}`);
  t.ok(stopSeconds < 20, `the leader stopped in ${stopSeconds.toFixed(1)} s (terminationGracePeriodSeconds 30)`);
  const next = await waitFor('a new leader', 60_000, async () => {
    const r = await kubectl(['-n', SYSTEM, 'get', 'lease', 'bamel-manager', '-o', 'jsonpath={.spec.holderIdentity}']);
    return r.stdout !== '' && !r.stdout.startsWith(`${leader}_`) ? r.stdout : false;
  });
  t.ok(next, `${next.split('_')[0] ?? next} leads after ${seconds(t6)}`);

  // --- helm uninstall leaves what the user owns -------------------------------------------------
  const t5 = Date.now();
  const un = await helm(['uninstall', RELEASE, '--namespace', SYSTEM, '--wait', '--timeout', '2m'], 150_000);
  t.equal(un.code, 0, `helm uninstall\n${un.stderr}`);
  installed = un.code !== 0;
  t.comment(`helm uninstall --wait: ${seconds(t5)}`);
  // Deleted at once; the pods take their grace period to go.
  let left = '';
  const gone = await waitFor('the release gone', 90_000, async () => {
    const r = await kubectl(['get', 'all,serviceaccounts,roles,rolebindings,secrets,leases,poddisruptionbudgets,configmaps', '-A', '-l', 'app.kubernetes.io/name=bamel-autoscaler', '-o', 'name']);
    left = r.stdout.trim();
    return r.code === 0 && left === '';
  }).catch(() => false);
  t.ok(gone, `no namespaced object of the release is left${left ? `: ${left}` : ''}`);
  const clusterLeft = await kubectl(['get', 'clusterroles,clusterrolebindings,validatingwebhookconfigurations', '-o', 'name']);
  t.notMatch(clusterLeft.stdout, /bamel/, 'no cluster-wide object of the release is left');
  t.equal((await kubectl(['get', 'bma', autoscaler, '-o', 'name'])).code, 0, 'the autoscaler (the user owns it) is kept');
  t.equal((await kubectl(['get', 'crd', 'baremetalautoscalers.autoscaling.bamel.io', '-o', 'name'])).code, 0, 'the CRDs are kept');
  t.equal((await kubectl(['-n', ns, 'get', 'configmap/machines', 'secret/bmc', '-o', 'name'])).code, 0, 'the inventory and its Secret are kept');
  t.comment(`the whole install test: ${seconds(started)}`);
});
