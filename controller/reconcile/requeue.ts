/**
 * Requeue: when to look at an autoscaler again. Every step returns the moments it waits
 * for (a join deadline, a quarantine, a cooldown with pods waiting, an intent to settle, the
 * next permitted BMC probe, a drain's next round); the earliest wins, and the resync
 * interval is the safety net when nothing waits on time.
 */
export function requeueAfter(wakeAts: readonly number[], now: number, resyncMs: number): number {
  const wake = Math.min(now + resyncMs, ...wakeAts);
  return Math.max(0, wake - now);
}
