import { VERSION as BAMEL_VERSION } from '../api/version.js';
import { GROUP, VERSION } from '../api/v1alpha1/group.js';
import type { PodTraffic, TrafficReport } from '../api/v1alpha1/trafficreport.js';
import { TRAFFIC_API_VERSION, TRAFFIC_KIND, TRAFFIC_MAX_LENGTH, TRAFFIC_PLURAL } from '../api/v1alpha1/traffic-names.js';
import { API_REQUEST_TIMEOUT_MS, kubeJson, type KubeEndpoint } from '../kube/kube-http.js';

/**
 * The agent's two API calls, over kube/kube-http.ts (no client-node in the agent's process):
 * the Node's UID once (the report's owner, so it goes with the Node), and a server-side apply
 * of the node's TrafficReport, which creates or replaces it in one request whatever existed.
 */

export const FIELD_MANAGER = 'bamel-agent';

export interface ReportContent {
  pods: PodTraffic[];
  omittedPods: number;
  observedAt: number;
  intervalSeconds: number;
}

export class TrafficReportWriter {
  private nodeUid: string | undefined;

  constructor(
    private readonly kc: KubeEndpoint,
    private readonly nodeName: string,
    private readonly timeoutMs = API_REQUEST_TIMEOUT_MS,
  ) {}

  async write(content: ReportContent): Promise<TrafficReport> {
    const node = this.nodeName;
    if (this.nodeUid === undefined) {
      try {
        const path = `/api/v1/nodes/${encodeURIComponent(node)}`;
        const got = await kubeJson<{ metadata?: { uid?: string } }>(this.kc, { method: 'GET', path, signal: AbortSignal.timeout(this.timeoutMs), what: `reading Node ${node}` });
        this.nodeUid = got.metadata?.uid ?? '';
      } catch {
        // No Node object (yet): the report is written without an owner and retried next time.
      }
    }
    const body = reportBody(node, this.nodeUid, content);
    return kubeJson<TrafficReport>(this.kc, {
      method: 'PATCH',
      path: `/apis/${GROUP}/${VERSION}/${TRAFFIC_PLURAL}/${encodeURIComponent(node)}`,
      query: { fieldManager: FIELD_MANAGER, force: true },
      body: JSON.stringify(body),
      // An apply configuration is YAML, of which JSON is a part.
      contentType: 'application/apply-patch+yaml',
      signal: AbortSignal.timeout(this.timeoutMs),
      what: `applying TrafficReport ${node}`,
    });
  }
}

export function reportBody(node: string, nodeUid: string | undefined, c: ReportContent): TrafficReport {
  return {
    apiVersion: TRAFFIC_API_VERSION,
    kind: TRAFFIC_KIND,
    metadata: {
      name: node,
      labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER },
      ...(nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: nodeUid }] } : {}),
    },
    spec: {
      nodeName: node,
      observedAt: new Date(c.observedAt).toISOString(),
      intervalSeconds: c.intervalSeconds,
      agent: `bamel-agent ${BAMEL_VERSION} on ${process.env.POD_NAME ?? node}`.slice(0, TRAFFIC_MAX_LENGTH.agent),
      pods: c.pods,
      ...(c.omittedPods > 0 ? { omittedPods: c.omittedPods } : {}),
    },
  };
}
