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

/**
 * Credentials read once per version of their Secret: the first reconcile of a large fleet
 * reads thousands of power states, and the machines share a few Secrets. `version` is the
 * Secret's resourceVersion as a watch knows it (undefined when unknown: read every time, not
 * kept); a changed Secret has a new version and is read again. A failed read is not kept.
 */
export class CredentialsCache {
  private readonly byKey = new Map<string, { version: string; credentials: Promise<BmcCredentials> }>();

  constructor(
    private readonly read: (namespace: string, name: string, where: string) => Promise<BmcCredentials>,
    private readonly version: (namespace: string, name: string) => string | undefined,
  ) {}

  get(namespace: string, name: string, where: string): Promise<BmcCredentials> {
    const key = `${namespace}/${name}`;
    const version = this.version(namespace, name);
    const hit = this.byKey.get(key);
    if (version !== undefined && hit?.version === version) return hit.credentials;
    const credentials = this.read(namespace, name, where);
    if (version === undefined) {
      this.byKey.delete(key);
      return credentials;
    }
    const entry = { version, credentials };
    this.byKey.set(key, entry);
    credentials.catch(() => {
      if (this.byKey.get(key) === entry) this.byKey.delete(key);
    });
    return credentials;
  }
}
