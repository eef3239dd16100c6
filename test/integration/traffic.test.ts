import t from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/v1alpha1/baremetalautoscaler.js';
import { TRAFFIC_PLURAL, type TrafficReport } from '../../api/v1alpha1/trafficreport.js';
import { NetLab, bpfSkipReason, withoutTracefs, type TestHost } from '../helpers/netlab.js';
import { freeTcpPort } from '../helpers/ports.js';
import { bamelEntry, createKwokNodes, kubeconfigPath, localCluster, repoRoot, waitFor } from './helpers/cluster.js';
import { startScene, waitForPhase } from './helpers/scene.js';

/**
 * The whole path: a Deployment's two pods run on a node whose agent (`bamel agent`, a child
 * process) counts their traffic through cgroups named the way the kubelet names them; it
 * publishes a TrafficReport; the manager reads it, sees requests/s surge, and powers on the
 * machine whose taint the pods tolerate (not the other, bigger one), since the node they run
 * on has no room for another replica.
 */

const skip = bpfSkipReason() ?? false;
const toleration = { key: 'traffic', operator: 'Equal', value: 'edge', effect: 'NoSchedule' };

/** The agent on a node without tracefs: its own mount namespace, where none is mounted. */
function startAgent(args: string[]) {
  const [cmd, ...argv] = withoutTracefs([process.execPath, ...bamelEntry(), 'agent', '--kubeconfig', kubeconfigPath, ...args]);
  const child = spawn(cmd as string, argv, {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let started: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => (started = resolve));
  createInterface({ input: child.stderr }).on('line', (line) => {
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line) as Record<string, unknown>;
    } catch {
      l = { msg: line };
    }
    logs.push(l);
    if (process.env.BAMEL_TEST_SHOW_LOGS) process.stderr.write(`[agent] ${line}\n`);
    if (l.msg === 'agent started') started?.();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, logs, ready, exited };
}

/** Requests at `perSecond` to every host for `ms`, over keep-alive connections. */
async function load(hosts: TestHost[], perSecond: number, ms: number, agent: http.Agent): Promise<number> {
  const end = Date.now() + ms;
  let sent = 0;
  while (Date.now() < end) {
    const tick = Date.now();
    const batch = Math.max(1, Math.round(perSecond / 10));
    await Promise.all(
      hosts.flatMap((h) =>
        Array.from({ length: batch }, () =>
          new Promise<void>((resolve, reject) => {
            http.get({ host: h.address, port: h.http1Port, path: '/', agent }, (res) => {
              res.resume();
              res.on('end', () => resolve());
            }).on('error', reject);
          }),
        ),
      ),
    );
    sent += batch * hosts.length;
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
  }
  return sent;
}

t.test('a traffic surge on a workload powers on a machine its pods tolerate', { skip }, async (t) => {
  const { apps, custom } = await localCluster();
  const scene = await startScene(t, 'traffic', [
    // Bigger than a replica needs, and closer in size: chosen if the pods could run there.
    { name: 'other', cpu: 4, memory: '8Gi', taints: [{ key: 'team', value: 'db', effect: 'NoSchedule' }] },
    { name: 'edge', cpu: 16, memory: '64Gi', taints: [{ key: 'traffic', value: 'edge', effect: 'NoSchedule' }] },
  ]);
  const ns = scene.ns;
  const nodeName = `${ns}-n1`.slice(0, 63);
  await createKwokNodes(t, [{ name: nodeName, capacity: { cpu: '4', memory: '16Gi', pods: '110' }, labels: { 'bamel.io/test': ns } }]);

  // Two replicas fill the node (2 × 2 cores of 4): a third has no room.
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            nodeName,
            nodeSelector: { 'bamel.io/test': ns },
            tolerations: [toleration],
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'web', image: 'registry.invalid/web:1', resources: { requests: { cpu: '2', memory: '1Gi' } } }],
          },
        },
      },
    },
  });
  const pods = await waitFor('two web pods running', 60_000, async () => {
    const list = (await scene.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items.filter((p) => p.status?.phase === 'Running');
    return list.length === 2 ? list : false;
  });
  const [p1, p2] = pods as [k8s.V1Pod, k8s.V1Pod];
  const uid1 = p1.metadata?.uid ?? '';
  const uid2 = p2.metadata?.uid ?? '';

  // The pods' "containers": servers in cgroups named by the kubelet (systemd and cgroupfs drivers).
  const lab = new NetLab();
  t.teardown(() => lab.cleanup());
  const hosts = [
    await lab.startServer(`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid1.replace(/-/g, '_')}.slice/cri-containerd-web1.scope`),
    await lab.startServer(`kubepods/burstable/pod${uid2}/web2`),
  ];

  const metricsPort = await freeTcpPort();
  const agent = startAgent(['--node-name', nodeName, '--poll-interval', '1', '--report-interval', '1', '--metrics-bind-address', `127.0.0.1:${metricsPort}`]);
  t.teardown(async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
    await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: TRAFFIC_PLURAL, name: nodeName }).catch(() => undefined);
  });
  await Promise.race([agent.ready, agent.exited.then((c) => Promise.reject(new Error(`agent exited with ${c}: ${JSON.stringify(agent.logs.slice(-5))}`)))]);
  const started = agent.logs.find((l) => l.msg === 'agent started') as { attached?: string[] } | undefined;
  const attached = started?.attached ?? [];
  t.ok(['cgroup_rmdir', 'tcp_retransmit_skb'].every((tp) => attached.some((a) => a.endsWith(`raw tracepoint ${tp}`))), `without tracefs, both hooks attached as raw tracepoints (${attached.join('; ')})`);
  t.notOk(agent.logs.some((l) => l.level === 40), 'and no warning about a degraded hook');

  const bma = `traffic-${ns.slice(-10)}`;
  await scene.createAutoscaler(bma, {
    minMachines: 0,
    maxMachines: 2,
    scaleUp: { cooldownSeconds: 0 },
    scaleDown: { enabled: false },
    pressure: { windowSeconds: 10, network: { requestsPerSecondRate: 300 } },
  });
  scene.startManager();
  for (const m of Object.values(scene.names)) await waitForPhase(scene, bma, m, 'Off');

  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => httpAgent.destroy());
  // A quiet baseline: no surge, nothing powered on.
  await load(hosts, 10, 3000, httpAgent);
  const report = await waitFor('a TrafficReport naming both pods', 15_000, async () => {
    const r = (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: TRAFFIC_PLURAL, name: nodeName }).catch(() => undefined)) as TrafficReport | undefined;
    return r && [uid1, uid2].every((u) => r.spec.pods.some((p) => p.uid === u && p.requestsPerSecond > 0)) ? r : false;
  });
  const entry = report.spec.pods.find((p) => p.uid === uid1);
  t.equal(entry?.namespace, ns, 'the report names the pod namespace');
  t.equal(entry?.name, p1.metadata?.name, 'and the pod');
  t.equal(entry?.ownerKind, 'ReplicaSet', 'and its owner');
  t.equal(report.spec.nodeName, nodeName);
  t.equal(report.metadata.ownerReferences?.[0]?.kind, 'Node', 'owned by its Node');
  t.equal(scene.powerOns('edge') + scene.powerOns('other'), 0, 'steady traffic powers nothing on');

  // The surge: doubling every second.
  let rate = 20;
  const surging = (async () => {
    while (scene.powerOns('edge') === 0 && rate <= 640) {
      await load(hosts, rate, 1000, httpAgent);
      rate *= 2;
    }
  })();
  await waitFor('the edge machine powered on', 45_000, async () => scene.powerOns('edge') > 0, 200);
  await surging;
  const status = (await scene.autoscaler(bma)).status;
  const network = status?.pressure?.find((p) => p.category === 'network');
  t.equal(network?.pressured, true, 'network under pressure in status.pressure');
  t.match(network?.reason, new RegExp(`${ns}/Deployment/web requests/s rising`), 'naming the surging Deployment');
  t.equal(status?.lastScaleEvent?.machine, scene.names.edge, 'the last scale event is the edge machine');
  await waitForPhase(scene, bma, scene.names.edge as string, 'Ready', 30_000);
  // Keep the pressure up a little: the Ready edge machine has room, so nothing more is powered on.
  await load(hosts, 200, 2000, httpAgent);
  t.equal(scene.powerOns('other'), 0, 'the machine whose taint the pods do not tolerate stayed off');
  t.equal(scene.powerOns('edge'), 1, 'one surge, one machine');
  const events = await scene.autoscalerEvents(bma);
  t.ok(events.some((e) => e.reason === 'NetworkPressure' && e.message?.includes('Deployment/web')), 'a NetworkPressure event on the autoscaler');

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(metrics, new RegExp(`bamel_agent_pod_http_requests_total\\{namespace="${ns}",pod="${p1.metadata?.name}",protocol="http1"\\} \\d+`), 'per-pod series on /metrics');

  agent.child.kill('SIGTERM');
  t.equal(await agent.exited, 0, 'the agent stops cleanly on SIGTERM');
});
