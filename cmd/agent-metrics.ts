import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { parseOptionalBindAddress } from '../kube/net.js';

/**
 * The agent's /metrics and /healthz on node's own http server: two GET routes do not need
 * fastify, and the agent (a DaemonSet, one per node) is worth the ~8 MiB it costs to load.
 */

export interface MetricsServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

export async function serveAgentMetrics(address: string, registry: Registry, logger: Logger): Promise<MetricsServer | undefined> {
  const bind = parseOptionalBindAddress(address, '--metrics-bind-address');
  if (!bind) return undefined;
  const log = logger.child({ component: 'http' });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(404, 'application/json; charset=utf-8', JSON.stringify({ message: `Route ${req.method}:${path} not found`, error: 'Not Found', statusCode: 404 }));
      return;
    }
    if (path === '/healthz') {
      send(200, 'application/json; charset=utf-8', JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => send(200, registry.contentType, text),
        (err: unknown) => {
          log.error({ err }, 'collecting the metrics failed');
          send(500, 'application/json; charset=utf-8', JSON.stringify({ message: 'collecting the metrics failed', error: 'Internal Server Error', statusCode: 500 }));
        },
      );
      return;
    }
    send(404, 'application/json; charset=utf-8', JSON.stringify({ message: `Route ${req.method}:${path} not found`, error: 'Not Found', statusCode: 404 }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
