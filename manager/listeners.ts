import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { errorMessage } from '../kube/errors.js';
import { parseOptionalBindAddress } from '../kube/net.js';

/**
 * The manager's HTTP listeners (metrics, health probes, the scheduler extender), each on the
 * address its flag gives ("0" or "" turns one off). The webhook server has its own (webhook/).
 */

/** A fastify server on the flag's address with what setup adds, or undefined when the flag turns it off. */
export async function listenOn(address: string | undefined, flag: string, logger: Logger, setup: (app: FastifyInstance) => void): Promise<FastifyInstance | undefined> {
  const bind = parseOptionalBindAddress(address, flag);
  if (!bind) return undefined;
  // pino's Logger and fastify's logger type differ only in generics fastify cannot infer.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const app = Fastify({ loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger, disableRequestLogging: true });
  setup(app);
  await app.listen(bind);
  return app;
}

/** tls.crt and tls.key of a serving certificate directory (--extender-cert-dir). */
export function readServingCertificate(dir: string, flag: string): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) };
  } catch (err) {
    throw new Error(`${flag} ${dir}: reading tls.crt and tls.key: ${errorMessage(err)}`, { cause: err });
  }
}

/** host:port of each address a server listens on. */
export function listeningAddresses(app: FastifyInstance): string[] {
  return app.addresses().map((a) => (typeof a === 'string' ? a : `${a.address}:${a.port}`));
}
