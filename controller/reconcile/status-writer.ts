import * as k8s from '@kubernetes/client-node';
import { API_VERSION, FINALIZER, GROUP, KIND, PLURAL, VERSION, type BareMetalAutoscaler, type BareMetalAutoscalerStatus, type MachineStatus } from '../../api/v1alpha1/baremetalautoscaler.js';
import { describeError, isApiStatus } from '../../kube/errors.js';
import { hasDrainingTaint } from '../scale-down.js';
import type { AutoscalerView } from './fetch.js';
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
  ) {}

  /** Replaces the status, unless it is unchanged; removes the finalizer once a deletion is done. */
  async write(bma: BareMetalAutoscaler, status: BareMetalAutoscalerStatus): Promise<void> {
    if (bma.metadata.deletionTimestamp && (await this.maybeRemoveFinalizer(bma, status.machines ?? []))) return;
    const text = JSON.stringify(status);
    if (this.serialized(bma) === text) return;
    const updated = await this.api.replaceStatus({ apiVersion: API_VERSION, kind: KIND, metadata: bma.metadata, spec: bma.spec, status });
    if (updated.status !== undefined) this.written.set(updated.status, text);
    this.view.wrote(updated);
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
