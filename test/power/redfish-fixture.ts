/**
 * What the RedfishDriver tests share: a Redfish fake with one system and drivers for it,
 * the fast timings, and the record of every error seen (none may show the password). The
 * tests are split by topic (redfish.test.ts: operations, errors, TLS; redfish-quirks.test.ts:
 * vendor quirk profiles); each file runs in its own process, with its own record.
 */
import { createServer } from 'node:net';
import { BmcError } from '../../power/errors.js';
import { RedfishFakeServer, type AddSystemOptions, type FakeRequestRecord } from '../../sim/redfish-fake.js';
import type { SimPowerEvent } from '../../sim/types.js';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { RedfishDriver, type RedfishDriverOptions } from '../../power/redfish.js';

export const PASSWORD = 'Pa55-w0rd-never-shown';
export const SESSIONS = '/redfish/v1/SessionService/Sessions';
export const FAST = {
  pollIntervalMs: 20,
  maxPollIntervalMs: 100,
  gracefulTimeoutMs: 2_000,
  transientRetry: { attempts: 4, delayMs: 50 },
  timeouts: { connectMs: 1_000, requestMs: 2_000, operationMs: 10_000 },
};

/** Every BmcError the tests of this process saw: none may show the password. */
export const seenErrors: unknown[] = [];

export interface Setup {
  server: RedfishFakeServer;
  bmc: ReturnType<RedfishFakeServer['addSystem']>;
  driver: RedfishDriver;
  requests: FakeRequestRecord[];
  events: SimPowerEvent[];
  resets: () => FakeRequestRecord[];
  logins: () => FakeRequestRecord[];
  makeDriver: (opts?: Partial<RedfishDriverOptions>) => RedfishDriver;
}

export async function setup(tt: { teardown(fn: () => unknown): void }, system: Partial<AddSystemOptions> = {}, driverOpts: Partial<RedfishDriverOptions> & { address?: string } = {}): Promise<Setup> {
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0 });
  await server.start();
  const bmc = server.addSystem({ id: '1', machine: 'rack-a-01', credentials: { username: 'admin', password: PASSWORD }, ...system });
  const requests: FakeRequestRecord[] = [];
  server.onRequest((r) => requests.push(r));
  // Requests only: a change that lands later has its own "completed" event.
  const events: SimPowerEvent[] = [];
  bmc.onPower((e) => {
    if (!(e.detail ?? '').startsWith('completed')) events.push(e);
  });
  const drivers: RedfishDriver[] = [];
  const { address, ...rest } = driverOpts;
  const makeDriver = (opts: Partial<RedfishDriverOptions> = {}) => {
    const d = new RedfishDriver({
      address: parseBmcAddress(address ?? server.url.replace(/^http/, 'redfish+http')),
      credentials: new BmcCredentials('admin', PASSWORD),
      ...FAST,
      ...rest,
      ...opts,
    });
    drivers.push(d);
    return d;
  };
  const driver = makeDriver();
  tt.teardown(async () => {
    for (const d of drivers) await d.close();
    await server.stop();
  });
  return {
    server,
    bmc,
    driver,
    requests,
    events,
    makeDriver,
    resets: () => requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Actions/ComputerSystem.Reset')),
    logins: () => requests.filter((r) => r.method === 'POST' && r.path === SESSIONS),
  };
}

export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    seenErrors.push(err);
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

export async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** Every error in seenErrors, as text with its JSON form and stack, for a search for the password. */
export function seenErrorTexts(): { text: string; message: string }[] {
  return seenErrors.map((err) => ({
    text: `${String(err)} ${err instanceof BmcError ? JSON.stringify(err) : ''} ${err instanceof Error ? (err.stack ?? '') : ''}`,
    message: (err as Error).message,
  }));
}
