import t from 'tap';
import { requeueAfter } from '../../../controller/reconcile/requeue.js';
import { T0 } from './fixtures.js';

t.test('the earliest wake-up wins; the resync interval when nothing waits on time', async (t) => {
  t.equal(requeueAfter([], T0, 30_000), 30_000);
  t.equal(requeueAfter([T0 + 10_000, T0 + 1000, T0 + 5000], T0, 30_000), 1000);
  t.equal(requeueAfter([T0 + 60_000], T0, 30_000), 30_000, 'never later than the resync');
  t.equal(requeueAfter([T0], T0, 30_000), 0, 'due now');
  t.equal(requeueAfter([T0 - 5000, T0 + 1000], T0, 30_000), 0, 'overdue: at once, never negative');
});
