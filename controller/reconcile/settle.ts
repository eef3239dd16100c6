/**
 * Settling an intent this process did not start (an earlier leader's, or an earlier run of
 * this one): it may still be in flight. The process that wrote it stopped calling BMCs at
 * its renew deadline (fencing), before this one could take the lease; but a request it had
 * already sent may land as late as its operation timeout allows. So the intent counts as in
 * flight (its machine PoweringOn or PoweringOff, within every budget) until the operation
 * timeout plus the settle grace has passed since this leader first saw it, measured on this
 * process's monotonic clock (never compared with another machine's clock), unless the BMC
 * shows the intended state first.
 *
 * Worst case, a leader change delays the decision for a machine whose intent never reached
 * its BMC by leaseDuration (the takeover) + operation timeout + settle grace: 15 + 300 + 15 s
 * with the defaults.
 */
export class ForeignIntents {
  /** Operation id → when this process first saw it (monotonic ms). */
  private readonly firstSeen = new Map<string, number>();

  constructor(
    private readonly monotonicNow: () => number,
    /** The operation timeout plus the settle grace. */
    private readonly windowMs: number,
  ) {}

  /** Until when (on the reconcile's `now` clock) the operation may still land. */
  mayLandUntil(opId: string, now: number): number {
    const mono = this.monotonicNow();
    let seen = this.firstSeen.get(opId);
    if (seen === undefined) this.firstSeen.set(opId, (seen = mono));
    return now + (seen + this.windowMs - mono);
  }

  get size(): number {
    return this.firstSeen.size;
  }

  /** Forgets operations no longer in any status. */
  retain(live: ReadonlySet<string>): void {
    for (const id of this.firstSeen.keys()) if (!live.has(id)) this.firstSeen.delete(id);
  }
}
