import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION, type BareMetalAutoscaler } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { freeTcpPort, freeUdpPort } from '../../helpers/ports.js';
import { kubectl, localCluster, repoRoot, testNamespace, waitFor } from './cluster.js';
import { startManager, type RunningManager } from './manager.js';
import { startSim, type RunningSim } from './sim.js';
import { errorMessage } from '../../../kube/errors.js';

export interface SceneMachine {
  /** Short name; the real machine (and Node) name gets the scene's prefix. */
  name: string;
  cpu: number;
  memory: string;
  protocol?: 'redfish' | 'ipmi';
  taints?: { key: string; value?: string; effect: string }[];
  labels?: Record<string, string>;
  bootSeconds?: number;
  maxWatts?: number;
  idleWatts?: number;
  extra?: Record<string, string>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Scene {
  ns: string;
  /** short name → machine (Node) name */
  names: Record<string, string>;
  /** The label every machine of the scene carries: bamel.io/test=<ns>. */
  poolLabel: Record<string, string>;
  sim: RunningSim;
  core: k8s.CoreV1Api;
  custom: k8s.CustomObjectsApi;
  autoscalerLabel: Record<string, string>;
  createAutoscaler(name: string, spec: Record<string, unknown>): Promise<void>;
  autoscaler(name: string): Promise<BareMetalAutoscaler>;
  startManager(extra?: string[]): RunningManager;
  createPod(name: string, opts: { cpu: string; memory?: string; tolerations?: k8s.V1Toleration[]; nodeSelector?: Record<string, string> }): Promise<void>;
  podEvents(name: string): Promise<k8s.CoreV1Event[]>;
  autoscalerEvents(name: string): Promise<k8s.CoreV1Event[]>;
  powerOns(short: string): number;
}

/** A namespace, credentials, an inventory (applied and simulated), and helpers for one test. */
export async function startScene(t: Teardown, prefix: string, machines: SceneMachine[], simArgs: string[] = []): Promise<Scene> {
  const { core, custom } = await localCluster();
  const ns = await testNamespace(t, prefix);
  const id = ns.split('-').slice(-2).join('');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { username: 'admin', password } } });
  const names: Record<string, string> = {};
  const rfPort = await freeTcpPort();
  const entries = [];
  for (const m of machines) {
    const name = `${prefix}-${id}-${m.name}`.slice(0, 63);
    names[m.name] = name;
    const address = m.protocol === 'ipmi' ? `ipmi://127.0.0.1:${await freeUdpPort()}` : `redfish+http://127.0.0.1:${rfPort}/redfish/v1/Systems/${name}`;
    entries.push({
      name,
      // The Redfish fake speaks plain HTTP on loopback: the credentials travel in clear, so the opt-in.
      bmc: { address, credentialsSecret: 'bmc', ...(m.protocol === 'ipmi' ? {} : { allowInsecureCredentials: true }) },
      labels: { 'bamel.io/test': ns, ...m.labels },
      ...(m.taints ? { taints: m.taints } : {}),
      capacity: { cpu: String(m.cpu), memory: m.memory, pods: '110', ...m.extra },
      bootSeconds: m.bootSeconds ?? 2,
      ...(m.maxWatts ? { power: { maxWatts: m.maxWatts, ...(m.idleWatts ? { idleWatts: m.idleWatts } : {}) } } : {}),
    });
  }
  const machinesYaml = stringify({ machines: entries });
  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'machines', namespace: ns, labels: { 'autoscaling.bamel.io/inventory': 'true' } },
    data: { 'machines.yaml': machinesYaml },
  };
  await core.createNamespacedConfigMap({ namespace: ns, body: cm });
  const sim = await startSim(stringify(cm), mkdtempSync(join(tmpdir(), `bamel-${prefix}-`)), ['--boot-jitter', '0', ...simArgs]);
  const autoscalerLabel = { 'bamel.io/test-scene': ns };
  const created: string[] = [];
  const managers: RunningManager[] = [];
  t.teardown(async () => {
    for (const m of managers) await m.stop();
    for (const a of created) {
      // The manager is gone: take the finalizer off so the object can go.
      await kubectl(['patch', 'bma', a, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
      await kubectl(['delete', 'bma', a, '--ignore-not-found', '--wait=false']);
    }
    await sim.stop();
    for (const n of Object.values(names)) await core.deleteNode({ name: n }).catch(() => undefined);
  });
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'config/crd/bases')]);
  // On a fresh cluster the API serves the kind only once the CRD is Established.
  await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/baremetalautoscalers.autoscaling.bamel.io']);
  await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/trafficreports.autoscaling.bamel.io']);
  return {
    ns,
    names,
    poolLabel: { 'bamel.io/test': ns },
    sim,
    core,
    custom,
    autoscalerLabel,
    async createAutoscaler(name, spec) {
      created.push(name);
      await custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'BareMetalAutoscaler',
          metadata: { name, labels: autoscalerLabel },
          spec: { inventory: { namespace: ns, name: 'machines' }, machineSelector: { matchLabels: { 'bamel.io/test': ns } }, ...spec },
        },
      });
    },
    async autoscaler(name) {
      return (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name })) as BareMetalAutoscaler;
    },
    startManager(extra = []) {
      const m = startManager([
        '--namespace',
        ns,
        '--autoscaler-selector',
        `bamel.io/test-scene=${ns}`,
        '--leader-election-id',
        `bamel-${id}`,
        '--settle-grace',
        '3',
        '--quarantine-base',
        '5',
        '--graceful-power-off-timeout',
        '5',
        ...extra,
      ]);
      managers.push(m);
      return m;
    },
    async createPod(name, opts) {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { app: name } },
          spec: {
            nodeSelector: opts.nodeSelector ?? { 'bamel.io/test': ns },
            ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: opts.cpu, memory: opts.memory ?? '1Gi' } } }],
          },
        },
      });
    },
    async podEvents(name) {
      return (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;
    },
    async autoscalerEvents(name) {
      return (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${name},involvedObject.kind=BareMetalAutoscaler` })).items;
    },
    powerOns(short) {
      return sim.powerEvents(names[short]).filter((e) => e.action === 'on').length;
    },
  };
}

export async function waitForPhase(scene: Scene, autoscaler: string, machine: string, phase: string, timeoutMs = 60_000): Promise<BareMetalAutoscaler> {
  let last: unknown;
  try {
    return await waitFor(`${machine} ${phase} in ${autoscaler}`, timeoutMs, async () => {
      const a = await scene.autoscaler(autoscaler);
      last = a.status?.machines?.find((m) => m.name === machine);
      return a.status?.machines?.find((m) => m.name === machine)?.phase === phase ? a : false;
    }, 300);
  } catch (err) {
    // The machine's last status says why it did not get there.
    throw new Error(`${errorMessage(err)}; last status of the machine: ${JSON.stringify(last)}`);
  }
}
