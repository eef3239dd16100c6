import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { compiledChildEntry } from './compiled-child.js';
import { buildRecordedCluster } from './recorded-cluster.js';
import { recordedReconciler, type ReconcileRun } from './recorded-reconciler.js';
import { memory, mib, ms, summarize, table, versus, type MemorySnapshot } from './stats.js';

/**
 * Part b of the decision benchmark: one full reconcile on recorded state at a given size,
 * in a process of its own so that its RSS is that size's and nothing else's.
 */

export interface SizeResult {
  machines: number;
  pendingPods: number;
  runningPods: number;
  nodes: number;
  first: ReconcileRun;
  steady: ReconcileRun[];
  baseline: MemorySnapshot;
  loaded: MemorySnapshot;
  after: MemorySnapshot;
  /** Peak RSS of the process (bytes). */
  maxRss: number;
  /**
   * Of the machines powered on (with why) and of every event of the first reconcile (which
   * pod goes to which machine, why a pod fits nowhere): equal digests, equal decisions.
   */
  digest: string;
  /** What the last status said: power-ons, waiting pods and why. */
  decision: string;
}

export interface SizeOptions {
  machines: number;
  pendingPods: number;
  /** Instead of pendingPods: pending pods to bring all the pods to this number. */
  totalPods?: number;
  /** Share of the machines that are Ready Nodes (recorded-cluster.ts; default 0.1). */
  readyShare?: number;
  runs: number;
  /** Stop adding steady-state runs after this long (ms), keeping at least 3. */
  budgetMs: number;
}

/** In the child: build, reconcile once cold, then repeatedly warm; print one JSON line. */
export async function measureSize(opts: SizeOptions): Promise<SizeResult> {
  const baseline = memory();
  const recordedAt = Date.parse('2026-03-02T10:00:00Z');
  // Time moves by two seconds per reconcile, as it would between reconciles of a busy cluster.
  let clock = recordedAt + 1000;
  // The state is built, handed to the harness (which keeps its own cached copies) and let go.
  const { harness, counts } = await (async () => {
    const state = buildRecordedCluster({
      machines: opts.machines,
      pendingPods: opts.pendingPods,
      ...(opts.totalPods !== undefined ? { totalPods: opts.totalPods } : {}),
      ...(opts.readyShare !== undefined ? { readyShare: opts.readyShare } : {}),
      now: recordedAt,
    });
    const counts = { machines: state.machineCount, pendingPods: state.pendingCount, runningPods: state.runningCount, nodes: state.nodes.length };
    return { harness: await recordedReconciler(state, () => clock), counts };
  })();
  const loaded = memory();

  const first = await harness.run();
  const invalid = harness.lastWritten()?.status?.conditions?.find((c) => c.status === 'False' && (c.type === 'InventoryValid' || c.type === 'Ready'));
  if (invalid) throw new Error(`the recorded state is not usable: ${invalid.type} ${invalid.reason}: ${invalid.message}`);
  if (first.powerOns === 0) throw new Error('the first reconcile powered nothing on: the recorded state does not exercise the decision');
  const statusDigest = (): string => {
    const machines = harness.lastWritten()?.status?.machines ?? [];
    const on = machines.filter((m) => m.phase === 'PoweringOn').map((m) => `${m.name}:${m.message ?? ''}`);
    return createHash('sha256').update(on.join('\n')).digest('hex').slice(0, 12);
  };
  const steadyDigest = statusDigest();
  // The events name each pod's machine (TriggeredPowerOn) and each unplaceable pod's reasons.
  const digest = createHash('sha256')
    .update(steadyDigest)
    .update([...first.events].sort().join('\n'))
    .digest('hex')
    .slice(0, 12);
  const eventCount = first.events.length;
  first.events = [];
  const status = harness.lastWritten()?.status;
  const limited = status?.conditions?.find((c) => c.type === 'ScalingLimited');
  const decision = `${first.powerOns} powered on, ${eventCount} events; ${limited?.message ?? ''}`;

  // The manager reconciles after pod changes, and rebuilds its pod index for each: so here.
  const steady: ReconcileRun[] = [];
  const started = Date.now();
  while (steady.length < opts.runs && (steady.length < 3 || Date.now() - started < opts.budgetMs)) {
    clock += 2000;
    harness.podsChanged();
    const run = await harness.run();
    run.events = [];
    steady.push(run);
    if (statusDigest() !== steadyDigest) throw new Error(`run ${steady.length} decided differently from the first one`);
  }
  const after = memory();
  return {
    ...counts,
    first,
    steady,
    baseline,
    loaded,
    after,
    maxRss: process.resourceUsage().maxRSS * 1024,
    digest,
    decision,
  };
}

const thisModule = fileURLToPath(import.meta.url);

/** In the parent: one child per size, run one after the other (two cores; they would disturb each other). */
export async function measureSizeInChild(opts: SizeOptions): Promise<SizeResult> {
  // Compiled, under plain node, as the manager runs: the RSS is the controller's, not the TypeScript loader's.
  const args = ['--expose-gc', await compiledChildEntry(), JSON.stringify(opts)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`${thisModule}: the child for ${opts.machines} machines exited with ${String(code)}`));
        return;
      }
      try {
        resolve(JSON.parse(line) as SizeResult);
      } catch {
        reject(new Error(`the child for ${opts.machines} machines printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

export function printRecorded(results: SizeResult[]): void {
  console.log('\nb. Recorded state through Reconciler.reconcile() (in-memory stores, instant BMCs)');
  for (const r of results) {
    console.log(
      `   ${r.machines.toLocaleString('en')} machines: ${r.nodes.toLocaleString('en')} Ready Nodes running ${r.runningPods.toLocaleString('en')} pods, ` +
        `${r.pendingPods.toLocaleString('en')} pending pods; decision ${r.digest}: ${r.decision}`,
    );
  }
  const rows = results.map((r) => {
    const total = summarize(r.steady.map((x) => x.totalMs));
    const firstOn = summarize(r.steady.flatMap((x) => (x.firstPowerOnMs !== undefined ? [x.firstPowerOnMs] : [])));
    return [
      sizeLabel(r),
      ms(r.first.totalMs),
      ms(r.first.firstPowerOnMs ?? Number.NaN),
      String(r.steady.length),
      ms(total.p50),
      ms(total.p99),
      ms(firstOn.p50),
      ms(firstOn.p99),
      `${(r.first.statusBytes / 1024).toFixed(0)} KiB`,
      mib(r.baseline.rss),
      mib(r.loaded.rss),
      mib(r.after.rss),
      mib(r.maxRss),
      mib(r.after.heapUsed),
    ];
  });
  console.log(
    table(
      ['machines', 'first', 'first→BMC', 'runs', 'p50', 'p99', 'p50→BMC', 'p99→BMC', 'status', 'RSS empty', 'RSS loaded', 'RSS after', 'RSS peak', 'heap used'],
      rows,
    ),
  );
  const at1000 = results.find((r) => r.machines === 1000 && r.pendingPods === 10_000);
  if (at1000) {
    const p99 = summarize(at1000.steady.map((x) => x.firstPowerOnMs ?? x.totalMs)).p99;
    const first = at1000.first.firstPowerOnMs ?? at1000.first.totalMs;
    console.log(`   vs Cluster Autoscaler's 60 s scale-up SLO (100 to 1,000 nodes): p99→BMC at 1,000 machines is ${versus(60_000, p99)} it, the first reconcile ${versus(60_000, first)}.`);
  }
  console.log(
    '   first: the first reconcile of a fresh Reconciler (inventory parsed, pods compiled); p50/p99: later reconciles after a pod change.\n' +
      '   →BMC: from the reconcile() call to the first power-on request reaching a BMC driver (the decision latency inside the controller).\n' +
      '   status: the size of the status object written. The children run the compiled code under plain node, as the manager does.\n' +
      '   RSS empty: the process before the state is built (node and the modules); loaded: with the cluster in its caches as the manager\'s informers hold it\n' +
      '   (the API server\'s JSON parsed, through their transforms), before any reconcile; after: after the runs, after a full GC (the figure the\n' +
      '   JSON reports: what the manager holds); peak: the highest RSS of the process, building the state in the bench\'s own form included; heap used: after a full GC.',
  );
}

/** "1,000" or, when the pods are not the default 10,000 pending, "1,000 / 30,000 pods". */
export function sizeLabel(r: SizeResult): string {
  const pods = r.pendingPods + r.runningPods;
  return r.pendingPods === 10_000 ? r.machines.toLocaleString('en') : `${r.machines.toLocaleString('en')} / ${pods.toLocaleString('en')} pods`;
}
