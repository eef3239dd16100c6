import { GROUP, VERSION } from './group.js';

/**
 * TrafficReport's names and size limits as plain constants, shared by its schema
 * (trafficreport.ts) and the node agent, which writes reports without loading the schema
 * library (a node agent's memory is counted on every node).
 */

export const TRAFFIC_KIND = 'TrafficReport';
export const TRAFFIC_LIST_KIND = 'TrafficReportList';
export const TRAFFIC_PLURAL = 'trafficreports';
export const TRAFFIC_SINGULAR = 'trafficreport';
export const TRAFFIC_SHORT_NAMES = ['tr'] as const;
export const TRAFFIC_API_VERSION = `${GROUP}/${VERSION}`;

/**
 * The size cap of a report. A Kubernetes object must fit in etcd's request limit (1.5 MiB by
 * default) with its managedFields (server-side apply lists every pod's key again), so a report
 * holds at most MAX_REPORT_PODS pods and its `pods` list at most MAX_REPORT_PODS_BYTES of
 * JSON. The schema enforces the count and every string's length; the agent keeps to both
 * bounds by leaving out the quietest pods and saying how many in `omittedPods`.
 */
export const MAX_REPORT_PODS = 1000;
export const MAX_REPORT_PODS_BYTES = 512 * 1024;

/** The longest value the schema admits for each string of a report. */
export const TRAFFIC_MAX_LENGTH = {
  uid: 64,
  namespace: 63,
  name: 253,
  ownerKind: 63,
  ownerName: 253,
  nodeName: 253,
  observedAt: 64,
  agent: 253,
} as const;
