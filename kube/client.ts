import * as k8s from '@kubernetes/client-node';
import { API_REQUEST_TIMEOUT_MS } from './kube-http.js';

/**
 * API clients whose every request has a deadline. client-node sets none: one half-open
 * connection to the API server would hang the caller for good (the reconcile worker, a
 * drain, an event write) while the lease, on its own connection, keeps renewing. A request
 * that already carries a signal (leader election passes its own) keeps it, bounded by the
 * deadline too.
 */

export { API_REQUEST_TIMEOUT_MS };

type ApiConstructor<T> = new (config: k8s.Configuration) => T;

export function makeApiClient<T>(kc: k8s.KubeConfig, Api: ApiConstructor<T>, timeoutMs = API_REQUEST_TIMEOUT_MS): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const deadline: k8s.Middleware = {
    pre: (ctx) => {
      const own = ctx.getSignal();
      const timeout = AbortSignal.timeout(timeoutMs);
      ctx.setSignal(own ? AbortSignal.any([own, timeout]) : timeout);
      return Promise.resolve(ctx);
    },
    post: (res) => Promise.resolve(res),
  };
  const config = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [deadline],
  });
  return new Api(config);
}
