import t from 'tap';
import { judge, LevelSeries } from '../../controller/pressure.js';

t.test('the rate is the least-squares slope over the window', async (t) => {
  const s = new LevelSeries(300_000);
  for (let i = 0; i <= 10; i++) s.add(i * 30_000, 0.2 + 0.01 * i); // +0.01 per 30 s = 0.02/min
  t.equal(Math.round(s.ratePerMinute() * 10000) / 10000, 0.02);
  const noisy = new LevelSeries(300_000);
  for (let i = 0; i <= 10; i++) noisy.add(i * 30_000, 0.5 + (i % 2 === 0 ? 0.05 : -0.05));
  t.ok(Math.abs(noisy.ratePerMinute()) < 0.01, 'alternating noise gives no trend');
  const fresh = new LevelSeries(300_000);
  fresh.add(0, 0.1);
  fresh.add(10_000, 0.9);
  t.equal(fresh.ratePerMinute(), 0, 'two samples are not a trend');
});

t.test('samples older than the window are dropped', async (t) => {
  const s = new LevelSeries(60_000);
  for (let i = 0; i < 20; i++) s.add(i * 10_000, i < 10 ? 0.9 : 0.1);
  t.equal(s.ratePerMinute(), 0, 'flat within the last minute');
  t.ok(s.size <= 7);
});

t.test('judging a category', async (t) => {
  const th = { level: 0.85, ratePerMinute: 0.1 };
  t.equal(judge('cpu', 0.5, 0, th).pressured, false);
  t.match(judge('cpu', 0.9, 0, th).reason, /cpu level 90% at or above 85%/);
  t.match(judge('memory', 0.5, 0.2, th).reason, /rising 20%\/min/);
  t.equal(judge('memory', 0.5, 0.2, { level: 0.85, ratePerMinute: 0 }).pressured, false, 'rate 0 disables the rate signal');
  t.equal(judge('memory', 0.1, 0, th, 'node a reports MemoryPressure').reason, 'node a reports MemoryPressure');
  t.equal(judge('cpu', 1, 0, { level: 1, ratePerMinute: 0 }).pressured, false, 'level 1 turns the level signal off, even when full');
});
