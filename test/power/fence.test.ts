import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { IpmiDriver } from '../../power/ipmi/driver.js';
import { freeUdpPort, IpmiSimBmc } from '../../sim/ipmi-sim.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { setup } from './fixtures/redfish.js';

// Fencing at the driver: OperationOptions.fence is called immediately before each request
// that changes the power, and a throw there means no such request reaches the BMC. Reads
// (the power state) are not fenced; the leader's signal aborts them.

class Fenced extends Error {}

const IPMI_PASSWORD = 'fence-pw-1234';

t.test('Redfish: a fence that refuses stops the reset before it is sent', async (t) => {
  const s = await setup(t, { initialPower: 'off' });
  let checks = 0;
  const err = await s.driver.powerOn({ fence: () => {
    checks++;
    throw new Fenced('not the leader');
  } }).catch((e: unknown) => e);
  t.type(err, Fenced, 'the fence error is what the caller sees');
  t.equal(checks, 1, 'checked once, right before the reset');
  t.same(s.resets(), [], 'no ComputerSystem.Reset reached the BMC');
  t.equal(s.bmc.power, 'off');
  t.ok(s.requests.some((r) => r.method === 'GET'), 'the state was read before the fence was asked');
});

t.test('Redfish: a fence that allows lets the power-on through, checked before each reset', async (t) => {
  const s = await setup(t, { initialPower: 'off' });
  let checks = 0;
  const r = await s.driver.powerOn({ fence: () => void checks++ });
  t.equal(r.state, 'on');
  t.equal(checks, s.resets().length, 'one check per reset sent');
  t.ok(checks >= 1);
});

t.test('Redfish: the fence is asked again before the forced power-off after a graceful one', async (t) => {
  const s = await setup(t, { initialPower: 'on', gracefulShutdownMs: 60_000 }, { gracefulTimeoutMs: 200 });
  let checks = 0;
  const err = await s.driver.powerOff({ gracefulTimeoutMs: 200, fence: () => {
    checks++;
    if (checks > 1) throw new Fenced('lease lost during the graceful shutdown');
  } }).catch((e: unknown) => e);
  t.type(err, Fenced);
  t.equal(checks, 2);
  t.equal(s.resets().length, 1, 'the graceful shutdown went out, the forced one did not');
  t.equal(s.bmc.power, 'on');
});

t.test('IPMI: a fence that refuses stops "chassis power on" before ipmitool runs it', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'bamel-fence-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const port = await freeUdpPort();
  const sim = await IpmiSimBmc.start({ machine: 'm-fence', host: '127.0.0.1', port, credentials: { username: 'admin', password: IPMI_PASSWORD }, workDir: scratch });
  t.teardown(() => sim.stop());
  const events: SimPowerEvent[] = [];
  sim.onPower((e) => events.push(e));
  const driver = new IpmiDriver({
    address: parseBmcAddress(`ipmi://127.0.0.1:${port}`),
    credentials: new BmcCredentials('admin', IPMI_PASSWORD),
    minGapMs: 50,
    pollIntervalMs: 50,
    retries: { attempts: 3, delayMs: 50 },
    timeouts: { requestMs: 2_000, operationMs: 10_000 },
  });
  t.teardown(() => driver.close());
  let checks = 0;
  const err = await driver.powerOn({ fence: () => {
    checks++;
    throw new Fenced('not the leader');
  } }).catch((e: unknown) => e);
  t.type(err, Fenced);
  t.equal(checks, 1);
  t.same(events, [], 'no power request reached the BMC');
  t.equal(sim.power, 'off');
  const ok = await driver.powerOn({ fence: () => undefined });
  t.equal(ok.state, 'on', 'with the lease held, the same call powers it on');
  t.equal(events.filter((e) => e.action === 'on').length, 1);
});

