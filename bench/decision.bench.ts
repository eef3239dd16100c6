// Run (both parts, about 4 minutes on the 2-core development machine):
//   TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/decision.bench.ts
// One part only:
//   ... bench/decision.bench.ts --e2e        end to end on the local control plane (hack/cluster.sh up first, or it is started)
//   ... bench/decision.bench.ts --recorded   the reconcile on recorded state at 1,000 and 10,000 machines, and
//                                           the manager's RSS with 1,000 machines and 30,000 pods
// Options: --pods N (end-to-end pods, default 30), --machines N (end-to-end machines, default 100),
//   --sizes 1000,10000,1000:30000 (M: M machines with --pending pending pods; M:P: M machines, half of them
//   Ready Nodes, and P pods in all), --pending N (pending pods, default 10000), --runs N (steady-state
//   reconciles per size), --reconciler PATH (another build of controller/reconcile/reconciler.js, compiled,
//   e.g. a copy of main's dist/, to compare: the recorded-state children run compiled code; make build first),
//   --json (a last line with the figures as one JSON object).
// A bamel manager started without --autoscaler-selector (make demo's) manages every autoscaler
// of the cluster, the bench's too; the end-to-end part stops when it sees one act. Then use a
// control plane of the bench's own, with the same variables for the bench and hack/cluster.sh:
//   export BAMEL_LOCAL=/tmp/bamel-bench-cluster BAMEL_ETCD_PORT=32379 BAMEL_APISERVER_PORT=36443 \
//     BAMEL_KCM_PORT=30257 BAMEL_SCHEDULER_PORT=30259 BAMEL_KWOK_PORT=30247
//   (the bench starts it if needed; hack/cluster.sh down stops it afterwards)
//
// Decision latency: from a pod marked Unschedulable to the power-on request for the machine
// that will host it. Two views:
//   a. end to end: kube-scheduler, the API server, `bamel manager` (its informers, batching,
//      reconcile, status write, credentials read, Redfish call) and `bamel sim`'s Redfish
//      BMCs, one pod at a time, each needing a machine of its own;
//   b. recorded state: the same Reconciler.reconcile() the manager runs, fed from in-memory
//      stores with 1,000 and 10,000 machines and 10,000 pending pods, to see how the
//      decision scales, with the controller's RSS at each size.
// Anchor: Cluster Autoscaler's scale-up SLO, from a pod marked unschedulable to the scale-up
// request: no more than 30 s under 100 nodes (about 5 s on average), 60 s from 100 to 1,000
// nodes (about 15 s) (cluster-autoscaler/FAQ.md, "What are the Service Level Objectives for
// Cluster Autoscaler?").
import { availableParallelism, loadavg } from 'node:os';
import { endToEnd, printEndToEnd } from './helpers/end-to-end.js';
import { measureSizeInChild, printRecorded, type SizeOptions, type SizeResult } from './helpers/recorded-bench.js';
import { errorMessage } from '../kube/errors.js';
import { summarize } from './helpers/stats.js';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};
const integer = (name: string, fallback: number): number => {
  const n = Number(option(name, String(fallback)));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number`);
  return n;
};

async function main(): Promise<void> {
  const reconciler = option('--reconciler', '');
  if (reconciler !== '') process.env.BAMEL_BENCH_RECONCILER = reconciler;
  const only = flag('--e2e') || flag('--recorded');
  const runE2e = !only || flag('--e2e');
  const runRecorded = !only || flag('--recorded');

  // The figures move with whatever else the machine runs: say how busy it was.
  const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(`decision benchmark: node ${process.version}, ${availableParallelism()} cores, load ${load()}, ${new Date().toISOString()}${reconciler ? `, reconciler ${reconciler}` : ''}`);
  const json: { bench: 'decision'; e2eP99Ms?: number; e2eUpperP99Ms?: number; recorded: { machines: number; pods: number; reconcileP50Ms: number; firstReconcileMs: number; rssMiB: number }[] } = { bench: 'decision', recorded: [] };
  if (runE2e) {
    const result = await endToEnd({ machines: integer('--machines', 100), pods: integer('--pods', 30), log: (m) => process.stderr.write(`${m}\n`) });
    printEndToEnd(result);
    // The watch saw Unschedulable → the power-on at the BMC (the lower bound); the upper bound starts at the condition's whole second.
    json.e2eP99Ms = round(summarize(result.timings.map((t) => t.power - t.seen)).p99);
    json.e2eUpperP99Ms = round(summarize(result.timings.map((t) => t.power - t.condition)).p99);
  }
  if (runRecorded) {
    const pendingPods = integer('--pending', 10_000);
    const sizes = option('--sizes', '1000,10000,1000:30000')
      .split(',')
      .map((s): SizeOptions => {
        const [machines, pods] = s.split(':').map(Number) as [number, number | undefined];
        if (!Number.isInteger(machines) || machines <= 0 || (pods !== undefined && !(Number.isInteger(pods) && pods > 0))) throw new Error(`--sizes: ${s} is not M or M:P`);
        const runs = integer('--runs', machines >= 5000 ? 15 : 30);
        return { machines, pendingPods, runs, budgetMs: 60_000, ...(pods !== undefined ? { totalPods: pods, readyShare: 0.5 } : {}) };
      });
    const results: SizeResult[] = [];
    for (const size of sizes) {
      process.stderr.write(`recorded state: ${size.machines} machines, ${size.totalPods !== undefined ? `${size.totalPods} pods in all` : `${size.pendingPods} pending pods`}\n`);
      results.push(await measureSizeInChild(size));
    }
    printRecorded(results);
    for (const r of results) {
      json.recorded.push({
        machines: r.machines,
        pods: r.pendingPods + r.runningPods,
        reconcileP50Ms: round(summarize(r.steady.map((x) => x.totalMs)).p50),
        firstReconcileMs: round(r.first.totalMs),
        // What the manager holds: the caches and the reconciler's state after the runs, after a full GC.
        rssMiB: round(r.after.rss / 2 ** 20),
      });
    }
  }
  console.log(`\nload average at the end: ${load()}`);
  if (flag('--json')) console.log(JSON.stringify(json));
}

function round(x: number): number {
  return Number(x.toFixed(3));
}

try {
  await main();
} catch (err) {
  process.stderr.write(`decision benchmark: ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
