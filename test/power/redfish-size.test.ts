import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { brotliCompressSync, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { parseBmcAddress } from '../../power/address.js';
import { BmcCredentials } from '../../power/credentials.js';
import { BmcProtocolError, BmcResponseTooLargeError, type BmcError } from '../../power/errors.js';
import { RedfishDriver } from '../../power/redfish.js';
import { MAX_BODY_BYTES } from '../../power/redfish/transport.js';

/**
 * The size limit of Redfish answers: a BMC (or something pretending to be one) answering
 * with a decompression bomb gets a typed error naming the endpoint and the limit, and the
 * manager's memory stays bounded. Against a small local server that answers every request
 * with the body under test.
 */

const PASSWORD = 'Pa55-w0rd-never-shown';
const FAST = {
  pollIntervalMs: 20,
  maxPollIntervalMs: 100,
  gracefulTimeoutMs: 2_000,
  transientRetry: { attempts: 4, delayMs: 50 },
  timeouts: { connectMs: 1_000, requestMs: 2_000, operationMs: 10_000 },
};

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

/** `mib` MiB of zeros, gzipped in 1 MiB steps (never all in memory): about 1 KiB per MiB. */
async function gzipBomb(mib: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < mib; i++) if (!gzip.write(zeros)) await new Promise((r) => gzip.once('drain', r));
  gzip.end();
  await done;
  return Buffer.concat(out);
}

t.test('a decompression bomb: BmcResponseTooLargeError naming the endpoint and the limit, memory bounded', async (t) => {
  const bomb = await gzipBomb(512);
  const bodies: Record<string, { encoding: string; body: Buffer }> = {
    gzip: { encoding: 'gzip', body: bomb },
    deflate: { encoding: 'deflate', body: deflateSync(Buffer.alloc(MAX_BODY_BYTES + 1)) },
    br: { encoding: 'br', body: brotliCompressSync(Buffer.alloc(MAX_BODY_BYTES + 1)) },
    // Within the limit, compressed although identity was asked for: decoded as usual.
    small: { encoding: 'gzip', body: gzipSync(JSON.stringify({ '@odata.id': '/redfish/v1', Systems: { '@odata.id': '/redfish/v1/Systems' } })) },
  };
  let mode = 'gzip';
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url} accept-encoding=${req.headers['accept-encoding']}`);
    const { encoding, body } = bodies[mode] as { encoding: string; body: Buffer };
    if (mode === 'small' && req.url !== '/redfish/v1' && req.url !== '/redfish/v1/') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const endpoint = `redfish+http://127.0.0.1:${port}`;
  const driver = new RedfishDriver({ address: parseBmcAddress(`${endpoint}/redfish/v1/Systems/1`), credentials: new BmcCredentials('admin', PASSWORD), ...FAST });
  t.teardown(() => driver.close());

  t.ok(bomb.length < 1024 * 1024, `the bomb is ${bomb.length} bytes on the wire, 512 MiB decompressed`);
  const before = process.memoryUsage().arrayBuffers;
  const err = await rejection(driver.status());
  const grew = process.memoryUsage().arrayBuffers - before;
  t.type(err, BmcResponseTooLargeError);
  t.type(err, BmcProtocolError, 'a protocol error: not transient, not retried');
  t.equal((err as BmcResponseTooLargeError).limitBytes, MAX_BODY_BYTES);
  t.equal((err as BmcResponseTooLargeError).transient, false);
  t.equal((err as BmcError).address, endpoint, 'names the endpoint');
  t.ok(err.message.startsWith(`reading the power state on ${endpoint}: GET /redfish/v1`), err.message);
  t.match(err.message, /the answer \(\d+ bytes, gzip\) decompresses to more than 4 MiB \(4194304 bytes\), the limit for a Redfish answer/, 'names the limit');
  t.ok(grew < 64 * 1024 * 1024, `memory grew by ${Math.round(grew / 1024 / 1024)} MiB, not by the 512 MiB the bomb expands to`);
  t.equal(seen.length, 1, 'one request: not retried');

  for (const m of ['deflate', 'br']) {
    mode = m;
    const e = await rejection(driver.status());
    t.type(e, BmcResponseTooLargeError, `${m}: too large as well`);
    t.match(e.message, new RegExp(`\\(\\d+ bytes, ${m}\\) decompresses to more than 4 MiB`));
  }

  mode = 'small';
  const fine = await rejection(driver.status());
  t.notOk(fine instanceof BmcResponseTooLargeError, `a small gzip answer is decoded and read (then fails for another reason: ${fine.message})`);
  t.match(fine.message, /Systems|404|system/, 'it got past the service root');
});
