import type * as k8s from '@kubernetes/client-node';
import type { ParsedMachine } from '../../api/inventory.js';
import type { BareMetalAutoscalerSpec, MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { advance, type LifecycleAction, type MachineFacts, type LifecycleSettings, type OperationOutcome, type PowerObservation } from '../lifecycle.js';
import { isNodeReady } from '../observe.js';
import type { Intent, Store } from './types.js';

/**
 * Lifecycle: every selected machine's phase moved on by what its Node and its BMC show
 * (controller/lifecycle.ts is the state machine of one machine; this step runs it for all).
 */

export interface LifecycleInput {
  spec: BareMetalAutoscalerSpec;
  selected: readonly ParsedMachine[];
  previous: readonly MachineStatus[];
  /** Status entries to keep exactly as they are (an ambiguous machine, or one a broken inventory may list). */
  held?: (machine: string) => boolean;
  nodes: Store<k8s.V1Node>;
  /** What this process last saw of each machine's power, and of its own operation on it. */
  power: (machine: string) => PowerObservation | undefined;
  outcome: (machine: string) => OperationOutcome | undefined;
  /** Until when an intent this process did not start may still land (reconcile/settle.ts). */
  mayLandUntil?: (opId: string, now: number) => number;
  settings: Omit<LifecycleSettings, 'joinTimeoutMs'>;
  now: number;
}

export interface LifecycleStepResult {
  machines: Map<string, MachineStatus>;
  wakeAts: number[];
  /** Finished operations of this process that status now reflects: the actuator may drop them. */
  acknowledged: { machine: string; opId: string }[];
  /** Power-offs the lifecycle asks for (a join timeout, a power-off to retry). */
  intents: Intent[];
  /** Machines whose power state should be read (a probe each, when the BMC allows it). */
  probes: ParsedMachine[];
  /** What happened, for events and metrics. */
  events: { machine: string; action: LifecycleAction }[];
  /** Machines no longer selected and with nothing in flight: their BMC sessions can close. */
  forgotten: string[];
}

export function lifecycleStep(input: LifecycleInput): LifecycleStepResult {
  const { spec, now } = input;
  const out: LifecycleStepResult = { machines: new Map(), wakeAts: [], acknowledged: [], intents: [], probes: [], events: [], forgotten: [] };
  const prevByName = new Map(input.previous.map((m) => [m.name, m]));
  for (const m of input.selected) {
    const node = input.nodes.get(m.name);
    const power = input.power(m.name);
    const outcome = input.outcome(m.name);
    const created = node?.metadata?.creationTimestamp ? new Date(node.metadata.creationTimestamp).getTime() : undefined;
    const facts: MachineFacts = {
      node: { exists: node !== undefined, ready: isNodeReady(node), ...(created !== undefined && Number.isFinite(created) ? { createdAt: created } : {}) },
      ...(power ? { power } : {}),
      ...(outcome ? { outcome } : {}),
    };
    const joinTimeoutMs = (m.joinTimeoutSeconds ?? spec.scaleUp.joinTimeoutSeconds) * 1000;
    const prevStatus = prevByName.get(m.name);
    const op = prevStatus?.operation;
    if (op && outcome?.id !== op.id && input.mayLandUntil) facts.mayLandUntil = input.mayLandUntil(op.id, now);
    const res = advance(m.name, prevStatus, facts, { ...input.settings, joinTimeoutMs }, now);
    out.machines.set(m.name, res.status);
    if (res.wakeAt !== undefined) out.wakeAts.push(res.wakeAt);
    if (outcome?.done && prevStatus?.operation?.id === outcome.id) out.acknowledged.push({ machine: m.name, opId: outcome.id });
    for (const action of res.actions) {
      if (action.type === 'probe') out.probes.push(m);
      else if (action.type === 'powerOff') {
        out.intents.push({ machine: m, action: 'PowerOff', reason: 'JoinTimeout', message: `its Node did not become Ready within ${joinTimeoutMs / 1000}s; powering it off and quarantining it` });
      } else if (action.type === 'retryPowerOff') {
        out.intents.push({ machine: m, action: 'PowerOff', reason: res.status.reason ?? 'PowerOffRetry', message: 'the earlier power-off did not take effect; retrying', retry: true });
      } else out.events.push({ machine: m.name, action });
    }
  }
  // Machines no longer selected (or gone from the inventory) stay in status while an
  // operation may still run; the others are forgotten. An operation of this process that
  // finished, or one of another that can no longer land, ends that.
  const selected = new Set(input.selected.map((m) => m.name));
  for (const [n, s] of prevByName) {
    if (selected.has(n)) continue;
    if (input.held?.(n)) {
      out.machines.set(n, s);
      continue;
    }
    const op = s.operation;
    if (op) {
      const outcome = input.outcome(n);
      const mine = outcome?.id === op.id;
      if (mine && outcome.done) out.acknowledged.push({ machine: n, opId: op.id });
      const over = mine ? outcome.done : input.mayLandUntil !== undefined && now >= input.mayLandUntil(op.id, now);
      if (!over) {
        out.machines.set(n, s);
        continue;
      }
    }
    out.forgotten.push(n);
  }
  return out;
}
