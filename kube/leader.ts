import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { linkedAbort } from './abort.js';
import { sleep, systemClock, type Clock } from './clock.js';
import { apiExceptionMessage, apiStatusCode, errorMessage, isApiStatus } from './errors.js';
import { makeApiClient } from './client.js';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
 * (tools/leaderelection): client-node has none. Only the leader actuates (powers machines
 * on and off), so two leaders at once is the failure this module exists to prevent.
 *
 * Expiry is judged by when THIS process saw the lease record last change, never by the
 * renewTime written in it, so clocks that disagree between machines do not matter; only
 * their rates must roughly agree. The leader steps down once renewDeadline has passed
 * since it last sent a renewal that succeeded, which is before anyone else can consider
 * the lease expired (renewDeadline < leaseDuration, and others start counting no earlier
 * than that renewal reached the API server).
 */

export interface LeaderElectorOptions {
  /** A CoordinationV1Api, or a KubeConfig to make one from. */
  client: k8s.CoordinationV1Api | k8s.KubeConfig;
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** Unique per replica (pod name, plus a random suffix if pods can restart in place). */
  identity: string;
  /** How long others wait after the last change they saw before taking over. Default 15 s; whole seconds count. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before stepping down. Default 10 s. */
  renewDeadlineMs?: number;
  /** Interval between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  /** On stop, hand the lease back so the next replica need not wait for it to expire. Default true. */
  releaseOnCancel?: boolean;
  logger?: Logger;
  clock?: Clock;
  /**
   * Called once leadership is acquired. `signal` aborts the moment leadership ends
   * (before the lease is released or onStoppedLeading runs): stop actuating then. A throw
   * or rejection ends leadership, so that another replica takes over the work.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called after leadership ended (and the lease was released). Not called when never leading. */
  onStoppedLeading(): void;
  /** Called when the observed holder changes to a non-empty identity, ours included. */
  onNewLeader?(identity: string): void;
}

/** The reason on the signal given to onStartedLeading when leadership ends. */
export class LeadershipLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeadershipLostError';
  }
}

/** client-go's JitterFactor: acquire attempts are spread over [retry, retry * 2.2). */
const JITTER_FACTOR = 1.2;

type Attempt = 'ok' | 'held' | 'failed';

interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly identity: string;
  private readonly namespace: string;
  private readonly name: string;
  private readonly leaseSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnCancel: boolean;

  /** The lease as last read or written, for its resourceVersion. */
  private lease: k8s.V1Lease | undefined;
  private observed: LeaseRecord | undefined;
  private observedKey = '';
  /** When (on our clock) the lease record was last seen to change. */
  private observedAt = 0;
  /** When the last successful acquire or renew was sent. */
  private lastRenewSentAt = 0;
  private reportedLeader = '';

  private leading = false;
  private active = false;
  private stopController: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = opts.client instanceof k8s.KubeConfig ? makeApiClient(opts.client, k8s.CoordinationV1Api) : opts.client;
    this.clock = opts.clock ?? systemClock;
    this.identity = opts.identity;
    this.namespace = opts.namespace;
    this.name = opts.name;
    const leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.releaseOnCancel = opts.releaseOnCancel ?? true;
    // The lease stores whole seconds: judge the other bounds against what others will read.
    this.leaseSeconds = Math.floor(leaseDurationMs / 1000);
    if (!this.identity) throw new TypeError('leader election needs a non-empty identity');
    if (!this.name || !this.namespace) throw new TypeError('leader election needs the lease namespace and name');
    if (!(this.retryPeriodMs > 0)) throw new RangeError(`retryPeriodMs must be positive, got ${this.retryPeriodMs}`);
    if (!(this.renewDeadlineMs > JITTER_FACTOR * this.retryPeriodMs)) {
      throw new RangeError(`renewDeadlineMs (${this.renewDeadlineMs}) must exceed ${JITTER_FACTOR} × retryPeriodMs (${this.retryPeriodMs})`);
    }
    if (!(this.leaseSeconds * 1000 > this.renewDeadlineMs)) {
      throw new RangeError(`leaseDurationMs (${leaseDurationMs}, i.e. ${this.leaseSeconds} s in the lease) must exceed renewDeadlineMs (${this.renewDeadlineMs})`);
    }
    this.log = opts.logger?.child({ component: 'leader-election', lease: `${this.namespace}/${this.name}`, identity: this.identity });
  }

  /** True from acquiring the lease until leadership ends. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Fencing: true while this replica leads with more than `marginMs` left before its renew
   * deadline, on this process's monotonic clock, read now. A process paused past its lease
   * (GC, SIGSTOP, a stalled VM) reads false the moment it resumes, before its timers have
   * even run: check this immediately before any action only one replica may take.
   */
  holds(marginMs = 0): boolean {
    return this.leading && this.clock.now() + marginMs < this.lastRenewSentAt + this.renewDeadlineMs;
  }

  /** The holder of the lease as last observed; '' when none or not yet known. */
  leaderIdentity(): string {
    return this.observed?.holderIdentity ?? '';
  }

  /** Runs one election in the background: acquire, lead, and stop leading. */
  start(): void {
    if (this.running) return;
    const stop = new AbortController();
    this.stopController = stop;
    this.running = this.run(stop.signal).catch((err: unknown) => {
      this.log?.error({ err }, 'leader election crashed');
    });
  }

  /** Ends the election started by start(): stops leading (releasing the lease) or trying to. */
  async stop(): Promise<void> {
    this.stopController?.abort();
    await this.running;
    this.running = undefined;
    this.stopController = undefined;
  }

  /**
   * Tries to acquire the lease until `signal` aborts; once acquired, leads until the
   * lease is lost or `signal` aborts. Resolves when leadership has ended (or was never
   * gained). One term only: a replica that lost its lease should normally exit, and may
   * call run again to stand for election anew.
   */
  async run(signal?: AbortSignal): Promise<void> {
    if (this.active) throw new Error(`leader election for ${this.namespace}/${this.name} is already running`);
    this.active = true;
    try {
      if (await this.acquire(signal)) await this.lead(signal);
    } finally {
      this.active = false;
    }
  }

  private async acquire(signal: AbortSignal | undefined): Promise<boolean> {
    this.log?.info('trying to acquire the lease');
    while (!signal?.aborted) {
      const attempt = await this.withTimeout(signal, (s) => this.tryAcquireOrRenew(s));
      this.reportNewLeader();
      if (attempt === 'ok') {
        if (signal?.aborted) {
          // Won the race with our own cancellation: hand the lease straight back.
          if (this.releaseOnCancel) await this.release();
          return false;
        }
        this.log?.info('acquired the lease');
        return true;
      }
      await sleep(this.clock, this.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR), signal);
    }
    return false;
  }

  private async lead(signal: AbortSignal | undefined): Promise<void> {
    const leadership = new AbortController();
    let reason = '';
    const stepDown = (why: string): void => {
      if (leadership.signal.aborted) return;
      reason = why;
      this.leading = false;
      // First of all, so that whatever actuates on our behalf stops at once.
      leadership.abort(new LeadershipLostError(`${this.identity} is no longer the leader of ${this.namespace}/${this.name}: ${why}`));
    };
    const onStop = (): void => stepDown('stopped');

    this.leading = true;
    signal?.addEventListener('abort', onStop, { once: true });
    if (signal?.aborted) onStop();
    let deadline = this.armDeadline(stepDown);

    try {
      const started = this.opts.onStartedLeading(leadership.signal);
      if (started instanceof Promise) {
        started.catch((err: unknown) => {
          this.log?.error({ err }, 'onStartedLeading failed; giving up leadership');
          stepDown(`onStartedLeading failed: ${errorMessage(err)}`);
        });
      }
    } catch (err) {
      this.log?.error({ err }, 'onStartedLeading failed; giving up leadership');
      stepDown(`onStartedLeading failed: ${errorMessage(err)}`);
    }

    while (!leadership.signal.aborted) {
      await sleep(this.clock, this.retryPeriodMs, leadership.signal);
      if (leadership.signal.aborted) break;
      const attempt = await this.withTimeout(leadership.signal, (s) => this.tryAcquireOrRenew(s));
      this.reportNewLeader();
      if (leadership.signal.aborted) break;
      if (attempt === 'ok') {
        this.clock.clearTimeout(deadline);
        deadline = this.armDeadline(stepDown);
      } else if (attempt === 'held') {
        // Someone else holds an unexpired lease: waiting out the deadline would only
        // prolong the time two replicas believe they lead.
        stepDown(`the lease is held by ${this.leaderIdentity()}`);
      }
    }

    this.clock.clearTimeout(deadline);
    signal?.removeEventListener('abort', onStop);
    this.log?.info({ reason }, 'stopped leading');
    if (this.releaseOnCancel) await this.release();
    try {
      this.opts.onStoppedLeading();
    } catch (err) {
      this.log?.error({ err }, 'onStoppedLeading threw');
    }
  }

  /** Steps down once renewDeadline has passed since the last successful renewal was sent. */
  private armDeadline(stepDown: (why: string) => void) {
    const remaining = this.lastRenewSentAt + this.renewDeadlineMs - this.clock.now();
    return this.clock.setTimeout(() => {
      this.log?.warn({ renewDeadlineMs: this.renewDeadlineMs }, 'could not renew the lease in time');
      stepDown(`no successful renewal for ${this.renewDeadlineMs} ms`);
    }, remaining);
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const options = requestOptions(signal);
    const id = this.identity;

    // The leader's usual path: one write against the lease as it last saw it. A conflict
    // means the lease changed underneath; the read below sorts out what happened.
    if (this.leading && this.lease && this.observed?.holderIdentity === id && this.leaseValid()) {
      const sentAt = this.clock.now();
      try {
        const record: LeaseRecord = { ...this.observed, leaseDurationSeconds: this.leaseSeconds, renewTime: microTime(new k8s.V1MicroTime()) };
        const body = this.withRecord(this.lease, record);
        this.observe(await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body }, options));
        this.lastRenewSentAt = sentAt;
        return 'ok';
      } catch (err) {
        if (signal.aborted) return 'failed';
        this.log?.debug({ err: errorFields(err) }, 'optimistic renewal failed; reading the lease');
      }
    }

    let current: k8s.V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }, options);
    } catch (err) {
      if (!isApiStatus(err, 404)) {
        if (!signal.aborted) this.log?.warn({ err: errorFields(err) }, 'reading the lease failed');
        return 'failed';
      }
      return this.create(signal);
    }

    const record = recordOf(current);
    this.lease = current;
    const key = JSON.stringify(record);
    if (key !== this.observedKey) {
      this.observed = record;
      this.observedKey = key;
      this.observedAt = this.clock.now();
    }
    if (record.holderIdentity && record.holderIdentity !== id && this.leaseValid()) return 'held';

    const renewing = record.holderIdentity === id;
    const now = new k8s.V1MicroTime();
    const next: LeaseRecord = {
      holderIdentity: id,
      leaseDurationSeconds: this.leaseSeconds,
      acquireTime: renewing ? record.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: renewing ? record.leaseTransitions : record.leaseTransitions + 1,
    };
    const sentAt = this.clock.now();
    try {
      this.observe(await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: this.withRecord(current, next) }, options));
      this.lastRenewSentAt = sentAt;
      if (!renewing) this.log?.debug({ previous: record.holderIdentity, transitions: next.leaseTransitions }, 'took over the lease');
      return 'ok';
    } catch (err) {
      // 409: another candidate wrote first, with the resourceVersion we also read.
      if (!signal.aborted) this.log?.[isApiStatus(err, 409) ? 'debug' : 'warn']({ err: errorFields(err) }, 'updating the lease failed');
      return 'failed';
    }
  }

  private async create(signal: AbortSignal): Promise<Attempt> {
    const now = microTime(new k8s.V1MicroTime());
    const record: LeaseRecord = { holderIdentity: this.identity, leaseDurationSeconds: this.leaseSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 };
    const body: k8s.V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: specOf(record) };
    const sentAt = this.clock.now();
    try {
      this.observe(await this.api.createNamespacedLease({ namespace: this.namespace, body }, requestOptions(signal)));
      this.lastRenewSentAt = sentAt;
      return 'ok';
    } catch (err) {
      if (!signal.aborted) this.log?.[isApiStatus(err, 409) ? 'debug' : 'warn']({ err: errorFields(err) }, 'creating the lease failed');
      return 'failed';
    }
  }

  /** Hands the lease back: no holder, 1 s duration, so the next candidate takes it at once. */
  private async release(): Promise<void> {
    for (let attempt = 1; this.lease && this.observed?.holderIdentity === this.identity; attempt++) {
      const now = microTime(new k8s.V1MicroTime());
      const record: LeaseRecord = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: this.observed.leaseTransitions };
      const body = this.withRecord(this.lease, record);
      try {
        this.observe(
          await this.withTimeout(undefined, (signal) =>
            this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body }, requestOptions(signal)),
          ),
        );
        this.log?.info('released the lease');
        return;
      } catch (err) {
        // A renewal abandoned when leadership ended may have landed after all, so our
        // resourceVersion is stale: look again, and release if the lease is still ours.
        if (attempt === 1 && isApiStatus(err, 409)) {
          try {
            this.observe(await this.withTimeout(undefined, (signal) => this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }, requestOptions(signal))));
            continue;
          } catch {
            // reported below
          }
        }
        this.log?.warn({ err: errorFields(err) }, 'releasing the lease failed; others take over when it expires');
        return;
      }
    }
  }

  private observe(lease: k8s.V1Lease): void {
    this.lease = lease;
    const record = recordOf(lease);
    this.observed = record;
    this.observedKey = JSON.stringify(record);
    this.observedAt = this.clock.now();
  }

  private leaseValid(): boolean {
    return this.observedAt + (this.observed?.leaseDurationSeconds ?? 0) * 1000 > this.clock.now();
  }

  private withRecord(lease: k8s.V1Lease, record: LeaseRecord): k8s.V1Lease {
    // Keeps metadata (labels, annotations, resourceVersion for the conflict check) and any
    // spec fields we do not manage.
    return { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', spec: { ...lease.spec, ...specOf(record) } };
  }

  private reportNewLeader(): void {
    const holder = this.observed?.holderIdentity ?? '';
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (!holder) return;
    this.log?.info({ leader: holder }, 'new leader observed');
    try {
      this.opts.onNewLeader?.(holder);
    } catch (err) {
      this.log?.error({ err }, 'onNewLeader threw');
    }
  }

  /** Bounds one API exchange by renewDeadline (and `parent`), on this elector's clock. */
  private async withTimeout<T>(parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const scope = linkedAbort(parent);
    const timer = this.clock.setTimeout(
      () => scope.controller.abort(new Error(`lease request took longer than ${this.renewDeadlineMs} ms`)),
      this.renewDeadlineMs,
    );
    try {
      return await fn(scope.signal);
    } finally {
      this.clock.clearTimeout(timer);
      scope.dispose();
    }
  }
}

/**
 * MicroTime on the wire must have exactly six fractional digits: the API server parses it
 * with Go's "2006-01-02T15:04:05.000000Z07:00" and refuses a plain Date's ".123Z" (400
 * BadRequest). client-node's V1MicroTime pads toISOString() to microseconds; reading, it
 * hands back the server's string, not a Date, whatever the type says.
 */
function microTime(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? v : '';
}

function toMicroTime(s: string): k8s.V1MicroTime | undefined {
  if (!s) return undefined;
  // Strings read from the server are already in wire format; a Date would lose the
  // microseconds, so send them back as they came.
  return s as unknown as k8s.V1MicroTime;
}

function recordOf(lease: k8s.V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: microTime(spec.acquireTime),
    renewTime: microTime(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

function specOf(record: LeaseRecord): k8s.V1LeaseSpec {
  const acquireTime = toMicroTime(record.acquireTime);
  const renewTime = toMicroTime(record.renewTime);
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    ...(acquireTime ? { acquireTime } : {}),
    ...(renewTime ? { renewTime } : {}),
  };
}

/** Per-request options carrying an abort signal (the generated clients take no signal otherwise). */
function requestOptions(signal: AbortSignal): ReturnType<typeof k8s.setHeaderOptions> {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal);
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (res) => new k8s.Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}


/** A loggable summary with the HTTP code apart, for structured logs. */
function errorFields(err: unknown): { message: string; code?: number } {
  const code = apiStatusCode(err);
  if (err instanceof k8s.ApiException) return { code: err.code, message: apiExceptionMessage(err) };
  return { ...(code !== undefined ? { code } : {}), message: errorMessage(err) };
}

