import t, { type Test } from 'tap';
import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import { systemClock, type Clock, type TimerHandle } from '../../kube/clock.js';
import { LeaderElector, LeadershipLostError, type LeaderElectorOptions } from '../../kube/leader.js';
import { localCluster, testNamespace, waitFor } from './helpers/cluster.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

// Short timings so that expiry-based takeovers take seconds: the lease lasts 3 s, the
// leader gives up after 2 s without a renewal, attempts every 0.5 s. Assertions on time
// leave wide margins: the machine running them may be busy.
const FAST = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } as const;

interface Candidate {
  elector: LeaderElector;
  id: string;
  /** Timestamps (performance.now) of what happened to this candidate. */
  startedAt?: number;
  abortedAt?: number;
  /** Date.now() when the signal aborted, to compare with the lease's renewTime. */
  abortedAtWall?: number;
  startedAtWall?: number;
  abortReason?: unknown;
  stoppedAt?: number;
  newLeaders: string[];
  order: string[];
}

function candidate(t: Test, client: k8s.CoordinationV1Api | k8s.KubeConfig, namespace: string, lease: string, id: string, extra: Partial<LeaderElectorOptions> = {}): Candidate {
  const c: Partial<Candidate> & Pick<Candidate, 'id' | 'newLeaders' | 'order'> = { id, newLeaders: [], order: [] };
  c.elector = new LeaderElector({
    client,
    namespace,
    name: lease,
    identity: id,
    ...FAST,
    onStartedLeading: (signal) => {
      c.startedAt = performance.now();
      c.startedAtWall = Date.now();
      c.order.push('started');
      signal.addEventListener('abort', () => {
        c.abortedAt = performance.now();
        c.abortedAtWall = Date.now();
        c.abortReason = signal.reason;
        c.order.push('aborted');
      });
    },
    onStoppedLeading: () => {
      c.stoppedAt = performance.now();
      c.order.push('stopped');
    },
    onNewLeader: (leader) => c.newLeaders.push(leader),
    ...extra,
  });
  const elector = c.elector;
  t.teardown(() => elector.stop());
  return c as Candidate;
}

/** Samples both candidates every 20 ms and counts the samples in which both believed they led. */
function overlapMonitor(a: Candidate, b: Candidate): { both: () => number; stop: () => void } {
  let both = 0;
  const timer = setInterval(() => {
    if (a.elector.isLeader() && b.elector.isLeader()) both++;
  }, 20);
  return { both: () => both, stop: () => clearInterval(timer) };
}

async function readLease(namespace: string, name: string): Promise<k8s.V1Lease> {
  const { kc } = await localCluster();
  return kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name, namespace });
}

/** A clock that can be frozen like a stopped process: timers due meanwhile wait for the thaw. */
class FreezableClock implements Clock {
  private frozen = false;
  private readonly held = new Set<{ fn: () => void; at: number; timer?: TimerHandle; cancelled: boolean }>();

  now(): number {
    return systemClock.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const entry: { fn: () => void; at: number; timer?: TimerHandle; cancelled: boolean } = { fn, at: this.now() + ms, cancelled: false };
    if (this.frozen) this.held.add(entry);
    else entry.timer = systemClock.setTimeout(() => this.fire(entry), ms);
    return entry;
  }

  clearTimeout(handle: TimerHandle): void {
    const entry = handle as { timer?: TimerHandle; cancelled: boolean };
    entry.cancelled = true;
    if (entry.timer) systemClock.clearTimeout(entry.timer);
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    const due = [...this.held].sort((x, y) => x.at - y.at);
    this.held.clear();
    for (const e of due) if (!e.cancelled) e.timer = systemClock.setTimeout(() => this.fire(e), e.at - this.now());
  }

  private fire(entry: { fn: () => void; at: number; cancelled: boolean }): void {
    if (entry.cancelled) return;
    if (this.frozen) this.held.add(entry);
    else entry.fn();
  }
}

let ns = '';
t.before(async () => {
  ns = await testNamespace(t, 'leader');
});

t.test('options are validated like client-go', async (t) => {
  const { kc } = await localCluster();
  const base = { client: kc, namespace: 'x', name: 'y', identity: 'z', onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
  t.throws(() => new LeaderElector({ ...base, identity: '' }), TypeError);
  t.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), /must exceed renewDeadlineMs/);
  t.throws(() => new LeaderElector({ ...base, leaseDurationMs: 2500, renewDeadlineMs: 2200, retryPeriodMs: 500 }), /2 s in the lease/);
  t.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 }), /must exceed 1.2/);
  t.doesNotThrow(() => new LeaderElector({ ...base }));
});

t.test('two candidates on one lease: exactly one leads, the other follows it', async (t) => {
  const { kc } = await localCluster();
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const lease = 'both';
  const a = candidate(t, api, ns, lease, 'replica-a');
  const b = candidate(t, kc, ns, lease, 'replica-b');
  const overlap = overlapMonitor(a, b);
  a.elector.start();
  b.elector.start();
  await waitFor('a leader', 10_000, async () => a.elector.isLeader() || b.elector.isLeader());
  const [leader, follower] = a.elector.isLeader() ? [a, b] : [b, a];

  const first = await readLease(ns, lease);
  await new Promise((r) => setTimeout(r, 2 * FAST.leaseDurationMs));
  const later = await readLease(ns, lease);
  overlap.stop();

  t.equal(overlap.both(), 0, 'never both leading');
  t.ok(leader.elector.isLeader(), 'the leader kept its lease past two lease durations');
  t.notOk(follower.elector.isLeader());
  t.equal(follower.startedAt, undefined, 'the follower never started leading');
  t.equal(leader.order.join(), 'started');
  t.equal(later.spec?.holderIdentity, leader.id);
  t.equal(later.spec?.leaseTransitions, 0, 'created by the leader: no transition yet');
  t.equal(later.spec?.leaseDurationSeconds, 3);
  t.equal(String(later.spec?.acquireTime), String(first.spec?.acquireTime), 'renewals keep the acquire time');
  t.not(String(later.spec?.renewTime), String(first.spec?.renewTime), 'renewals move the renew time');
  t.match(String(later.spec?.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime with six fractional digits');
  t.equal(follower.elector.leaderIdentity(), leader.id);
  t.same(follower.newLeaders, [leader.id], 'the follower was told who leads');
  t.same(leader.newLeaders, [leader.id]);
});

t.test('a leader stopped with release hands over at once, well before the lease would expire', async (t) => {
  const { kc } = await localCluster();
  const lease = 'release';
  const slow = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 };
  const a = candidate(t, kc, ns, lease, 'replica-a', slow);
  const b = candidate(t, kc, ns, lease, 'replica-b', slow);
  a.elector.start();
  await waitFor('a leads', 10_000, async () => a.elector.isLeader());
  b.elector.start();
  await waitFor('b to see a as the leader', 10_000, async () => b.elector.leaderIdentity() === 'replica-a');

  const overlap = overlapMonitor(a, b);
  const stopAt = performance.now();
  await a.elector.stop();
  t.same(a.order, ['started', 'aborted', 'stopped'], 'the signal aborted before onStoppedLeading');
  t.type(a.abortReason, LeadershipLostError);
  t.notOk(a.elector.isLeader());

  await waitFor('b leads', 10_000, async () => b.elector.isLeader());
  const handover = performance.now() - stopAt;
  overlap.stop();
  t.ok(handover < 5000, `b took over ${Math.round(handover)} ms after a stopped (lease duration 15 s)`);
  t.equal(overlap.both(), 0, 'never both leading');
  const l = await readLease(ns, lease);
  t.equal(l.spec?.holderIdentity, 'replica-b');
  t.equal(l.spec?.leaseTransitions, 1, 'one transition counted');
  t.equal(l.spec?.leaseDurationSeconds, 15, 'the new holder writes its own duration again');
  t.same(b.newLeaders, ['replica-a', 'replica-b']);
});

t.test('a frozen leader (no renewals, no release) is replaced only after the lease expires', async (t) => {
  const { kc } = await localCluster();
  const lease = 'frozen';
  const clock = new FreezableClock();
  const a = candidate(t, kc, ns, lease, 'replica-a', { clock });
  const b = candidate(t, kc, ns, lease, 'replica-b');
  a.elector.start();
  await waitFor('a leads', 10_000, async () => a.elector.isLeader());
  b.elector.start();
  await waitFor('b to see a as the leader', 10_000, async () => b.elector.leaderIdentity() === 'replica-a');

  clock.freeze();
  // A renewal in flight at the freeze still lands; after that the lease stands still.
  await new Promise((r) => setTimeout(r, 1000));
  const lastRenewal = Date.parse(String((await readLease(ns, lease)).spec?.renewTime));
  await waitFor('b leads', 20_000, async () => b.elector.isLeader());
  // Same machine, same wall clock: the lease's renewTime says when a last renewed, and b
  // must wait a full lease duration from when it saw that renewal.
  const takeover = (b.startedAtWall ?? 0) - lastRenewal;
  t.ok(takeover >= FAST.leaseDurationMs, `b waited for expiry: took over ${takeover} ms after a's last renewal`);
  t.ok(takeover < FAST.leaseDurationMs + 6000, 'and took over soon after it');
  t.ok(a.elector.isLeader(), 'the frozen process cannot know it lost the lease');

  const thawedAt = performance.now();
  clock.thaw();
  await waitFor('a to step down after thawing', 10_000, async () => a.stoppedAt !== undefined);
  t.ok((a.abortedAt ?? Infinity) - thawedAt < FAST.retryPeriodMs + 1000, 'a steps down as soon as it runs again: its renew deadline has long passed');
  t.same(a.order, ['started', 'aborted', 'stopped']);
  t.match(String((a.abortReason as Error).message), /no successful renewal|held by replica-b/);
  const l = await readLease(ns, lease);
  t.equal(l.spec?.holderIdentity, 'replica-b', "a's release did not touch b's lease");
  t.equal(l.spec?.leaseTransitions, 1);
  t.ok(b.elector.isLeader());
});

t.test("expiry is judged by when a candidate saw the lease change, not by the lease's renewTime", async (t) => {
  const { kc } = await localCluster();
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const lease = 'skewed';
  // Written by a holder whose clock is an hour behind: by its renewTime the lease expired
  // long ago, but it may have been renewed a moment ago.
  await api.createNamespacedLease({
    namespace: ns,
    body: {
      metadata: { name: lease },
      spec: { holderIdentity: 'slow-clock', leaseDurationSeconds: 3, leaseTransitions: 4, renewTime: new k8s.V1MicroTime(Date.now() - 3_600_000) },
    },
  });
  const a = candidate(t, kc, ns, lease, 'replica-a');
  const startAt = performance.now();
  a.elector.start();
  await waitFor('a leads', 15_000, async () => a.elector.isLeader());
  const waited = (a.startedAt ?? 0) - startAt;
  t.ok(waited >= 3000, `a waited a full lease duration from its first look (${Math.round(waited)} ms)`);
  t.ok(waited < 3000 + 3000, 'and not much more');
  t.same(a.newLeaders, ['slow-clock', 'replica-a']);
  const l = await api.readNamespacedLease({ name: lease, namespace: ns });
  t.equal(l.spec?.leaseTransitions, 5, 'the takeover is counted');
  t.equal(l.spec?.holderIdentity, 'replica-a');
});

t.test('a leader whose lease another identity took steps down at its next renewal and leaves the lease alone', async (t) => {
  const { kc } = await localCluster();
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const lease = 'overwritten';
  const a = candidate(t, kc, ns, lease, 'replica-a');
  a.elector.start();
  await waitFor('a leads', 10_000, async () => a.elector.isLeader());

  const current = await api.readNamespacedLease({ name: lease, namespace: ns });
  const takenAt = performance.now();
  await api.replaceNamespacedLease({
    name: lease,
    namespace: ns,
    body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder', leaseDurationSeconds: 60, renewTime: new k8s.V1MicroTime() } },
  });
  await waitFor('a steps down', 10_000, async () => a.stoppedAt !== undefined);
  const took = (a.abortedAt ?? Infinity) - takenAt;
  t.ok(took < FAST.renewDeadlineMs, `stepped down ${Math.round(took)} ms after the overwrite, without waiting out the renew deadline`);
  t.same(a.order, ['started', 'aborted', 'stopped']);
  t.match(String((a.abortReason as Error).message), /held by intruder/);
  t.equal(a.elector.leaderIdentity(), 'intruder');
  t.same(a.newLeaders, ['replica-a', 'intruder']);
  const l = await api.readNamespacedLease({ name: lease, namespace: ns });
  t.equal(l.spec?.holderIdentity, 'intruder', 'not released: it is not ours');
});

t.test('renewals failing beyond the renew deadline: the leader steps down, and before anyone takes over', async (t) => {
  const { kc } = await localCluster();
  const proxy = await startTcpProxy(kc);
  t.teardown(() => proxy.close());
  const lease = 'partitioned';
  const a = candidate(t, proxy.kc, ns, lease, 'replica-a');
  const b = candidate(t, kc, ns, lease, 'replica-b');
  a.elector.start();
  await waitFor('a leads', 10_000, async () => a.elector.isLeader());
  b.elector.start();
  await waitFor('b to see a as the leader', 10_000, async () => b.elector.leaderIdentity() === 'replica-a');

  const overlap = overlapMonitor(a, b);
  const cutAt = performance.now();
  proxy.partition(true);
  proxy.cut();
  const lastRenewal = Date.parse(String((await readLease(ns, lease)).spec?.renewTime));
  await waitFor('a steps down', 10_000, async () => a.abortedAt !== undefined);
  await waitFor('b leads', 15_000, async () => b.elector.isLeader());
  overlap.stop();
  const sinceCut = (a.abortedAt ?? Infinity) - cutAt;
  t.ok(sinceCut <= FAST.renewDeadlineMs + 1000, `a stepped down ${Math.round(sinceCut)} ms after losing the API server`);
  // The deadline runs from when a sent its last successful renewal, just after it wrote
  // renewTime (one that reached the server unanswered can only make this shorter).
  const sinceRenewal = (a.abortedAtWall ?? 0) - lastRenewal;
  t.ok(sinceRenewal >= FAST.renewDeadlineMs - 600, `having kept trying until its deadline: ${sinceRenewal} ms after its last renewal`);
  t.match(String((a.abortReason as Error).message), /no successful renewal for 2000 ms/);
  t.ok((a.abortedAt ?? Infinity) < (b.startedAt ?? -Infinity), 'a stopped acting before b started');
  t.equal(overlap.both(), 0, 'never both leading');
  await waitFor('a finishes stepping down', 10_000, async () => a.stoppedAt !== undefined);
  t.same(a.order, ['started', 'aborted', 'stopped']);
  const l = await readLease(ns, lease);
  t.equal(l.spec?.holderIdentity, 'replica-b');
  t.equal(l.spec?.leaseTransitions, 1);
});

t.test('a failing onStartedLeading gives the lease up', async (t) => {
  const { kc } = await localCluster();
  const lease = 'crashing';
  let stopped = false;
  const elector = new LeaderElector({
    client: kc,
    namespace: ns,
    name: lease,
    identity: 'replica-a',
    ...FAST,
    onStartedLeading: async () => {
      throw new Error('cannot start the controllers');
    },
    onStoppedLeading: () => {
      stopped = true;
    },
  });
  const run = elector.run();
  await waitFor('stepped down', 10_000, async () => stopped);
  await run;
  t.notOk(elector.isLeader());
  const l = await readLease(ns, lease);
  t.equal(l.spec?.holderIdentity, '', 'released for another replica');
  t.equal(l.spec?.leaseDurationSeconds, 1);
});
