import * as k8s from '@kubernetes/client-node';
import { localCluster } from './cluster.js';

/** Deployments, PodDisruptionBudgets and a watch that proves no budget was ever broken. */

export interface DeploymentOptions {
  replicas: number;
  cpu: string;
  memory?: string;
  nodeSelector?: Record<string, string>;
  /** Binds the pods to this Node without the scheduler (the template's nodeName). */
  nodeName?: string;
  annotations?: Record<string, string>;
  volumes?: k8s.V1Volume[];
  tolerations?: k8s.V1Toleration[];
}

export async function createDeployment(namespace: string, name: string, o: DeploymentOptions): Promise<void> {
  const { apps } = await localCluster();
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name }, ...(o.annotations ? { annotations: o.annotations } : {}) },
          spec: {
            ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
            ...(o.nodeName ? { nodeName: o.nodeName } : {}),
            ...(o.volumes ? { volumes: o.volumes } : {}),
            ...(o.tolerations ? { tolerations: o.tolerations } : {}),
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'c', image: 'registry.invalid/app:1', resources: { requests: { cpu: o.cpu, memory: o.memory ?? '1Gi' } } }],
          },
        },
      },
    },
  });
}

export async function createBudget(namespace: string, name: string, app: string, minAvailable: number): Promise<void> {
  const { policy } = await localCluster();
  await policy.createNamespacedPodDisruptionBudget({
    namespace,
    body: { metadata: { name }, spec: { minAvailable, selector: { matchLabels: { app } } } },
  });
}

/** Pods of a namespace (not being deleted) Ready and bound, by app label. */
export async function readyPods(namespace: string, app: string): Promise<k8s.V1Pod[]> {
  const { core } = await localCluster();
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
  return pods.filter((p) => !p.metadata?.deletionTimestamp && p.spec?.nodeName && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
}

export interface BudgetWatch {
  /** Every moment a budget was seen broken, in words. */
  violations: string[];
  /** Events seen (budgets and pods), to show the watch was alive. */
  seen: number;
  /** Lowest count of Ready pods (not being deleted) per app, over the watch. */
  minReady: Map<string, number>;
  stop(): void;
}

/**
 * Watches every PodDisruptionBudget and pod of the namespace from now on. A budget is broken
 * when kube-controller-manager reports fewer healthy pods than it requires, or when fewer
 * pods of its app are Ready (and not being deleted) than minAvailable, as seen in the pod
 * stream itself. Start it once the workload is Ready.
 */
export async function watchBudgets(namespace: string, budgets: { app: string; minAvailable: number }[]): Promise<BudgetWatch> {
  const { kc, core } = await localCluster();
  const watch = new k8s.Watch(kc);
  const state: BudgetWatch = { violations: [], seen: 0, minReady: new Map(), stop: () => undefined };
  const ready = new Map<string, Map<string, boolean>>();
  const isReady = (p: k8s.V1Pod): boolean =>
    !p.metadata?.deletionTimestamp && p.spec?.nodeName !== undefined && (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
  const initial = (await core.listNamespacedPod({ namespace })).items;
  for (const p of initial) {
    const app = p.metadata?.labels?.app ?? '';
    if (!ready.has(app)) ready.set(app, new Map());
    ready.get(app)?.set(p.metadata?.uid ?? '', isReady(p));
  }
  const check = (app: string): void => {
    const count = [...(ready.get(app)?.values() ?? [])].filter(Boolean).length;
    state.minReady.set(app, Math.min(state.minReady.get(app) ?? Infinity, count));
    for (const b of budgets) {
      if (b.app === app && count < b.minAvailable) state.violations.push(`${new Date().toISOString()}: ${count} Ready pod(s) of ${app}, budget requires ${b.minAvailable}`);
    }
  };
  for (const b of budgets) check(b.app);
  const onPod = (type: string, p: k8s.V1Pod): void => {
    state.seen++;
    const app = p.metadata?.labels?.app ?? '';
    if (!ready.has(app)) ready.set(app, new Map());
    const m = ready.get(app) as Map<string, boolean>;
    if (type === 'DELETED') m.delete(p.metadata?.uid ?? '');
    else m.set(p.metadata?.uid ?? '', isReady(p));
    check(app);
  };
  const onBudget = (_type: string, b: k8s.V1PodDisruptionBudget): void => {
    state.seen++;
    const s = b.status;
    if (!s || (s.observedGeneration ?? 0) < (b.metadata?.generation ?? 0)) return;
    if (s.currentHealthy < s.desiredHealthy) {
      state.violations.push(`${new Date().toISOString()}: PodDisruptionBudget ${b.metadata?.name}: ${s.currentHealthy} healthy < ${s.desiredHealthy} desired`);
    }
  };
  const pods = await watch.watch(`/api/v1/namespaces/${namespace}/pods`, {}, onPod, () => undefined);
  const pdbs = await watch.watch(`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets`, {}, onBudget, () => undefined);
  state.stop = () => {
    pods.abort();
    pdbs.abort();
  };
  return state;
}
