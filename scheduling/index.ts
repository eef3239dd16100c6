/**
 * The feasibility engine: whether a pod can run on a machine or Node, and why not. The
 * controller and the scheduler extender both import it from here; neither imports the other.
 */
export {
  check,
  checkFeasibility,
  compileCandidate,
  compilePod,
  FEASIBLE,
  fits,
  type CompiledCandidate,
  type CompiledPod,
  type Reason,
  type Verdict,
} from './feasibility.js';
export { candidateFromMachine, candidateFromNode, HOSTNAME_LABEL, isTerminated, OS_LABEL, predictedNodeLabels, UNSCHEDULABLE_TAINT, type Candidate } from './machine.js';
export { podRequests, sumRequests, type PodRequestsOptions } from './requests.js';
export { formatResource, ONE_POD, PODS, type ReadonlyResourceList, type ResourceList } from './resources.js';
export { EVENT_MESSAGE_MAX_BYTES, summarizeInfeasible, type MachineVerdict, type SummaryOptions } from './summary.js';
export { BLOCKING_EFFECTS, formatTaint, toleratesTaint, untoleratedTaints, type Taint, type Toleration } from './taints.js';
export {
  compileNodeAffinity,
  compileNodeSelector,
  matchesNodeAffinity,
  matchesNodeSelector,
  nodeAffinityFailures,
  nodeSelectorMismatches,
  type AffinityFailure,
  type CompiledNodeAffinity,
  type CompiledNodeSelector,
  type NodeLabels,
  type NodeSelectorMismatch,
} from './affinity.js';
