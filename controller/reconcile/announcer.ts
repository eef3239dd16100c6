import { API_VERSION, KIND, type BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import type { EventRecorder, EventType, InvolvedObject } from '../../kube/events.js';

/** The autoscaler as the object its events are about. */
export function involvedObject(bma: BareMetalAutoscaler): InvolvedObject {
  return { apiVersion: API_VERSION, kind: KIND, name: bma.metadata.name, ...(bma.metadata.uid ? { uid: bma.metadata.uid } : {}) };
}

/**
 * Events that say a standing fact (a limit holds, a machine is blocked, a pod fits nowhere)
 * go out once per distinct message per topic, not at every reconcile. Autoscaler topics
 * (`<autoscaler>/<topic>`) and pod topics (`pod/<uid>`) are kept apart, so that no
 * autoscaler's name can be taken for a pod's key.
 */
export class Announcer {
  private readonly topics = new Map<string, string>();
  private readonly pods = new Map<string, string>();

  constructor(private readonly recorder: EventRecorder) {}

  /** Emits unless this autoscaler's topic last said exactly this. */
  announce(autoscaler: string, involved: InvolvedObject, topic: string, type: EventType, reason: string, message: string): void {
    onceIn(this.topics, `${autoscaler}/${topic}`, `${reason}/${message}`, () => this.recorder.emit(involved, type, reason, message));
  }

  /** A pod's topic (`pod/<uid>`): runs emit unless it last carried this text; returns whether it ran. */
  once(key: string, text: string, emit: () => void): boolean {
    return onceIn(this.pods, key, text, emit);
  }

  /** The topic's fact no longer holds: the next time it does, it is announced again. */
  clear(autoscaler: string, topic: string): void {
    this.topics.delete(`${autoscaler}/${topic}`);
  }

  /** Clears the autoscaler topics under a prefix (`<autoscaler>/blocked/`) except those still true. */
  clearExcept(prefix: string, keep: ReadonlySet<string>): void {
    for (const k of [...this.topics.keys()]) if (k.startsWith(prefix) && !keep.has(k.slice(prefix.length))) this.topics.delete(k);
  }

  /** Drops the topics of pods no longer pending. */
  prunePods(pending: ReadonlySet<string>): void {
    for (const k of this.pods.keys()) if (!pending.has(k.slice('pod/'.length))) this.pods.delete(k);
  }

  forgetAutoscaler(name: string): void {
    for (const k of this.topics.keys()) if (k.startsWith(`${name}/`)) this.topics.delete(k);
  }
}

function onceIn(map: Map<string, string>, key: string, text: string, emit: () => void): boolean {
  if (map.get(key) === text) return false;
  map.set(key, text);
  emit();
  return true;
}
