import t from 'tap';
import { REALISTIC, sizeReport, weekOldFleet, WEEK_NOW } from '../../../bench/helpers/fleet-status.js';
import { unpackLearned } from '../../../controller/reconcile/learned-codec.js';
import { compactStatus } from '../../../controller/reconcile/status-compact.js';
import { fitStatus, SAFE_STATUS_BYTES } from '../../../controller/reconcile/status-guard.js';

// The status of 10,000 machines after a week (bench/helpers/fleet-status.ts, built by the
// controller's own steps) must stay well under etcd's 1.5 MiB: at most 1.0 MiB as the
// status writer sends it, with nothing trimmed and nothing learned lost.
const LIMIT = 1024 * 1024;

t.test('the realistic 10,000-machine status is at most 1.0 MiB, whole', async (t) => {
  const fleet = weekOldFleet(10_000, REALISTIC);
  const built = fleet.status.machines ?? [];
  t.equal(built.length, 10_000);
  t.ok(built.every((m) => m.boot !== undefined && m.boot.samples > 0), 'every machine has learned boot times');
  t.ok(built.filter((m) => m.blockers).length >= 300, 'a few hundred Ready machines with blockers');
  t.ok(built.filter((m) => m.phase === 'Failed' && m.message).length >= 100, 'Failed machines with messages');
  t.ok(built.filter((m) => m.operation).length >= 100, 'operations in flight');

  const sent = fitStatus(compactStatus(fleet.status, WEEK_NOW), { limitBytes: SAFE_STATUS_BYTES, generation: 3, now: WEEK_NOW });
  const bytes = Buffer.byteLength(sent.text);
  t.same(sent.trimmed, [], 'nothing trimmed by the guard');
  t.ok(bytes <= LIMIT, `${bytes} bytes (${(bytes / LIMIT).toFixed(3)} MiB) ≤ 1.0 MiB; by field: ${JSON.stringify(sizeReport(sent.status).fields.slice(0, 5))}`);

  const back = unpackLearned(JSON.parse(sent.text) as typeof sent.status).machines ?? [];
  t.equal(back.length, built.length);
  let lost = 0;
  for (const [i, m] of built.entries()) {
    const r = back[i];
    const ring = (b: typeof m.boot) => b && [b.lastSeconds, b.p90Seconds, b.samples, b.recentSeconds];
    if (r?.name !== m.name || JSON.stringify(ring(r.boot)) !== JSON.stringify(ring(m.boot))) lost++;
    else if (JSON.stringify(r.powerCycles) !== JSON.stringify(m.powerCycles)) lost++;
    else if (m.breakEven && m.breakEven.holdSeconds > 0 && JSON.stringify(r.breakEven) !== JSON.stringify(m.breakEven)) lost++;
    else if ((r.operation?.id ?? '') !== (m.operation?.id ?? '') || (r.unneededSince === undefined) !== (m.unneededSince === undefined)) lost++;
  }
  t.equal(lost, 0, 'boot times, power-offs, holds, intents and unneededSince read back as learned');
});
