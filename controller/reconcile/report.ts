import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ParsedMachine } from '../../api/inventory.js';
import type { MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { nodeRef, podRef, type EventRecorder, type InvolvedObject } from '../../kube/events.js';
import { check, summarizeInfeasible, type CompiledCandidate, type CompiledPod } from '../../scheduling/index.js';
import { learnedBootSeconds } from '../boot-times.js';
import type { ScaleUpDecision } from '../decide.js';
import type { LifecycleAction } from '../lifecycle.js';
import type { ControllerMetrics } from '../metrics.js';
import type { Announcer } from './announcer.js';
import { SelectionMemo } from './candidates.js';
import type { DrainStep } from './drain-step.js';
import type { Started } from './intents.js';
import type { ScaleDownStep } from './scale-down-step.js';
import type { MachineStates, Store } from './types.js';
import type { BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';

/**
 * Report: the events and metrics of one reconcile, after its status is written. Events on
 * the autoscaler for each decision and failure, on pods (which machine comes for them, or
 * why none can), on Nodes (drains).
 */

export interface ScaleUpReport {
  autoscaler: string;
  involved: InvolvedObject;
  decision: ScaleUpDecision;
  started: readonly Started[];
  lifecycle: readonly { machine: string; action: LifecycleAction }[];
  pending: readonly k8s.V1Pod[];
  selected: readonly ParsedMachine[];
  machines: MachineStates;
  dryRun: boolean;
  now: number;
  log: Logger;
  emptyCandidate: (m: ParsedMachine) => CompiledCandidate;
  compile: (pod: k8s.V1Pod) => { pod: CompiledPod; signature: string };
  /** Names the selected machines (inventory version and selector): explanations are kept while it stays. */
  selection?: string;
}

/** Why no selected machine can host pods of a signature, and which could if they were free. */
interface Explanation {
  summary: string;
  feasible: readonly string[];
}

export class Reporter {
  /** Pending pod uid → autoscaler → why none of its machines can host the pod. */
  private readonly infeasible = new Map<string, Map<string, string>>();
  /** The verdicts of every selected machine depend only on the selection and the signature. */
  private readonly explanations = new SelectionMemo<Explanation>();

  constructor(
    private readonly recorder: EventRecorder,
    private readonly metrics: ControllerMetrics,
    private readonly announcer: Announcer,
    private readonly autoscalers: Store<BareMetalAutoscaler>,
    private readonly pendingUids: () => ReadonlySet<string>,
  ) {}

  /** Pods a machine is now powered on for need no NoFeasibleMachine explanation. */
  placed(uids: readonly string[]): void {
    for (const uid of uids) this.infeasible.delete(uid);
  }

  scaleUp(r: ScaleUpReport): void {
    const { recorder, metrics } = this;
    const name = r.autoscaler;
    const podByUid = new Map(r.pending.map((p) => [p.metadata?.uid ?? '', p]));
    for (const choice of r.decision.powerOn) {
      const m = r.selected.find((x) => x.name === choice.machine);
      const boot = learnedBootSeconds(m, r.machines.get(choice.machine));
      const eta = boot !== undefined ? `, expected Ready in ~${boot}s` : '';
      if (r.dryRun) {
        this.announcer.announce(name, r.involved, `dry-${choice.machine}`, 'Normal', 'WouldPowerOn', `dry run: would power on ${choice.machine} (${choice.reason}): ${choice.detail}`);
        metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'dry_run' });
        continue;
      }
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'actuated' });
      r.log.info({ machine: choice.machine, reason: choice.reason, pods: choice.pods.length, score: choice.score }, 'scale-up decided');
      recorder.emit(r.involved, 'Normal', choice.reason === 'PreWarm' ? 'PreWarm' : 'PowerOn', `powering on ${choice.machine} (${choice.reason}${eta}): ${choice.detail}`);
      for (const p of choice.pods) {
        const pod = podByUid.get(p.uid);
        if (pod) recorder.emit(podRef(pod), 'Normal', 'TriggeredPowerOn', `${choice.machine}${eta} (autoscaler ${name})`);
        if (p.unschedulableSince !== undefined) metrics.decisionLatency.observe({ autoscaler: name }, Math.max(0, r.now - p.unschedulableSince) / 1000);
      }
    }
    for (const s of r.started) {
      if (s.status.operation?.action === 'PowerOff') recorder.emit(r.involved, 'Normal', 'PowerOff', `powering off ${s.machine.name}: ${s.status.message ?? ''}`);
    }
    this.lifecycle(r);
    if (r.decision.unplaceable.length > 0) {
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'no_feasible_machine' });
      const phase = (machine: string): string => r.machines.get(machine)?.phase ?? '';
      const verdictsOf = (compiled: CompiledPod): Explanation => {
        const verdicts = r.selected.map((m) => ({ machine: m.name, verdict: check(compiled, r.emptyCandidate(m)) }));
        return { summary: summarizeInfeasible(verdicts), feasible: verdicts.filter((v) => v.verdict.feasible).map((v) => v.machine) };
      };
      const memo = r.selection === undefined ? undefined : this.explanations.scope(r.selection);
      // Pods with one signature get the same verdict from every machine: explain them once.
      const explained = new Map<string, string>();
      const explain = (compiled: CompiledPod, signature: string): string => {
        const { summary, feasible } = memo ? memo(signature, () => verdictsOf(compiled)) : verdictsOf(compiled);
        // Every machine goes in (feasible ones too), so a `prefix-*` group never covers one that fits.
        const quarantined = feasible.filter((m) => phase(m) === 'Failed').map((m) => `${m}: quarantined`);
        const busy = feasible.filter((m) => !['Off', 'Failed'].includes(phase(m))).map((m) => `${m}: already ${r.machines.get(m)?.phase ?? 'on'} and full`);
        const text = [summary, ...quarantined, ...busy].filter(Boolean).join('; ');
        return text === '' ? 'no machine of this autoscaler can host it' : text;
      };
      for (const p of r.decision.unplaceable) {
        const pod = podByUid.get(p.uid);
        if (!pod) continue;
        const { pod: compiled, signature } = r.compile(pod);
        let message = explained.get(signature);
        if (message === undefined) explained.set(signature, (message = explain(compiled, signature)));
        this.explainInfeasible(pod, name, message);
      }
    }
    if (r.decision.limitedBy && r.decision.waiting.length > 0) {
      metrics.decisions.inc({ autoscaler: name, direction: 'up', result: 'limited' });
      this.announcer.announce(name, r.involved, 'limited', 'Normal', 'ScalingLimited', `${r.decision.waiting.length} pending pod(s) wait: ${r.decision.limitedBy}`);
    } else {
      this.announcer.clear(name, 'limited');
    }
  }

  private lifecycle(r: ScaleUpReport): void {
    for (const { machine, action } of r.lifecycle) {
      if (action.type === 'joined') {
        this.metrics.joinDuration.observe({ autoscaler: r.autoscaler }, action.joinMs / 1000);
        this.recorder.emit(r.involved, 'Normal', 'MachineJoined', `${machine} joined the cluster after ${Math.round(action.joinMs / 1000)}s`);
      } else if (action.type === 'failed') {
        const s = r.machines.get(machine);
        this.recorder.emit(r.involved, 'Warning', action.reason, `${machine}: ${action.message}; quarantined until ${s?.retryAfter ?? '?'}`);
      } else if (action.type === 'poweredOff') {
        this.recorder.emit(r.involved, 'Normal', 'MachinePoweredOff', `${machine} is powered off (${action.reason}); its Node is removed and registers again when the machine boots`);
      } else if (action.type === 'adopted') {
        this.recorder.emit(r.involved, 'Normal', 'MachineAdopted', `${machine} ${action.how}: adopted as Ready`);
      }
    }
  }

  /**
   * A pod gets NoFeasibleMachine only once every autoscaler has found that none of its
   * machines can host it (a pod meant for rack b is no news to rack a), with each one's
   * reasons; and again only when the reasons change.
   */
  private explainInfeasible(pod: k8s.V1Pod, autoscaler: string, message: string): void {
    const uid = pod.metadata?.uid ?? '';
    let byAutoscaler = this.infeasible.get(uid);
    if (!byAutoscaler) this.infeasible.set(uid, (byAutoscaler = new Map<string, string>()));
    byAutoscaler.set(autoscaler, message);
    const all = this.autoscalers.list().map((a) => a.metadata.name).sort();
    if (!all.every((a) => byAutoscaler.has(a))) return;
    const text = all.map((a) => `${a}: ${byAutoscaler.get(a) ?? ''}`).join(' | ');
    this.announcer.once(`pod/${uid}`, text, () => this.recorder.emit(podRef(pod), 'Warning', 'NoFeasibleMachine', text));
    if (this.infeasible.size > 20_000) {
      const pending = this.pendingUids();
      for (const k of this.infeasible.keys()) if (!pending.has(k)) this.infeasible.delete(k);
      this.announcer.prunePods(pending);
    }
  }

  scaleDown(autoscaler: string, involved: InvolvedObject, drains: DrainStep, sd: ScaleDownStep, machines: MachineStates, dryRun: boolean): void {
    const { recorder, metrics } = this;
    for (const st of sd.starts) {
      const s = machines.get(st.machine);
      recorder.emit(involved, 'Normal', 'DrainStarted', `${st.machine}: ${s?.message ?? 'draining'}`);
      recorder.emit(nodeRef(st.machine), 'Normal', 'DrainStarted', `bamel (autoscaler ${autoscaler}) drains this Node before powering it off: ${st.pods.length} pod(s) to move`);
      metrics.decisions.inc({ autoscaler, direction: 'down', result: 'actuated' });
    }
    for (const a of drains.aborts) {
      recorder.emit(involved, 'Warning', a.reason === 'DrainTimedOut' ? 'DrainTimedOut' : 'DrainAborted', `${a.machine}: drain aborted, the machine stays on: ${a.message}`);
      recorder.emit(nodeRef(a.machine), 'Warning', 'DrainAborted', `drain aborted, the draining taint removed: ${a.message}`);
    }
    for (const b of sd.blocked) {
      this.announcer.announce(autoscaler, involved, `blocked/${b.machine}`, 'Normal', 'ScaleDownBlocked', `${b.machine} stays on: ${b.messages.join('; ')}`.slice(0, 1024));
    }
    this.announcer.clearExcept(`${autoscaler}/blocked/`, new Set(sd.blocked.map((b) => b.machine)));
    if (dryRun) {
      for (const [machine, p] of sd.plan.machines) {
        if (p.disruption === 'Next') this.announcer.announce(autoscaler, involved, `dry-down-${machine}`, 'Normal', 'WouldDrain', `dry run: would drain and power off ${machine} (utilisation ${Math.round(p.utilization * 100)}% ${p.utilizationOf})`);
      }
    }
    let candidate = 0;
    let nextCount = 0;
    for (const p of sd.plan.machines.values()) {
      if (p.disruption === 'Candidate') candidate++;
      if (p.disruption === 'Next') nextCount++;
    }
    metrics.scaleDownMachines.set({ autoscaler, state: 'candidate' }, candidate);
    metrics.scaleDownMachines.set({ autoscaler, state: 'next' }, nextCount);
    metrics.scaleDownMachines.set({ autoscaler, state: 'blocked' }, sd.blocked.length);
  }

  /** Power-offs the last look aborted: pods were bound to the machine after it was chosen. */
  powerOffsAborted(autoscaler: string, involved: InvolvedObject, aborted: readonly { machine: string; pods: string[] }[]): void {
    for (const a of aborted) {
      const pods = `${a.pods.slice(0, 5).join(', ')}${a.pods.length > 5 ? ` and ${a.pods.length - 5} more` : ''}`;
      this.recorder.emit(involved, 'Warning', 'PowerOffAborted', `${a.machine}: power-off aborted, the machine stays on: ${a.pods.length} pod(s) run on it now (${pods})`);
      this.recorder.emit(nodeRef(a.machine), 'Warning', 'PowerOffAborted', `bamel (autoscaler ${autoscaler}) keeps this Node on: ${a.pods.length} pod(s) were bound to it after it was chosen for power-off`);
      this.metrics.drains.inc({ autoscaler, result: 'aborted' });
    }
  }

  gauges(
    autoscaler: string,
    machines: readonly MachineStatus[],
    pending: number,
    readings: readonly { category: string; level: number; ratePerMinute: number; pressured: boolean }[],
    degraded: (machine: string) => boolean,
    selected: readonly ParsedMachine[],
  ): void {
    const { metrics } = this;
    for (const phase of ['Off', 'PoweringOn', 'Joining', 'Ready', 'Draining', 'PoweringOff', 'Failed', 'Unknown']) {
      metrics.machines.set({ autoscaler, phase }, machines.filter((m) => m.phase === phase).length);
    }
    metrics.unschedulablePods.set({ autoscaler }, pending);
    for (const r of readings) {
      metrics.pressureLevel.set({ autoscaler, category: r.category }, r.level);
      metrics.pressureRate.set({ autoscaler, category: r.category }, r.ratePerMinute);
      metrics.pressured.set({ autoscaler, category: r.category }, r.pressured ? 1 : 0);
    }
    for (const m of selected) metrics.bmcDegraded.set({ autoscaler, machine: m.name }, degraded(m.name) ? 1 : 0);
  }
}
