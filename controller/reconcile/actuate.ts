import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Actuator } from '../actuator.js';
import type { Drainer } from '../drain.js';
import type { ControllerMetrics } from '../metrics.js';
import { hasDrainingTaint } from '../scale-down.js';
import type { DrainStep } from './drain-step.js';
import type { Started } from './intents.js';
import type { ScaleDownStep } from './scale-down-step.js';
import type { Store } from './types.js';

/**
 * Actuate: the I/O that the status just written records, and only that: taints, evictions
 * and Node deletions for scale-down, then the BMC operations of the intents. Called only
 * after the status write succeeded (a conflict means nothing here runs).
 */

export interface ActuateInput {
  autoscaler: string;
  drains: DrainStep;
  scaleDown: ScaleDownStep;
  /** Machines whose power-off was aborted at the last look: their draining taint comes off. */
  untaint: readonly string[];
  started: readonly Started[];
  acknowledged: readonly { machine: string; opId: string }[];
  dryRun: boolean;
  log: Logger;
}

export interface ActuateDeps {
  actuator: Actuator;
  drainer: Drainer;
  metrics: ControllerMetrics;
  nodes: Store<k8s.V1Node>;
}

export async function actuate(deps: ActuateDeps, input: ActuateInput): Promise<void> {
  await actOnScaleDown(deps, input);
  for (const a of input.acknowledged) deps.actuator.acknowledge(a.machine, a.opId);
  for (const s of input.started) deps.actuator.start(input.autoscaler, s.machine, s.status.operation!);
}

async function actOnScaleDown(deps: ActuateDeps, input: ActuateInput): Promise<void> {
  const { drainer, metrics } = deps;
  const { autoscaler, drains, scaleDown: sd } = input;
  for (const name of [...drains.untaint, ...sd.untaint, ...input.untaint]) await drainer.untaint(name);
  for (const a of drains.aborts) metrics.drains.inc({ autoscaler, result: a.reason === 'DrainTimedOut' ? 'timed_out' : 'aborted' });
  for (const c of drains.completed) {
    metrics.drains.inc({ autoscaler, result: 'completed' });
    metrics.drainDuration.observe({ autoscaler }, c.ms / 1000);
    drainer.forget(c.machine);
  }
  if (input.dryRun) return;
  for (const st of sd.starts) {
    metrics.drains.inc({ autoscaler, result: 'started' });
    input.log.info({ machine: st.machine, pods: st.pods.length }, 'drain started');
    if (await drainer.taint(st.machine)) drainer.evict(autoscaler, st.machine, st.pods);
  }
  for (const e of drains.evict) {
    // After a leader change the taint may be missing: put it back before evicting again.
    const node = deps.nodes.get(e.machine);
    if (node && !hasDrainingTaint(node)) await drainer.taint(e.machine);
    drainer.evict(autoscaler, e.machine, e.pods, e.evictedBefore);
  }
  for (const d of sd.deleteNodes) await drainer.deleteNode(d.name, d.uid);
}
