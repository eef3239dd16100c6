import { join } from 'node:path';
import { GROUP, PLURAL } from '../../../api/v1alpha1/baremetalautoscaler.js';
import { kubectl, repoRoot } from './cluster.js';

/** The BareMetalAutoscaler CRD as this checkout has it (a fresh cluster has none), Established. */
export async function installCrd(): Promise<void> {
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'config/crd/bases')]);
  if (applied.code !== 0) throw new Error(`installing the CRDs: ${applied.stderr}`);
  const wait = await kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', `crd/${PLURAL}.${GROUP}`]);
  if (wait.code !== 0) throw new Error(`the CRD is not Established: ${wait.stderr}`);
}
