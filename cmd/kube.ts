import * as k8s from '@kubernetes/client-node';

/** A KubeConfig from --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster. */
export function loadKubeConfig(path?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error('no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster');
  }
  return kc;
}
