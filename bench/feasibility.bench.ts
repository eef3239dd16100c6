// Run: TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import bench/feasibility.bench.ts [--full]
//
// Checks per second of the feasibility engine for 10,000 pending pods against 1,000
// machines with a realistic mix of taints, selectors, affinity and resources: compiled
// (compilePod/compileCandidate once, then fits or check per pair) against uncompiled
// (checkFeasibility per pair). The uncompiled path runs on the first pods only, unless
// --full, since it takes minutes for all ten million pairs.
import type { V1Container, V1NodeSelectorTerm, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { MachineTaint, ParsedMachine } from '../api/inventory.js';
import { parseQuantity } from '../api/quantity.js';
import { parseBmcAddress } from '../power/address.js';
import { candidateFromMachine, check, checkFeasibility, compileCandidate, compilePod, fits, type Candidate } from '../scheduling/index.js';

const PODS = 10_000;
const MACHINES = 1_000;
const full = process.argv.includes('--full');
const UNCOMPILED_PODS = full ? PODS : 300;

// A seeded generator, so that every run measures the same cluster.
let seed = 0x5eed;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const chance = (p: number): boolean => random() < p;

const ZONES = ['a', 'b', 'c'];
const RACKS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
const BMC = parseBmcAddress('ipmi://10.0.0.1');

function makeMachine(i: number): ParsedMachine {
  const rack = RACKS[i % RACKS.length] as string;
  const gpu = chance(0.2);
  const taints: MachineTaint[] = [];
  if (gpu) taints.push({ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' });
  if (chance(0.1)) taints.push({ key: 'dedicated', value: pick(['db', 'batch']), effect: 'NoSchedule' });
  if (chance(0.05)) taints.push({ key: 'spot', value: 'true', effect: 'PreferNoSchedule' });
  const cores = pick([16, 32, 64, 128]);
  const capacity: Record<string, string> = { cpu: String(cores), memory: `${pick([64, 128, 256, 512])}Gi`, 'ephemeral-storage': '1Ti', pods: '110' };
  if (gpu) capacity['nvidia.com/gpu'] = String(pick([4, 8]));
  const name = `rack-${rack}-${String(Math.floor(i / RACKS.length)).padStart(3, '0')}`;
  return {
    index: i,
    name,
    bmc: { address: 'ipmi://10.0.0.1', parsedAddress: BMC, credentialsSecret: 'bmc', insecureSkipVerify: false },
    labels: {
      rack,
      'topology.kubernetes.io/zone': ZONES[i % ZONES.length] as string,
      disk: chance(0.6) ? 'ssd' : 'hdd',
      cores: String(cores),
      'node.kubernetes.io/instance-type': `m${cores}`,
    },
    taints,
    capacity: Object.fromEntries(Object.entries(capacity).map(([resource, quantity]) => [resource, parseQuantity(quantity)])),
    capacityText: capacity,
  };
}

/** Some machines stand for Ready nodes that already run pods. */
function makeCandidate(i: number): Candidate {
  const candidate = candidateFromMachine(makeMachine(i));
  if (!chance(0.3)) return candidate;
  const used = new Map<string, bigint>();
  for (const [resource, amount] of candidate.allocatable) used.set(resource, (amount * BigInt(Math.floor(random() * 90))) / 100n);
  return { ...candidate, used };
}

const DEFAULT_TOLERATIONS: V1Toleration[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
];

function makePod(i: number): V1Pod {
  const gpu = chance(0.15);
  const requests: Record<string, string> = {
    cpu: pick(['100m', '250m', '500m', '1', '2', '4', '8', '24']),
    memory: pick(['128Mi', '512Mi', '1Gi', '4Gi', '16Gi', '64Gi', '300Gi']),
  };
  const limits: Record<string, string> = {};
  if (gpu) limits['nvidia.com/gpu'] = pick(['1', '2', '8']);
  const containers: V1Container[] = [{ name: 'app', resources: { requests, limits } }];
  if (chance(0.3)) containers.push({ name: 'log', resources: { requests: { cpu: '50m', memory: '64Mi' } } });
  const initContainers: V1Container[] = chance(0.1)
    ? [{ name: 'mesh', restartPolicy: 'Always', resources: { requests: { cpu: '100m', memory: '128Mi' } } }, { name: 'migrate', resources: { requests: { cpu: '2' } } }]
    : [];
  const tolerations = [...DEFAULT_TOLERATIONS];
  if (gpu) tolerations.push({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
  if (chance(0.05)) tolerations.push({ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' });
  const nodeSelector: Record<string, string> = {};
  if (chance(0.4)) nodeSelector['kubernetes.io/os'] = 'linux';
  if (chance(0.15)) nodeSelector.disk = 'ssd';
  const terms: V1NodeSelectorTerm[] = [];
  if (chance(0.25)) terms.push({ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ZONES.slice(0, 1 + Math.floor(random() * 2)) }] });
  if (chance(0.1)) terms.push({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['31'] }, { key: 'rack', operator: 'NotIn', values: ['a', 'b'] }] });
  return {
    metadata: { name: `pod-${i}`, namespace: 'default' },
    spec: {
      containers,
      initContainers,
      tolerations,
      nodeSelector,
      ...(terms.length === 0 ? {} : { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } }),
    },
  };
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}
const rate = (checks: number, secs: number): string => `${Math.round(checks / secs).toLocaleString('en')} checks/s`;
const millions = (n: number): string => `${(n / 1e6).toFixed(2)}M`;

const candidates = Array.from({ length: MACHINES }, (_, i) => makeCandidate(i));
const pods = Array.from({ length: PODS }, (_, i) => makePod(i));

// Warm up the JIT on a slice, so that the timed runs measure steady state.
{
  const wp = pods.slice(0, 200).map(compilePod);
  const wc = candidates.map(compileCandidate);
  for (const p of wp) for (const c of wc) check(p, c);
  for (const p of pods.slice(0, 20)) for (const c of candidates) checkFeasibility(p, c);
}

let start = process.hrtime.bigint();
const compiledPods = pods.map(compilePod);
const compiledCandidates = candidates.map(compileCandidate);
const compileSecs = seconds(start);

start = process.hrtime.bigint();
let feasible = 0;
for (const p of compiledPods) for (const c of compiledCandidates) if (fits(p, c)) feasible++;
const fitsSecs = seconds(start);

start = process.hrtime.bigint();
let reasons = 0;
for (const p of compiledPods) for (const c of compiledCandidates) reasons += check(p, c).reasons.length;
const checkSecs = seconds(start);

start = process.hrtime.bigint();
let uncompiledFeasible = 0;
for (const p of pods.slice(0, UNCOMPILED_PODS)) for (const c of candidates) if (checkFeasibility(p, c).feasible) uncompiledFeasible++;
const uncompiledSecs = seconds(start);

const pairs = PODS * MACHINES;
const uncompiledPairs = UNCOMPILED_PODS * MACHINES;
const checkRate = pairs / checkSecs;
const uncompiledRate = uncompiledPairs / uncompiledSecs;
const sampleFeasible = compiledPods.slice(0, UNCOMPILED_PODS).reduce((n, p) => n + compiledCandidates.filter((c) => fits(p, c)).length, 0);
if (sampleFeasible !== uncompiledFeasible) throw new Error(`compiled and uncompiled disagree: ${sampleFeasible} vs ${uncompiledFeasible} feasible`);

console.log(`feasibility: ${PODS.toLocaleString('en')} pods × ${MACHINES.toLocaleString('en')} machines = ${millions(pairs)} pairs, ${((100 * feasible) / pairs).toFixed(1)}% feasible, ${(reasons / (pairs - feasible)).toFixed(2)} reasons per infeasible pair`);
console.log(`  compile        ${(compileSecs * 1000).toFixed(0)} ms for all pods and machines`);
console.log(`  compiled fits  ${rate(pairs, fitsSecs)}  (${fitsSecs.toFixed(2)} s, yes/no only)`);
console.log(`  compiled check ${rate(pairs, checkSecs)}  (${checkSecs.toFixed(2)} s, with every reason)`);
console.log(`  uncompiled     ${rate(uncompiledPairs, uncompiledSecs)}  (${uncompiledSecs.toFixed(2)} s for ${millions(uncompiledPairs)} pairs${full ? '' : `, the first ${UNCOMPILED_PODS} pods`})`);
console.log(`  ratio          compiled check / uncompiled = ${(checkRate / uncompiledRate).toFixed(1)}×, compiled fits / uncompiled = ${(pairs / fitsSecs / uncompiledRate).toFixed(1)}×`);
