import * as k8s from '@kubernetes/client-node';
import type { BmcCredentials} from './credentials.js';
import { CredentialsError, credentialsFromSecret } from './credentials.js';
import { errorMessage } from '../kube/errors.js';

/**
 * Reads a machine's BMC credentials from its Secret (keys username and password) through
 * the Kubernetes API. `where` names the machine for the error message.
 */
export async function readCredentialsSecret(core: k8s.CoreV1Api, namespace: string, name: string, where: string): Promise<BmcCredentials> {
  let secret: k8s.V1Secret;
  try {
    secret = await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      if (err.code === 404) {
        throw new CredentialsError(`${where}: credentials Secret ${namespace}/${name} does not exist; create it with the keys username and password`);
      }
      if (err.code === 403) {
        throw new CredentialsError(`${where}: not allowed to read Secret ${namespace}/${name} (RBAC: get secrets in ${namespace})`);
      }
      throw new CredentialsError(`${where}: reading Secret ${namespace}/${name} failed with HTTP ${err.code}`);
    }
    throw new CredentialsError(`${where}: reading Secret ${namespace}/${name} failed: ${errorMessage(err)}`);
  }
  return credentialsFromSecret(
    { metadata: { name, namespace }, ...(secret.data ? { data: secret.data } : {}), ...(secret.stringData ? { stringData: secret.stringData } : {}) },
    where,
  );
}
