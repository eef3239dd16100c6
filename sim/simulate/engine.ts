import type { ParsedMachine } from '../../api/inventory.js';
import { INVENTORY_LABEL, inventoriesOf, type BareMetalAutoscaler } from '../../api/v1alpha1/baremetalautoscaler.js';
import { BATCH_IDLE_MS, BATCH_MAX_MS, DEBOUNCE_MS } from '../../controller/watches.js';
import { Extender } from '../../extender/extender.js';
import { Accounting, type TimelineSample } from './accounting.js';
import { ControllerHost, type ReconcilerClass } from './controller.js';
import { Fleet } from './fleet.js';
import { seededRandom } from './heap.js';
import { oracleAt, type OracleSegment } from './oracle.js';
import { isNodeReady, Scheduler } from './scheduler.js';
import type { TracePod } from './trace.js';
import { World } from './world.js';

/**
 * The discrete-event loop of `bamel simulate`. The virtual clock jumps from one event to
 * the next: a trace pod created, a pod's run ending, a machine's boot ending, a reconcile
 * due. Nothing sleeps. At each instant, in order: pods are created and finish, booted
 * machines' Nodes register, the scheduler places what it can, and the controller
 * reconciles if it is due, as the manager's watches would make it (controller/watches.ts):
 * a new unschedulable pod 250 ms after the burst (at most 2 s after its first pod), other
 * pod changes debounced to one reconcile a second, Node and autoscaler changes at once,
 * and otherwise when the reconcile's own requeueAfterMs says. After each reconcile its BMC
 * operations settle before the clock moves (ControllerHost.reconcile).
 */

export type Policy = 'bamel' | 'always-on';

export interface EngineInput {
  pods: readonly TracePod[];
  machines: readonly ParsedMachine[];
  /** The inventory's machines.yaml text, as the controller reads it from its ConfigMap. */
  machinesYaml: string;
  /** The autoscaler with its defaults applied. */
  autoscaler: BareMetalAutoscaler;
  policy: Policy;
  seed: number;
  /** Relative boot-time jitter (default 0.1: ±10 %). */
  jitter?: number;
  /** Every machine boots in this many seconds (the reprovisioning model). */
  bootSeconds?: number;
  oracle: readonly OracleSegment[];
  reconcilerClass?: ReconcilerClass;
  /** Virtual time of the trace's second 0 (ms since the epoch). */
  start: number;
}

export interface EngineResult {
  end: number;
  accounting: Accounting;
  waits: number[];
  unplaced: number;
  reconciles: number;
  statusWrites: number;
  timeline: TimelineSample[];
  events: Map<string, number>;
}

/** At most this many reconciles at one instant; the next one waits a second (the queue's rate limit). */
const MAX_RECONCILES_PER_INSTANT = 8;
/** After the trace's last pod would have ended, the simulation stops this long later even if pods still wait. */
const GIVE_UP_AFTER_MS = 6 * 3_600_000;

export async function runEngine(input: EngineInput): Promise<EngineResult> {
  const { start } = input;
  let now = start;
  const clock = (): number => now;
  const random = seededRandom(input.seed);
  const bamel = input.policy === 'bamel';

  let reconcileAt: number | undefined;
  let batchFirst: number | undefined;
  let debounceAt: number | undefined;
  let podsDirty = false;
  let schedDirty = false;
  const due = (t: number): void => {
    reconcileAt = reconcileAt === undefined ? t : Math.min(reconcileAt, t);
  };
  const world = new World(input.machines, clock, start, {
    podEvent(kind) {
      podsDirty = true;
      if (kind !== 'pending') schedDirty = true;
      if (!bamel) return;
      if (kind === 'pending') {
        batchFirst ??= now;
        due(Math.min(now + BATCH_IDLE_MS, batchFirst + BATCH_MAX_MS));
      } else if (kind !== 'added' && debounceAt === undefined) {
        debounceAt = now + DEBOUNCE_MS;
        due(debounceAt);
      }
    },
    nodeEvent() {
      schedDirty = true;
      if (bamel) due(now);
    },
    autoscalerEvent() {
      // New standings: the extender filters and scores Nodes differently. The manager's
      // informer would also enqueue a reconcile for it, but the only writer is the
      // reconciler itself, which already reads its own last write (AutoscalerView): that
      // reconcile would find nothing new, so it is left out.
      schedDirty = true;
    },
  });
  const accounting = new Accounting(world.states, { demandCores: () => world.demandMilli / 1000, pendingPods: () => world.pending.size, oracleAt: (s) => oracleAt(input.oracle, s) }, start);
  const fleet = new Fleet(
    input.machines,
    { jitter: input.jitter ?? 0.1, random, now: clock, ...(input.bootSeconds !== undefined ? { bootSeconds: input.bootSeconds } : {}) },
    {
      poweredOn: (name, at) => {
        world.poweredOn(name, bamel);
        accounting.poweredOn(name, at, bamel);
      },
      poweredOff: (name, at) => {
        world.poweredOff(name);
        accounting.poweredOff(name, at);
      },
    },
  );

  const name = input.autoscaler.metadata.name;
  // One inventory only: the simulated autoscaler's first (bamel simulate --inventory takes one file).
  const { namespace, name: cmName } = inventoriesOf(input.autoscaler.spec)[0] ?? { namespace: 'bamel-system', name: 'machines' };
  world.inventories.put(`${namespace}/${cmName}`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: cmName, namespace, resourceVersion: '1', labels: { [INVENTORY_LABEL]: 'true' } },
    data: { 'machines.yaml': input.machinesYaml },
  });
  world.autoscalers.put(name, { ...input.autoscaler, metadata: { ...input.autoscaler.metadata, resourceVersion: '1', generation: 1 } });

  let host: ControllerHost | undefined;
  let extender: Extender | undefined;
  if (bamel) {
    host = new ControllerHost({ cluster: world, fleet, autoscaler: name, now: clock, ...(input.reconcilerClass ? { reconcilerClass: input.reconcilerClass } : {}) });
    extender = new Extender({ autoscalers: world.autoscalers, nodes: world.nodes, pods: world.pods });
    due(now);
  } else {
    for (const m of input.machines) {
      fleet.startOn(m.name);
      world.nodeReady(m);
    }
  }
  const scheduler = new Scheduler({ ready: () => world.nodes.list().filter(isNodeReady), usedOn: (n) => world.usedOn(n) }, extender, random);
  const schedule = (): void => {
    if (!schedDirty) return;
    schedDirty = false;
    scheduler.schedule(
      [...world.pending.values()],
      (pod, node) => world.bind(pod, node),
      (pod, message) => world.unschedulable(pod, message),
    );
  };

  const pods = input.pods;
  let next = 0;
  const lastTraceEnd = start + Math.max(0, ...pods.map((p) => (p.at + p.duration) * 1000));
  const giveUpAt = lastTraceEnd + GIVE_UP_AFTER_MS;
  let reconciles = 0;
  let end = start;
  for (;;) {
    const candidates = [next < pods.length ? start + (pods[next] as TracePod).at * 1000 : undefined, world.nextCompletion(), fleet.nextReadyAt(), reconcileAt].filter((t): t is number => t !== undefined);
    if (next >= pods.length && world.podCount === 0) {
      end = now;
      break;
    }
    if (candidates.length === 0) {
      end = now;
      break;
    }
    const t = Math.max(now, Math.min(...candidates));
    if (t > giveUpAt) {
      end = giveUpAt;
      accounting.advance(giveUpAt);
      now = giveUpAt;
      break;
    }
    accounting.advance(t);
    now = t;
    while (next < pods.length && start + (pods[next] as TracePod).at * 1000 <= now) world.create(pods[next++] as TracePod);
    world.complete(now);
    for (const m of fleet.booted(now)) world.nodeReady(m);
    schedule();
    let atThisInstant = 0;
    while (host && reconcileAt !== undefined && reconcileAt <= now) {
      if (atThisInstant >= MAX_RECONCILES_PER_INSTANT) {
        reconcileAt = now + 1000;
        break;
      }
      reconcileAt = undefined;
      if (debounceAt !== undefined && debounceAt <= now) debounceAt = undefined;
      batchFirst = undefined;
      if (podsDirty) {
        host.podsChanged();
        podsDirty = false;
      }
      const result = await host.reconcile();
      reconciles++;
      atThisInstant++;
      if (result.requeueAfterMs !== undefined) due(now + result.requeueAfterMs);
      schedule();
    }
  }
  accounting.advance(end);
  return {
    end,
    accounting,
    waits: world.waits,
    unplaced: world.unplaced(),
    reconciles,
    statusWrites: host?.writes ?? 0,
    timeline: accounting.timeline,
    events: host?.events.counts ?? new Map<string, number>(),
  };
}
