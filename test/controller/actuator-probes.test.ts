import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import type { ParsedMachine } from '../../api/inventory.js';
import { Actuator } from '../../controller/actuator.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { BmcCredentials } from '../../power/credentials.js';
import type { PowerDriver } from '../../power/driver.js';
import { BmcPool } from '../../power/pool.js';
import { CredentialsCache } from '../../power/secrets.js';

// A fleet's first reconcile asks for the power state of every machine: the reads run a few
// at a time, the rest wait their turn, and every one of them is read in the end.

function machine(name: string): ParsedMachine {
  return { name, bmc: { address: `redfish+http://127.0.0.1:1/redfish/v1/Systems/${name}`, parsedAddress: { driver: 'redfish' }, insecureSkipVerify: false, credentialsSecret: 's' } } as unknown as ParsedMachine;
}

t.test('power-state reads: at most maxConcurrentProbes at once, the others queued, all read', async (t) => {
  let running = 0;
  let most = 0;
  const pool = new BmcPool({
    driverFactory: (spec) =>
      ({
        kind: 'redfish',
        endpoint: spec.name,
        status: async () => {
          running++;
          most = Math.max(most, running);
          await sleep(5);
          running--;
          return 'off';
        },
        powerOn: () => Promise.reject(new Error('no')),
        powerOff: () => Promise.reject(new Error('no')),
        close: () => Promise.resolve(),
      }) satisfies PowerDriver,
  });
  const done: string[] = [];
  const actuator = new Actuator({
    pool,
    credentials: () => Promise.resolve(new BmcCredentials('u', 'p')),
    metrics: new ControllerMetrics(new Registry(), { defaultMetrics: false }),
    logger: pino({ enabled: false }),
    gracefulTimeoutMs: 1000,
    maxConcurrentProbes: 4,
    onDone: (a) => done.push(a),
  });
  const machines = Array.from({ length: 30 }, (_, i) => machine(`m${i}`));
  t.ok(
    machines.every((m) => actuator.probe('fleet', m)),
    'every read is accepted (started or queued)',
  );
  t.notOk(actuator.probe('fleet', machines[7]!), 'a machine queued is not queued twice');
  const started = Date.now();
  while (done.length < 30 && Date.now() - started < 5_000) await sleep(10);
  t.equal(done.length, 30, 'each read reconciles its autoscaler when it ends');
  t.equal(most, 4, 'never more than 4 at once');
  t.ok(
    machines.every((m) => actuator.power(m.name)?.state === 'off'),
    'every machine was read',
  );
});

t.test('credentials are read once per version of their Secret', async (t) => {
  let reads = 0;
  let version: string | undefined = '1';
  let fail = false;
  const cache = new CredentialsCache(
    () => {
      reads++;
      return fail ? Promise.reject(new Error('forbidden')) : Promise.resolve(new BmcCredentials('u', `p${reads}`));
    },
    () => version,
  );
  const a = await cache.get('ns', 'bmc', 'm1');
  const b = await cache.get('ns', 'bmc', 'm2');
  t.equal(a, b, 'the same Secret version: read once');
  t.equal(reads, 1);
  await cache.get('other', 'bmc', 'm3');
  t.equal(reads, 2, 'another namespace is another Secret');
  version = '2';
  await cache.get('ns', 'bmc', 'm1');
  t.equal(reads, 3, 'a changed Secret is read again');
  version = undefined;
  await cache.get('ns', 'bmc', 'm1');
  await cache.get('ns', 'bmc', 'm1');
  t.equal(reads, 5, 'no known version: read every time');
  version = '3';
  fail = true;
  await t.rejects(cache.get('ns', 'bmc', 'm1'));
  fail = false;
  await cache.get('ns', 'bmc', 'm1');
  t.equal(reads, 7, 'a failed read is not kept');
});
