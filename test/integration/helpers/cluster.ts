import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';

/**
 * The local cluster for integration tests: reuses the running one or starts it
 * (hack/cluster.sh up is a no-op when it is up), and gives each test its own namespace.
 */

const execFileP = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cacheDir = process.env.BAMEL_CACHE ?? join(homedir(), '.cache', 'bamel');
export const binDir = join(cacheDir, 'bin');
export const kubeconfigPath = join(process.env.BAMEL_LOCAL ?? join(repoRoot, '.local'), 'kubeconfig');

/**
 * How to run the bamel CLI in a child process: the compiled dist/ when BAMEL_TEST_USE_DIST=1
 * (the test runner sets it right after `make build`; it starts in a fraction of the time),
 * else the TypeScript source through tap's loader.
 */
export function bamelEntry(): string[] {
  const dist = join(repoRoot, 'dist', 'cmd', 'bamel.js');
  if (process.env.BAMEL_TEST_USE_DIST === '1' && existsSync(dist)) return [dist];
  return [...process.execArgv, join(repoRoot, 'cmd', 'bamel.ts')];
}

export interface LocalCluster {
  kubeconfigPath: string;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  policy: k8s.PolicyV1Api;
  custom: k8s.CustomObjectsApi;
  apiext: k8s.ApiextensionsV1Api;
}

let upPromise: Promise<LocalCluster> | undefined;

export function localCluster(): Promise<LocalCluster> {
  upPromise ??= (async () => {
    await execFileP(join(repoRoot, 'hack', 'cluster.sh'), ['up'], { cwd: repoRoot, timeout: 300_000 });
    if (!existsSync(kubeconfigPath)) throw new Error(`no kubeconfig at ${kubeconfigPath} after hack/cluster.sh up`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    return {
      kubeconfigPath,
      kc,
      core: kc.makeApiClient(k8s.CoreV1Api),
      apps: kc.makeApiClient(k8s.AppsV1Api),
      policy: kc.makeApiClient(k8s.PolicyV1Api),
      custom: kc.makeApiClient(k8s.CustomObjectsApi),
      apiext: kc.makeApiClient(k8s.ApiextensionsV1Api),
    };
  })();
  return upPromise;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the pinned kubectl against the local cluster; never throws on a non-zero exit. */
export async function kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(
      join(binDir, 'kubectl'),
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfigPath }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

let nsCounter = 0;

/** A fresh namespace for one test, deleted when the test ends. */
export async function testNamespace(t: Teardown, prefix = 'test'): Promise<string> {
  const { core } = await localCluster();
  const name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${nsCounter++}`.slice(0, 63).replace(/-+$/, '');
  await core.createNamespace({ body: { metadata: { name, labels: { 'bamel.io/test': 'true' } } } });
  t.teardown(async () => {
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  // Pods are refused until the namespace's default ServiceAccount exists.
  await waitFor(`ServiceAccount default in ${name}`, 30_000, async () => {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      return true;
    } catch {
      return false;
    }
  });
  return name;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | undefined>, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== false && v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface KwokNodeSpec {
  name: string;
  capacity: Record<string, string>;
  labels?: Record<string, string>;
  taints?: k8s.V1Taint[];
}

/** A Node that kwok manages (its annotation selector), with the given capacity. */
export function kwokNode(spec: KwokNodeSpec): k8s.V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...spec.labels,
      },
    },
    spec: spec.taints ? { taints: spec.taints } : {},
    status: { capacity: spec.capacity, allocatable: spec.capacity },
  };
}

/** Creates kwok Nodes and deletes them when the test ends. */
export async function createKwokNodes(t: Teardown, specs: KwokNodeSpec[]): Promise<void> {
  const { core } = await localCluster();
  for (const spec of specs) {
    await core.createNode({ body: kwokNode(spec) });
    t.teardown(async () => {
      await core.deleteNode({ name: spec.name }).catch(() => undefined);
    });
  }
}

export function isNodeReady(node: k8s.V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** A unique suffix for cluster-scoped names. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/**
 * The namespace, created when absent. One still terminating (an earlier test deleted it
 * without waiting) is waited out first: nothing can be created in it meanwhile. Returns
 * whether this call created it (and so whether the caller should delete it).
 */
export async function ensureNamespace(name: string): Promise<boolean> {
  const got = await kubectl(['get', 'namespace', name, '-o', 'jsonpath={.status.phase}']);
  if (got.code === 0 && got.stdout.trim() !== 'Terminating') return false;
  if (got.code === 0) await kubectl(['wait', '--for=delete', `namespace/${name}`, '--timeout=180s'], { timeoutMs: 190_000 });
  return (await kubectl(['create', 'namespace', name])).code === 0;
}
