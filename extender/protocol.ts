import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { Type, type Static } from '@sinclair/typebox';

/**
 * The kube-scheduler extender protocol (k8s.io/kube-scheduler/extender/v1). Its Go types have
 * no JSON tags, so the field names on the wire are the Go field names: `Pod`, `Nodes`,
 * `NodeNames`, `FailedNodes`, `FailedAndUnresolvableNodes`, `Error`, `Host`, `Score`.
 *
 * kube-scheduler sends both `Nodes` and `NodeNames`, one of them null: `NodeNames` when the
 * extender is configured `nodeCacheCapable: true` (we have the Nodes in our own cache),
 * `Nodes` (a whole NodeList) otherwise. The answer mirrors the mode of the request.
 */

/** MaxExtenderPriority: the scheduler multiplies by weight and by MaxNodeScore / 10. */
export const MAX_EXTENDER_PRIORITY = 10;

const ObjectMeta = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) }, { additionalProperties: true });

/**
 * What the extender reads of the pod is checked (the rest is kube-scheduler's business and
 * passes through); a request that fails these checks cannot come from kube-scheduler.
 */
const PodSchema = Type.Object(
  {
    metadata: ObjectMeta,
    spec: Type.Object(
      {
        containers: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1 }),
        initContainers: Type.Optional(Type.Union([Type.Array(Type.Object({}, { additionalProperties: true })), Type.Null()])),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);

const NodeSchema = Type.Object({ metadata: ObjectMeta }, { additionalProperties: true });

/** The largest cluster the protocol is asked about in one request. */
export const MAX_NODES = 100_000;

export const ExtenderArgsSchema = Type.Object(
  {
    Pod: PodSchema,
    Nodes: Type.Optional(
      Type.Union([
        Type.Object({ items: Type.Union([Type.Array(NodeSchema, { maxItems: MAX_NODES }), Type.Null()]) }, { additionalProperties: true }),
        Type.Null(),
      ]),
    ),
    NodeNames: Type.Optional(Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: MAX_NODES }), Type.Null()])),
  },
  { additionalProperties: true },
);

/** ExtenderArgs with the pod and Nodes typed as what they are. */
export interface ExtenderArgs {
  Pod: V1Pod & { metadata: { name: string } };
  Nodes?: { items: V1Node[] | null } | null;
  NodeNames?: string[] | null;
}

// Static<> checks the schema and the interface agree on the fields the handlers use.
export type ExtenderArgsWire = Static<typeof ExtenderArgsSchema>;

/** ExtenderFilterResult: exactly one of Nodes / NodeNames is set, in the request's mode. */
export interface ExtenderFilterResult {
  Nodes?: { metadata: Record<string, never>; items: V1Node[] };
  NodeNames?: string[];
  /** Nodes that fail and that preemption could make pass: none, here. */
  FailedNodes: Record<string, string>;
  /** Nodes that fail whatever is evicted from them: being drained, powered off, quarantined. */
  FailedAndUnresolvableNodes: Record<string, string>;
  Error: string;
}

/** HostPriority; a prioritize answer is a list of them. */
export interface HostPriority {
  Host: string;
  Score: number;
}

/** The Nodes a request names, in its mode. */
export type RequestNodes = { mode: 'names'; names: string[] } | { mode: 'nodes'; nodes: V1Node[] };

/**
 * Beyond the schema: exactly one of Nodes and NodeNames. Returns what is wrong, in words,
 * or the nodes.
 */
export function requestNodes(args: ExtenderArgs): RequestNodes | { error: string } {
  const names = args.NodeNames ?? null;
  const nodes = args.Nodes ?? null;
  if (names !== null && nodes !== null) {
    return { error: 'body has both Nodes and NodeNames; kube-scheduler sends NodeNames when nodeCacheCapable is true, Nodes when it is false, never both' };
  }
  if (names !== null) return { mode: 'names', names };
  if (nodes !== null) return { mode: 'nodes', nodes: nodes.items ?? [] };
  return { error: 'body has neither Nodes nor NodeNames: one of them must list the Nodes to filter or score' };
}
