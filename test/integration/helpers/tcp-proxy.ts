import { createServer, connect, type Socket } from 'node:net';
import * as k8s from '@kubernetes/client-node';

/**
 * A TCP relay in front of the shared kube-apiserver, so that a test can break one client's
 * connections (reset them, or refuse new ones) without touching the API server other
 * tests use. TLS passes through untouched; the server certificate is for 127.0.0.1, which
 * is where the relay listens too.
 */
export interface TcpProxy {
  /** A KubeConfig like the given one, whose cluster is reached through the relay. */
  kc: k8s.KubeConfig;
  /** Resets every open connection. */
  cut(): void;
  /** While on, new connections are reset as soon as they arrive. */
  partition(on: boolean): void;
  openConnections(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(kc: k8s.KubeConfig): Promise<TcpProxy> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const target = new URL(cluster.server);
  const targetPort = Number(target.port || 443);
  const sockets = new Set<Socket>();
  let partitioned = false;

  const server = createServer((client) => {
    if (partitioned) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const proxied = new k8s.KubeConfig();
  proxied.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: `${target.protocol}//127.0.0.1:${port}` } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });

  return {
    kc: proxied,
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
    partition(on) {
      partitioned = on;
    },
    openConnections: () => sockets.size / 2,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
