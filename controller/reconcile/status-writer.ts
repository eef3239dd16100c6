import * as k8s from '@kubernetes/client-node';
import { API_VERSION, FINALIZER, GROUP, KIND, PLURAL, VERSION, type BareMetalAutoscaler, type BareMetalAutoscalerStatus, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { describeError, isApiStatus } from '../../kube/errors.js';
import { hasDrainingTaint } from '../scale-down.js';
import type { AutoscalerView } from './fetch.js';
import { compactStatus } from './status-compact.js';
import { fitStatus, SAFE_STATUS_BYTES } from './status-guard.js';
import { ConflictError, type AutoscalerApi, type Store } from './types.js';

/**
 * The status subresource and the finalizer, written with an optimistic lock: a conflict
 * means our view was stale, and nothing is actuated (ConflictError; the reconcile runs again).
 */
export class StatusWriter {
  constructor(
    private readonly api: AutoscalerApi,
    private readonly view: AutoscalerView,
    private readonly nodes: Store<k8s.V1Node>,
    /** The largest status sent (status-guard.ts); what is over it is trimmed, never refused. */
    private readonly safeBytes = SAFE_STATUS_BYTES,
  ) {}

  /**
   * Replaces the status, compacted (status-compact.ts) and within the safe size, unless it is
   * unchanged; removes the finalizer once a deletion is done. Returns what had to be trimmed.
   */
  async write(bma: BareMetalAutoscaler, status: BareMetalAutoscalerStatus, now = Date.now()): Promise<string[]> {
    if (bma.metadata.deletionTimestamp && (await this.maybeRemoveFinalizer(bma, status.machines ?? []))) return [];
    // The object's metadata and spec travel with the status.
    const around = Buffer.byteLength(JSON.stringify({ metadata: bma.metadata, spec: bma.spec }));
    const fitted = fitStatus(compactStatus(status, now), { limitBytes: this.safeBytes - around, generation: bma.metadata.generation ?? 0, now });
    const text = fitted.text;
    if (this.serialized(bma) === text) return fitted.trimmed;
    const updated = await this.api.replaceStatus({ apiVersion: API_VERSION, kind: KIND, metadata: bma.metadata, spec: bma.spec, status: fitted.status });
    if (updated.status !== undefined) this.written.set(updated.status, text);
    this.view.wrote(updated);
    return fitted.trimmed;
  }

  /** The JSON of statuses this writer wrote (the object it got back), so that it is not serialized again to compare. */
  private readonly written = new WeakMap<object, string>();

  private serialized(bma: BareMetalAutoscaler): string {
    if (bma.status === undefined) return '{}';
    return this.written.get(bma.status) ?? JSON.stringify(bma.status);
  }

  async addFinalizer(bma: BareMetalAutoscaler): Promise<void> {
    await this.api.patchFinalizers(bma.metadata.name, bma.metadata.resourceVersion, [...(bma.metadata.finalizers ?? []), FINALIZER]);
  }

  private async maybeRemoveFinalizer(bma: BareMetalAutoscaler, machines: MachineStatus[]): Promise<boolean> {
    if (!bma.metadata.deletionTimestamp) return false;
    if (machines.some((m) => m.operation || m.phase === 'Draining')) return false;
    // A draining taint left behind would keep pods off a machine nobody manages any more.
    if (machines.some((m) => hasDrainingTaint(this.nodes.get(m.name)))) return false;
    if (bma.spec.deletionPolicy === 'PowerOff' && machines.some((m) => ['Ready', 'Joining', 'PoweringOn', 'PoweringOff', 'Draining'].includes(m.phase))) return false;
    await this.api.patchFinalizers(bma.metadata.name, bma.metadata.resourceVersion, (bma.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
    return true;
  }
}

/** The autoscaler writes through the API server, with optimistic locking. */
export function kubeAutoscalerApi(custom: k8s.CustomObjectsApi): AutoscalerApi {
  return {
    async replaceStatus(bma) {
      try {
        return (await custom.replaceClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL, name: bma.metadata.name, body: bma })) as BareMetalAutoscaler;
      } catch (err) {
        if (isApiStatus(err, 409)) throw new ConflictError('status update conflicted');
        throw new Error(`writing the status of ${bma.metadata.name}: ${describeError(err)}`);
      }
    },
    async patchFinalizers(name, resourceVersion, finalizers) {
      try {
        await custom.patchClusterCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, name, body: { metadata: { finalizers, resourceVersion } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      } catch (err) {
        if (isApiStatus(err, 409)) throw new ConflictError('finalizer update conflicted');
        if (isApiStatus(err, 404)) return;
        throw new Error(`updating the finalizers of ${name}: ${describeError(err)}`);
      }
    },
  };
}
