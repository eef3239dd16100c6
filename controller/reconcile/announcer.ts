import type { EventRecorder, EventType, InvolvedObject } from '../../kube/events.js';

/**
 * Events that say a standing fact (a limit holds, a machine is blocked, a pod fits nowhere)
 * go out once per distinct message per topic, not at every reconcile. Topics are keyed by
 * autoscaler (`<autoscaler>/<topic>`) or by pod (`pod/<uid>`).
 */
export class Announcer {
  private readonly announced = new Map<string, string>();

  constructor(private readonly recorder: EventRecorder) {}

  /** Emits unless this topic last said exactly this. */
  announce(autoscaler: string, involved: InvolvedObject, topic: string, type: EventType, reason: string, message: string): void {
    this.once(`${autoscaler}/${topic}`, `${reason}/${message}`, () => this.recorder.emit(involved, type, reason, message));
  }

  /** Runs emit unless key last carried this text; returns whether it ran. */
  once(key: string, text: string, emit: () => void): boolean {
    if (this.announced.get(key) === text) return false;
    this.announced.set(key, text);
    emit();
    return true;
  }

  /** The topic's fact no longer holds: the next time it does, it is announced again. */
  clear(autoscaler: string, topic: string): void {
    this.announced.delete(`${autoscaler}/${topic}`);
  }

  /** Clears the topics under a prefix (`<autoscaler>/blocked/`) except those still true. */
  clearExcept(prefix: string, keep: ReadonlySet<string>): void {
    for (const k of [...this.announced.keys()]) if (k.startsWith(prefix) && !keep.has(k.slice(prefix.length))) this.announced.delete(k);
  }

  /** Drops per-pod topics of pods no longer pending. */
  prunePods(pending: ReadonlySet<string>): void {
    for (const k of this.announced.keys()) if (k.startsWith('pod/') && !pending.has(k.slice(4))) this.announced.delete(k);
  }

  forgetAutoscaler(name: string): void {
    for (const k of this.announced.keys()) if (k.startsWith(`${name}/`)) this.announced.delete(k);
  }
}
