import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type MachineStatus } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { binDir, kubeconfigPath, kubectl, localCluster, repoRoot, waitFor } from './cluster.js';

/** The port the local kube-scheduler's configuration sends extender requests to (hack/cluster.sh). */
export const extenderPort = Number(process.env.BAMEL_EXTENDER_PORT ?? 20290);
export const extenderAddress = `127.0.0.1:${extenderPort}`;

/**
 * A Lease held by nobody that runs: a manager electing on it never leads, so no reconcile
 * writes the autoscalers' status and a test may write it itself. The manager still runs its
 * informers and serves the extender, as every replica does.
 */
export async function heldLease(namespace: string, name: string): Promise<void> {
  const { kc } = await localCluster();
  const now = new k8s.V1MicroTime();
  await kc.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({
    namespace,
    body: { metadata: { name, namespace }, spec: { holderIdentity: 'test-holds-this-lease', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now } },
  });
}

/** An autoscaler nobody reconciles, with its machines' status written as the test says. */
export async function createAutoscaler(name: string, labels: Record<string, string>, inventoryNamespace: string): Promise<void> {
  const { custom } = await localCluster();
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'config/crd/bases')]);
  await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/baremetalautoscalers.autoscaling.bamel.io']);
  await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name, labels }, spec: { inventory: { namespace: inventoryNamespace, name: 'machines' }, maxMachines: 10 } },
  });
}

export async function deleteAutoscaler(name: string): Promise<void> {
  const { custom } = await localCluster();
  await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name }).catch(() => undefined);
}

export async function setMachines(autoscaler: string, machines: Partial<MachineStatus>[]): Promise<void> {
  const { custom } = await localCluster();
  const since = new Date().toISOString();
  await custom.patchClusterCustomObjectStatus(
    { group: GROUP, version: VERSION, plural: PLURAL, name: autoscaler, body: { status: { machines: machines.map((m) => ({ phase: 'Ready', since, ...m })) } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

/** POST to the extender as kube-scheduler would (nodeCacheCapable: true). */
export async function askFilter(names: string[], pod: Record<string, unknown> = probePod): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://${extenderAddress}/extender/filter`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Pod: pod, Nodes: null, NodeNames: names }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const probePod = { metadata: { name: 'probe', namespace: 'default' }, spec: { containers: [{ name: 'c' }] } };

/** Waits until the manager's extender answers with the failures expected (its caches caught up). */
export async function waitForExtenderView(failing: string[], passing: string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(`the extender failing ${failing.join(', ')} and passing ${passing.join(', ')}`, timeoutMs, async () => {
    const r = await askFilter([...failing, ...passing]);
    if (r.status !== 200) return false;
    const failed = Object.keys((r.body.FailedAndUnresolvableNodes ?? {})).sort();
    return JSON.stringify(failed) === JSON.stringify([...failing].sort()) && JSON.stringify(r.body.NodeNames) === JSON.stringify(passing);
  }, 250);
}

export interface SecondScheduler {
  schedulerName: string;
  child: ChildProcess;
  /** Resolves once it runs; rejects when it exits first (a bad configuration). */
  started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * A second real kube-scheduler, from config/scheduler/kube-scheduler-config.yaml with another
 * scheduler name and the changes asked for (nodeCacheCapable: false, or no extender at all);
 * no serving port, so it collides with nothing. Pods choose it by spec.schedulerName.
 */
export function startSecondScheduler(schedulerName: string, opts: { nodeCacheCapable?: boolean; extender?: boolean; extenderAddress?: string }): SecondScheduler {
  const state = dirname(kubeconfigPath);
  let config = readFileSync(join(repoRoot, 'config', 'scheduler', 'kube-scheduler-config.yaml'), 'utf8')
    .replaceAll('KUBECONFIG_PATH', join(state, 'scheduler.kubeconfig'))
    .replaceAll('EXTENDER_URL_PREFIX', `http://${opts.extenderAddress ?? extenderAddress}/extender`)
    .replace('schedulerName: default-scheduler', `schedulerName: ${schedulerName}`);
  if (opts.nodeCacheCapable === false) config = config.replace('nodeCacheCapable: true', 'nodeCacheCapable: false');
  if (opts.extender === false) config = config.slice(0, config.indexOf('\nextenders:')) + '\n';
  const dir = join(state, 'test-results', 'schedulers');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${schedulerName}.yaml`);
  writeFileSync(file, config);
  const child = spawn(join(binDir, 'kube-scheduler'), ['--config', file, '--secure-port', '0', '--authentication-kubeconfig', join(state, 'scheduler.kubeconfig'), '--authorization-kubeconfig', join(state, 'scheduler.kubeconfig')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = createWriteStream(join(dir, `${schedulerName}.log`));
  child.stderr?.pipe(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let seen = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-4096);
      if (seen.includes('Starting Kubernetes Scheduler')) resolve();
    });
    void exited.then(() => reject(new Error(`kube-scheduler ${schedulerName} exited: ${seen.slice(-500)}`)));
  });
  started.catch(() => undefined);
  return {
    schedulerName,
    child,
    started,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
