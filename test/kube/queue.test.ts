import t from 'tap';
import { ManualClock } from '../../kube/clock.js';
import { WorkQueue, type QueueWorker } from '../../kube/queue.js';
import { ExponentialBackoffPerKey, TokenBucket } from '../../kube/rate-limit.js';

// Every test runs on a ManualClock: time moves only through clock.advance, so nothing
// here depends on how fast a busy machine schedules timers.

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A worker that records what it processed and when, and can be told to hold a key. */
function recorder(clock: ManualClock) {
  const seen: { key: string; at: number }[] = [];
  const holds = new Map<string, Deferred>();
  const active = new Map<string, number>();
  let maxActivePerKey = 0;
  const worker: QueueWorker = async (key) => {
    seen.push({ key, at: clock.now() });
    const n = (active.get(key) ?? 0) + 1;
    active.set(key, n);
    maxActivePerKey = Math.max(maxActivePerKey, n);
    try {
      await holds.get(key)?.promise;
    } finally {
      active.set(key, (active.get(key) ?? 1) - 1);
    }
  };
  return {
    worker,
    seen,
    keys: () => seen.map((s) => s.key),
    hold(key: string): Deferred {
      const d = deferred();
      holds.set(key, d);
      return d;
    },
    release(key: string): void {
      holds.get(key)?.resolve();
      holds.delete(key);
    },
    maxActivePerKey: () => maxActivePerKey,
  };
}

t.test('a key queued twice is processed once', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  q.add('a');
  q.add('b');
  q.add('a');
  t.equal(q.len(), 2);
  const done = q.run(r.worker, 2);
  await clock.advance(0);
  t.same(r.keys().sort(), ['a', 'b']);
  t.equal(q.stats().adds, 3);
  t.equal(q.stats().processed, 2);
  await q.shutDown();
  await done;
});

t.test('keys are processed in the order they were queued', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  for (const k of ['c', 'a', 'b', 'a']) q.add(k);
  const done = q.run(r.worker, 1);
  await clock.advance(0);
  t.same(r.keys(), ['c', 'a', 'b']);
  await q.shutDown();
  await done;
});

t.test('a key is never processed concurrently, and one added during processing runs again right after', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  const held = r.hold('a');
  const done = q.run(r.worker, 4);
  q.add('a');
  await clock.advance(0);
  t.same(r.keys(), ['a'], 'the first run is in progress');
  // Three adds during processing: one more run, not three, and not while the first runs.
  q.add('a');
  q.add('a');
  q.add('b');
  q.add('a');
  await clock.advance(0);
  t.same(r.keys(), ['a', 'b'], 'b is not blocked by a; a waits for its own worker');
  t.equal(q.stats().processing, 1);
  held.resolve();
  await clock.advance(0);
  t.same(r.keys(), ['a', 'b', 'a'], 'a runs exactly once more');
  t.equal(r.maxActivePerKey(), 1);
  await q.shutDown();
  await done;
});

t.test('addAfter: the key appears after the delay, and the earliest request wins', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  const done = q.run(r.worker, 1);

  q.addAfter('a', 1000);
  q.addAfter('a', 300);
  q.addAfter('a', 5000);
  await clock.advance(299);
  t.same(r.keys(), [], 'nothing before the earliest time');
  await clock.advance(1);
  t.same(r.seen, [{ key: 'a', at: 300 }]);
  await clock.advance(10_000);
  t.equal(r.seen.length, 1, 'the later requests were folded into the earlier one');

  q.addAfter('b', 0);
  await clock.advance(0);
  t.same(r.keys(), ['a', 'b'], 'a zero delay queues at once');
  t.equal(clock.pending(), 0, 'no timer is left behind');
  await q.shutDown();
  await done;
});

t.test('addAfter for several keys releases them in time order', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  q.addAfter('late', 500);
  q.addAfter('early', 100);
  q.addAfter('middle', 200);
  await clock.advance(1000);
  t.equal(q.stats().delayed, 0);
  const done = q.run(r.worker, 1);
  await clock.advance(0);
  t.same(r.keys(), ['early', 'middle', 'late']);
  await q.shutDown();
  await done;
});

t.test('addRateLimited backs off per key, exponentially, until forget', async (t) => {
  const clock = new ManualClock();
  const delays: number[] = [];
  const q = new WorkQueue({ clock, baseDelayMs: 50, maxDelayMs: 1000, metrics: { retry: (_k, ms) => delays.push(ms) } });
  for (let i = 0; i < 8; i++) q.addRateLimited('a');
  t.same(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
  t.equal(q.retries('a'), 8);
  q.addRateLimited('b');
  t.equal(delays.at(-1), 50, 'another key has its own backoff');
  q.forget('a');
  t.equal(q.retries('a'), 0);
  q.addRateLimited('a');
  t.equal(delays.at(-1), 50, 'forget resets the backoff');
  await q.shutDown();
});

t.test('the overall token bucket spreads out retries across keys', async (t) => {
  const clock = new ManualClock();
  const delays = new Map<string, number>();
  const q = new WorkQueue({ clock, baseDelayMs: 50, ratePerSecond: 2, burst: 3, metrics: { retry: (k, ms) => delays.set(k, ms) } });
  for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) q.addRateLimited(k);
  t.equal(delays.get('k1'), 50, 'within the burst: only the per-key delay');
  t.equal(delays.get('k3'), 50);
  t.equal(delays.get('k4'), 500, 'the 4th token comes half a second later at 2/s');
  t.equal(delays.get('k5'), 1000);
  await clock.advance(10_000);
  q.addRateLimited('k6');
  t.equal(delays.get('k6'), 50, 'the bucket refills over time');
  await q.shutDown();
});

t.test('a worker that rejects gets its key retried with backoff; success resets it', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 10_000 });
  const attempts: number[] = [];
  let failUntil = 3;
  const done = q.run(async (key) => {
    t.equal(key, 'a');
    attempts.push(clock.now());
    if (attempts.length <= failUntil) throw new Error(`attempt ${attempts.length} fails`);
  }, 1);
  q.add('a');
  await clock.advance(10_000);
  t.same(attempts, [0, 100, 300, 700], 'retries after 100, 200, 400 ms');
  t.equal(q.retries('a'), 0, 'the success forgot the failures');
  t.equal(q.stats().failures, 3);

  failUntil = attempts.length + 1;
  q.add('a');
  await clock.advance(10_000);
  t.same(attempts.slice(4), [10_000, 10_100], 'after a success the backoff starts again at the base');
  await q.shutDown();
  await done;
});

t.test('a worker that requeues its own key with backoff keeps that backoff on success', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock, baseDelayMs: 100 });
  const attempts: number[] = [];
  const done = q.run(async (key) => {
    attempts.push(clock.now());
    if (attempts.length < 3) q.addRateLimited(key);
  }, 1);
  q.add('a');
  await clock.advance(5000);
  t.same(attempts, [0, 100, 300], 'the second retry waited 200 ms: the first success did not reset the backoff');
  t.equal(q.retries('a'), 0, 'the last run, which did not requeue, reset it');
  await q.shutDown();
  await done;
});

t.test('shutDown drains: queued keys are processed, new and scheduled ones are not', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const r = recorder(clock);
  const held = r.hold('a');
  const done = q.run(r.worker, 1);
  q.add('a');
  q.add('b');
  q.addAfter('c', 100);
  await clock.advance(0);
  let stopped = false;
  const shut = q.shutDown().then(() => {
    stopped = true;
  });
  q.add('d');
  t.ok(q.isShuttingDown());
  await clock.advance(1000);
  t.notOk(stopped, 'waits for the in-flight key');
  t.same(r.keys(), ['a']);
  held.resolve();
  await shut;
  await done;
  t.same(r.keys(), ['a', 'b'], 'b was drained; c (scheduled) and d (added after shutDown) were not');
  t.equal(clock.pending(), 0);
});

t.test('shutDown without drain aborts in-flight workers and drops queued keys', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const seen: string[] = [];
  let aborted = false;
  const done = q.run(async (key, signal) => {
    seen.push(key);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    aborted = signal.aborted;
  }, 1);
  q.add('a');
  q.add('b');
  await clock.advance(0);
  await q.shutDown({ drain: false });
  await done;
  t.ok(aborted, 'the worker saw its signal abort');
  t.same(seen, ['a'], 'b was dropped');
});

t.test('run refuses a second start and bad concurrency', async (t) => {
  const q = new WorkQueue({ clock: new ManualClock() });
  t.throws(() => q.run(async () => undefined, 0), RangeError);
  const done = q.run(async () => undefined, 1);
  t.throws(() => q.run(async () => undefined, 1), /already running/);
  await q.shutDown();
  await done;
});

t.test('metrics hooks see depth, adds and latency', async (t) => {
  const clock = new ManualClock();
  const depths: number[] = [];
  const latencies: [string, number][] = [];
  const durations: [string, number, boolean][] = [];
  let adds = 0;
  const q = new WorkQueue({
    clock,
    metrics: {
      depth: (d) => depths.push(d),
      add: () => adds++,
      latency: (k, ms) => latencies.push([k, ms]),
      workDuration: (k, ms, failed) => durations.push([k, ms, failed]),
    },
  });
  q.add('a');
  q.add('b');
  q.add('a');
  t.same(depths, [1, 2]);
  t.equal(adds, 3);
  await clock.advance(250);
  const done = q.run(async (key) => {
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 40));
    if (key === 'b') throw new Error('b fails');
  }, 1);
  await clock.advance(100);
  t.same(latencies, [
    ['a', 250],
    ['b', 290],
  ]);
  t.same(durations, [
    ['a', 40, false],
    ['b', 40, true],
  ]);
  t.same(depths, [1, 2, 1, 0]);
  await q.shutDown();
  await done;
});

t.test('rate limiters on their own', async (t) => {
  t.test('ExponentialBackoffPerKey', async (t) => {
    const b = new ExponentialBackoffPerKey(10, 75);
    t.same([b.when('x'), b.when('x'), b.when('x'), b.when('x')], [10, 20, 40, 75]);
    for (let i = 0; i < 2000; i++) b.when('x');
    t.equal(b.when('x'), 75, 'no overflow after many failures');
    t.throws(() => new ExponentialBackoffPerKey(0, 10), RangeError);
    t.throws(() => new ExponentialBackoffPerKey(10, 5), RangeError);
  });
  t.test('TokenBucket', async (t) => {
    const clock = new ManualClock();
    const b = new TokenBucket(4, 2, clock);
    t.same([b.reserve(), b.reserve(), b.reserve(), b.reserve()], [0, 0, 250, 500]);
    await clock.advance(1000);
    t.equal(b.reserve(), 0, 'debt repaid and a token earned after a second');
    t.throws(() => new TokenBucket(0, 1, clock), RangeError);
  });
});
