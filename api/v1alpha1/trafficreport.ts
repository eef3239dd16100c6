import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Type, type Static } from '@sinclair/typebox';
import { ObjectMetaSchema } from './baremetalautoscaler.js';
import { MAX_REPORT_PODS, MAX_REPORT_PODS_BYTES, TRAFFIC_MAX_LENGTH as MAX } from './traffic-names.js';

/**
 * TrafficReport, autoscaling.bamel.io/v1alpha1: what the eBPF agent of one node measured,
 * per pod. One object per node, named after the Node and owned by it (garbage-collected
 * with it).
 *
 * Cluster-scoped, like the Node it describes: one report covers the pods of every namespace
 * on its node, so it belongs to no namespace, and a namespaced report would need a namespace
 * chosen for it and RBAC on that namespace for every agent.
 *
 * A report is an observation, not an intent: the agent writes the whole object (server-side
 * apply), at most every --report-interval seconds and only when a rate changed noticeably
 * (or the report is getting old), so there is no spec/status split to keep.
 */

export {
  MAX_REPORT_PODS,
  MAX_REPORT_PODS_BYTES,
  TRAFFIC_API_VERSION,
  TRAFFIC_KIND,
  TRAFFIC_LIST_KIND,
  TRAFFIC_MAX_LENGTH,
  TRAFFIC_PLURAL,
  TRAFFIC_SHORT_NAMES,
  TRAFFIC_SINGULAR,
} from './traffic-names.js';

const rate = (what: string) => Type.Number({ minimum: 0, description: `${what} per second, averaged over the agent's poll interval.` });

export const PodTrafficSchema = Type.Object(
  {
    uid: Type.String({ maxLength: MAX.uid, description: 'The pod UID (from its cgroup path, under the systemd or the cgroupfs driver).' }),
    namespace: Type.Optional(Type.String({ maxLength: MAX.namespace, description: 'The pod namespace (absent while the agent has not seen the Pod object yet).' })),
    name: Type.Optional(Type.String({ maxLength: MAX.name, description: 'The pod name.' })),
    ownerKind: Type.Optional(Type.String({ maxLength: MAX.ownerKind, description: "Kind of the pod's controller (ReplicaSet, StatefulSet, ...)." })),
    ownerName: Type.Optional(Type.String({ maxLength: MAX.ownerName, description: "Name of the pod's controller." })),
    requestsPerSecond: rate('HTTP requests (HTTP/1.x request lines and HTTP/2 HEADERS frames on client streams) received'),
    http2RequestsPerSecond: rate('HTTP/2 requests received (part of requestsPerSecond)'),
    bytesPerSecond: rate('Bytes received and sent (IP packets, headers included)'),
    rxBytesPerSecond: rate('Bytes received'),
    connectionsPerSecond: rate('TCP connection attempts (SYN) received'),
    packetsPerSecond: rate('Packets received and sent'),
    retransmitsPerSecond: Type.Optional(rate('TCP retransmissions sent')),
  },
  { description: 'The traffic of one pod on this node.' },
);

export const TrafficReportSpecSchema = Type.Object(
  {
    nodeName: Type.String({ maxLength: MAX.nodeName, description: 'The node the agent runs on (also the object name).' }),
    observedAt: Type.String({ format: 'date-time', maxLength: MAX.observedAt, description: 'When the rates were measured.' }),
    intervalSeconds: Type.Number({ minimum: 0, description: 'The interval the rates are averaged over.' }),
    agent: Type.Optional(Type.String({ maxLength: MAX.agent, description: 'The agent that wrote the report (pod name or host, and version).' })),
    pods: Type.Array(PodTrafficSchema, {
      maxItems: MAX_REPORT_PODS,
      description: `Per pod with traffic: rates. Pods without any traffic in the interval are left out. At most ${MAX_REPORT_PODS} pods and ${MAX_REPORT_PODS_BYTES / 1024} KiB of JSON: beyond that the agent leaves out the pods with the least traffic (see omittedPods).`,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['uid'],
    }),
    omittedPods: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Pods with traffic the agent left out of pods to keep the report within its size cap (the ones with the fewest requests, then bytes, per second). Absent when none were.',
      }),
    ),
  },
  { description: 'What the agent of one node measured.' },
);

export const TrafficReportSchema = Type.Object(
  {
    apiVersion: Type.Optional(Type.String({ description: 'APIVersion of this object: autoscaling.bamel.io/v1alpha1.' })),
    kind: Type.Optional(Type.String({ description: 'Kind of this object: TrafficReport.' })),
    metadata: Type.Optional(ObjectMetaSchema),
    spec: TrafficReportSpecSchema,
  },
  {
    description:
      'TrafficReport is written by the bamel eBPF agent of one node: per pod, the requests, bytes and connections per second it receives. The controller turns rising rates into network pressure and powers on a machine the surging workload can run on.',
  },
);

export type PodTraffic = Static<typeof PodTrafficSchema>;
export type TrafficReportSpec = Static<typeof TrafficReportSpecSchema>;

export interface TrafficReport {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta & { name: string };
  spec: TrafficReportSpec;
}

export const TRAFFIC_PRINTER_COLUMNS = [
  { name: 'Node', type: 'string', jsonPath: '.spec.nodeName', description: 'The node measured.' },
  { name: 'Observed', type: 'date', jsonPath: '.spec.observedAt', description: 'When the rates were measured.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
] as const;
