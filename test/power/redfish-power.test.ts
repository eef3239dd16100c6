import t from 'tap';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcProtocolError } from '../../power/errors.js';
import { BmcPool } from '../../power/pool.js';
import { setup } from './fixtures/redfish.js';

// The RedfishDriver's power reading against the project's Redfish fake: each source the
// fake can serve, a BMC with none, a bad one, the draw following the machine's state, and
// the pool keeping readings out of the way of power operations.

const DRAW = { idleWatts: 110, maxWatts: 310 };

t.test('each source, chosen in order, and the draw by state', async (t) => {
  const cases = [
    { profile: [], source: 'redfish-powersubsystem' },
    { profile: ['power-environmentmetrics-only' as const], source: 'redfish-environmentmetrics' },
    { profile: ['power-deprecated-only' as const], source: 'redfish-power' },
  ];
  for (const c of cases) {
    const s = await setup(t, { profile: c.profile, draw: DRAW, initialPower: 'on' });
    t.match(await s.driver.reading(), { kind: 'reading', watts: 110, source: c.source }, `${c.source}: idle`);
    s.bmc.setActivity({ load: 0.5 });
    t.match(await s.driver.reading(), { kind: 'reading', watts: 210, source: c.source }, `${c.source}: half loaded`);
    s.bmc.setActivity({ booting: true });
    t.match(await s.driver.reading(), { kind: 'reading', watts: 310 }, `${c.source}: booting`);
    await s.bmc.setPowerDirect('off');
    t.match(await s.driver.reading(), { kind: 'reading', watts: 0 }, `${c.source}: off`);
    t.notOk(
      s.requests.some((r) => r.status === 404),
      'only linked resources are asked for',
    );
  }
});

t.test('a BMC without a power reading, and one with a bad one', async (t) => {
  const none = await setup(t, { profile: 'no-power-reading', draw: DRAW, initialPower: 'on' });
  const r = await none.driver.reading();
  t.match(r, { kind: 'none', reason: /the chassis \/redfish\/v1\/Chassis\/1 offers no power reading \(no PowerSubsystem; no EnvironmentMetrics; no Power\)/ });
  const bad = await setup(t, { profile: 'bad-power-reading', draw: DRAW, initialPower: 'on' });
  const err = await bad.driver.reading().catch((e: unknown) => e);
  t.type(err, BmcProtocolError);
  t.match((err as Error).message, /^reading the power draw on redfish\+http:\/\/127\.0\.0\.1:\d+: GET \/redfish\/v1\/Chassis\/1\/EnvironmentMetrics: PowerWatts\.Reading is "n\/a", not a number of watts/);
});

t.test('the pool: a reading waits for no power operation and holds none up', async (t) => {
  const s = await setup(t, { draw: DRAW, initialPower: 'off', poweringOnMs: 300, profile: 'transitional' });
  const pool = new BmcPool({ timeouts: { requestMs: 2_000, operationMs: 10_000 } });
  t.teardown(() => pool.close());
  const spec = { name: 'rack-a-01', address: s.server.addressOf('1') };
  const creds = new BmcCredentials('admin', 'Pa55-w0rd-never-shown');
  t.match(await pool.reading(spec, creds, 5_000), { kind: 'reading', watts: 0, source: 'redfish-powersubsystem' });
  // While a power-on holds the BMC, a reading is skipped at once.
  const on = pool.driver(spec, creds).powerOn();
  t.match(await pool.reading(spec, creds, 5_000), { kind: 'skipped', reason: /a power operation holds the BMC/ });
  await on;
  // A reading in flight is dropped when a power operation arrives.
  await s.bmc.setFaults({ slowMs: 400 });
  const reading = pool.reading(spec, creds, 5_000);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  const status = pool.driver(spec, creds).status();
  t.match(await reading, { kind: 'skipped', reason: /a power operation was asked/ });
  t.equal(await status, 'on');
  t.ok(Date.now() - started < 1_500, 'the power operation did not wait for the whole reading');
  await s.bmc.setFaults({});
  // Readings that fail do not open the breaker: the BMC still powers its machine.
  await s.bmc.setFaults({ hang: true });
  for (let i = 0; i < 4; i++) await pool.reading(spec, creds, 200).catch(() => undefined);
  t.equal(pool.health('rack-a-01')?.degraded, false);
});
