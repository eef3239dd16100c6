import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { BareMetalAutoscaler, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { Extender } from '../../extender/extender.js';
import { ExtenderMetrics } from '../../extender/metrics.js';
import type { ExtenderArgs } from '../../extender/protocol.js';
import { buildExtenderServer } from '../../extender/server.js';
import { MemoryCache } from './memory-cache.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'extender');

/**
 * Requests captured from kube-scheduler v1.36 (a listener in its place): `names` ones from a
 * nodeCacheCapable: true extender, `nodes` ones from nodeCacheCapable: false. The cluster had
 * Nodes cap-a (8 cpu, 32Gi), cap-b (16 cpu, 64Gi, tainted autoscaling.bamel.io/draining) and
 * cap-c (4 cpu, 16Gi); `web` tolerates the draining taint and requests 2 cpu and 1Gi (its
 * init container), `deployment` requests 1 cpu and 2Gi.
 */
export function fixture(name: string): ExtenderArgs {
  return JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as ExtenderArgs;
}

export function fixtureText(name: string): string {
  return readFileSync(join(dir, `${name}.json`), 'utf8');
}

/** The Nodes of the captured cluster, as the nodeCacheCapable: false requests carried them. */
export function capturedNodes(): V1Node[] {
  return fixture('filter-nodes-web').Nodes?.items ?? [];
}

export function autoscaler(name: string, machines: Partial<MachineStatus>[]): BareMetalAutoscaler {
  return {
    metadata: { name, resourceVersion: String(Math.random()) },
    spec: { inventory: { namespace: 'bamel-system', name: 'machines' } } as BareMetalAutoscaler['spec'],
    status: { machines: machines.map((m) => ({ phase: 'Ready', since: '2026-01-01T00:00:00Z', name: '', ...m })) },
  };
}

export interface Rig {
  autoscalers: MemoryCache<BareMetalAutoscaler>;
  nodes: MemoryCache<V1Node>;
  pods: MemoryCache<V1Pod>;
  extender: Extender;
  metrics: ExtenderMetrics;
  registry: Registry;
  app: ReturnType<typeof buildExtenderServer>;
}

export function rig(opts: { autoscalers?: BareMetalAutoscaler[]; nodes?: V1Node[]; pods?: V1Pod[]; bodyLimit?: number } = {}): Rig {
  const autoscalers = new MemoryCache(opts.autoscalers ?? []);
  const nodes = new MemoryCache(opts.nodes ?? capturedNodes());
  const pods = new MemoryCache(opts.pods ?? []);
  const registry = new Registry();
  const metrics = new ExtenderMetrics(registry);
  const extender = new Extender({ autoscalers, nodes, pods }, metrics);
  const app = buildExtenderServer({ extender, metrics, logger: pino({ level: 'silent' }), ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}) });
  return { autoscalers, nodes, pods, extender, metrics, registry, app };
}

/** A pod bound to a Node, requesting cpu and memory. */
export function boundPod(name: string, node: string, cpu: string, memory: string): V1Pod {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '1' },
    spec: { nodeName: node, containers: [{ name: 'c', resources: { requests: { cpu, memory } } }] },
    status: { phase: 'Running' },
  };
}
