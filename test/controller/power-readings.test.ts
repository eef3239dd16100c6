import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import type { ParsedMachine } from '../../api/inventory.js';
import { PowerReader } from '../../controller/power-readings.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { BmcCredentials } from '../../power/credentials.js';
import type { PowerDriver } from '../../power/driver.js';
import { BmcPool } from '../../power/pool.js';
import type { PowerReadingResult } from '../../power/reading.js';

// The reader keeps its cadence between reconciles (one poll, then its own timer), reads a
// BMC without readings ten times less often, and says when a machine's draw changed.

function machine(name: string): ParsedMachine {
  return { name, bmc: { address: `redfish+http://127.0.0.1:1/redfish/v1/Systems/${name}`, parsedAddress: { driver: 'redfish' }, insecureSkipVerify: false, credentialsSecret: 's' } } as unknown as ParsedMachine;
}

t.test('cadence, no-reading backoff, changes', async (t) => {
  const reads = new Map<string, number>();
  let watts = 100;
  const answer = (name: string): PowerReadingResult => {
    reads.set(name, (reads.get(name) ?? 0) + 1);
    return name === 'dark' ? { kind: 'none', reason: 'no power resource' } : { kind: 'reading', watts, source: 'redfish-power', observedAt: new Date() };
  };
  const pool = new BmcPool({
    driverFactory: (spec) =>
      ({ kind: 'redfish', endpoint: spec.name, status: () => Promise.resolve('on'), powerOn: () => Promise.reject(new Error('no')), powerOff: () => Promise.reject(new Error('no')), close: () => Promise.resolve(), reading: () => Promise.resolve(answer(spec.name)) }) satisfies PowerDriver,
  });
  const changes: string[] = [];
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  const reader = new PowerReader({ pool, credentials: () => Promise.resolve(new BmcCredentials('u', 'p')), metrics, logger: pino({ enabled: false }), intervalMs: 100, onChange: (a) => changes.push(a) });
  t.teardown(() => reader.stop());
  const started = Date.now();
  reader.poll('rack', [machine('lit'), machine('dark')]);
  while ((reads.get('lit') ?? 0) < 3 && Date.now() - started < 5_000) await sleep(20);
  const elapsed = Date.now() - started;
  t.ok((reads.get('lit') ?? 0) >= 3, `read again without another poll (${reads.get('lit')} readings in ${elapsed} ms)`);
  if (elapsed < 900) t.equal(reads.get('dark'), 1, 'a BMC without readings is not asked again at once');
  t.same(changes, ['rack'], 'the first reading is a change; the same watts again are not');
  t.match(reader.latest('lit'), { kind: 'reading', watts: 100, source: 'redfish-power' });
  t.equal(reader.latest('dark'), undefined);
  watts = 140;
  while (reader.latest('lit')?.watts !== 140 && Date.now() - started < 5_000) await sleep(20);
  t.same(changes, ['rack', 'rack'], 'a new draw is a change');
  t.match(await metrics.registry.metrics(), /bamel_power_readings_total\{driver="redfish",result="none"\} 1/);
  reader.forgetAutoscaler('rack');
  const after = reads.get('lit');
  await sleep(300);
  t.equal(reads.get('lit'), after, 'no more readings once the autoscaler is forgotten');
  t.equal(reader.maxAgeMs, 3 * 100 + 30_000);
});
