import {
  isExtendedResourceName,
  STANDARD_RESOURCES,
  validateDns1123Subdomain,
  validateLabelKey,
  validateLabelValue,
  validateResourceName,
  validateTaintKey,
} from './labels.js';
import { parseQuantity, QuantityError } from './quantity.js';
import { closestMatch, isPlainObject, type PathSegment } from './schema-check.js';
import { BmcAddressError, bmcEndpoint, parseBmcAddress, sameBmcEndpoint, type BmcAddress } from '../power/address.js';

/**
 * The inventory rules a schema cannot express: names Kubernetes accepts, BMC addresses
 * that parse, quantities that mean something, and machines that do not collide. They run
 * on whatever parts of a machine have the right types, so one run reports every problem.
 */

/** Where the rules report; paths are segments, formatted once machine names are known. */
export interface IssueSink {
  error(path: PathSegment[], message: string): void;
  errorIf(path: PathSegment[], message: string | undefined): void;
  warn(path: PathSegment[], message: string): void;
  /** " (name)" for a machine index, or "" when the machine has no usable name. */
  labelSuffix(index: number): string;
  /** Where a field is written ("line 7"), when the document's text is known. */
  lineOf?(path: PathSegment[]): string | undefined;
}

/** The defaulted max pods, as Kubernetes' kubelet defaults it. */
export const DEFAULT_MAX_PODS = '110';

export interface CheckedCapacity {
  milli: Record<string, bigint>;
  text: Record<string, string>;
}

export interface CheckedMachine {
  address?: BmcAddress;
  capacity?: CheckedCapacity;
}

export function checkMachine(machine: Record<string, unknown>, index: number, issues: IssueSink): CheckedMachine {
  const at = (...rest: PathSegment[]): PathSegment[] => ['machines', index, ...rest];
  const checked: CheckedMachine = {};

  if (typeof machine.name === 'string') issues.errorIf(at('name'), validateDns1123Subdomain(machine.name));
  if (isPlainObject(machine.bmc)) {
    const address = checkBmc(machine.bmc, at('bmc'), issues);
    if (address !== undefined) checked.address = address;
  }
  if (isPlainObject(machine.labels)) checkLabels(machine.labels, at('labels'), issues);
  if (Array.isArray(machine.taints)) checkTaints(machine.taints, at('taints'), issues);
  if (isPlainObject(machine.capacity)) checked.capacity = checkCapacity(machine.capacity, at('capacity'), issues);
  if (machine.power === undefined || isPlainObject(machine.power)) checkPower(machine.power ?? {}, at('power'), issues);
  return checked;
}

function checkBmc(bmc: Record<string, unknown>, at: PathSegment[], issues: IssueSink): BmcAddress | undefined {
  let address: BmcAddress | undefined;
  if (typeof bmc.address === 'string') {
    try {
      address = parseBmcAddress(bmc.address);
    } catch (err) {
      if (!(err instanceof BmcAddressError)) throw err;
      issues.error([...at, 'address'], err.message);
    }
  }
  if (typeof bmc.credentialsSecret === 'string') {
    const problem = validateDns1123Subdomain(bmc.credentialsSecret);
    if (problem !== undefined) issues.error([...at, 'credentialsSecret'], `${problem}; it must name a Secret in the inventory's namespace`);
  }

  const tls = address === undefined ? undefined : address.protocol === 'https';
  checkCredentialsProtection(bmc, address, at, issues);
  if (bmc.insecureSkipVerify === true && tls === true) {
    issues.warn(
      [...at, 'insecureSkipVerify'],
      "TLS certificate verification is off for an https BMC, so anything answering on its address receives the BMC credentials; set caBundle to the BMC's CA certificate instead",
    );
  }
  if (bmc.insecureSkipVerify === true && tls === false) {
    issues.warn([...at, 'insecureSkipVerify'], `has no effect: ${address?.scheme ?? ''} addresses do not use TLS; remove it`);
  }
  if (typeof bmc.caBundle === 'string') {
    if (!bmc.caBundle.includes('-----BEGIN CERTIFICATE-----')) {
      issues.error([...at, 'caBundle'], 'contains no PEM certificate (no "-----BEGIN CERTIFICATE-----" line); paste the CA certificates in PEM form, as a block: caBundle: |');
    } else if (tls === false) {
      issues.warn([...at, 'caBundle'], `ignored: ${address?.scheme ?? ''} addresses do not use TLS; remove it`);
    } else if (bmc.insecureSkipVerify === true) {
      issues.warn([...at, 'caBundle'], 'ignored while insecureSkipVerify is true; remove insecureSkipVerify to verify the BMC against this CA');
    }
  }
  return address;
}

/**
 * Credentials that would travel unprotected need the machine's explicit opt-in,
 * bmc.allowInsecureCredentials: true: over plain HTTP they travel in clear (HTTP Basic, or a
 * session login), and with insecureSkipVerify they go to whatever answers on the address.
 * IPMI (RMCP+, lanplus) never sends the password itself.
 */
function checkCredentialsProtection(bmc: Record<string, unknown>, address: BmcAddress | undefined, at: PathSegment[], issues: IssueSink): void {
  const optIn = bmc.allowInsecureCredentials === true;
  const where = (field: string): string => {
    const line = issues.lineOf?.([...at, field]);
    return line === undefined ? '' : ` (${line})`;
  };
  const http = address !== undefined && address.driver === 'redfish' && address.protocol === 'http';
  const unverified = address !== undefined && address.protocol === 'https' && bmc.insecureSkipVerify === true;
  if (http && !optIn) {
    issues.error(
      [...at, 'address'],
      `${address.scheme} sends the BMC credentials in clear over HTTP to ${address.host}:${address.port}${where('address')}, where anyone on the network path can read them; use ${address.scheme.replace(/\+http$/, '+https')}:// (with caBundle for the BMC's CA), or, on an isolated BMC network only, opt in with bmc.allowInsecureCredentials: true`,
    );
  }
  if (unverified && !optIn) {
    issues.error(
      [...at, 'insecureSkipVerify'],
      `true sends the BMC credentials to whatever answers on ${address.host}:${address.port} without verifying its certificate${where('insecureSkipVerify')}; set caBundle to the BMC's CA certificate and remove insecureSkipVerify, or, on an isolated BMC network only, opt in with bmc.allowInsecureCredentials: true`,
    );
  }
  if (optIn && address !== undefined && !http && !unverified) {
    issues.warn([...at, 'allowInsecureCredentials'], `has no effect: the credentials of ${address.scheme} are protected here (${address.driver === 'ipmi' ? 'IPMI RMCP+' : 'verified TLS'}); remove it`);
  }
}

function checkLabels(labels: Record<string, unknown>, at: PathSegment[], issues: IssueSink): void {
  for (const [key, value] of Object.entries(labels)) {
    issues.errorIf([...at, key], validateLabelKey(key));
    if (typeof value === 'string') issues.errorIf([...at, key], validateLabelValue(value));
  }
}

function checkTaints(taints: unknown[], at: PathSegment[], issues: IssueSink): void {
  const seen = new Map<string, number>();
  taints.forEach((taint, index) => {
    if (!isPlainObject(taint)) return;
    const { key, value, effect } = taint;
    if (typeof key === 'string') issues.errorIf([...at, index, 'key'], validateTaintKey(key));
    if (typeof value === 'string') issues.errorIf([...at, index, 'value'], validateLabelValue(value));
    if (typeof key !== 'string' || typeof effect !== 'string') return;
    const identity = `${key}:${effect}`;
    const first = seen.get(identity);
    if (first === undefined) seen.set(identity, index);
    else issues.error([...at, index], `duplicate taint ${identity} (also taints[${first}]); a key may appear once per effect, so remove one`);
  });
}

const MIN_PLAUSIBLE_MEMORY_MILLI = 1024n * 1024n * 1000n;

function checkCapacity(capacity: Record<string, unknown>, at: PathSegment[], issues: IssueSink): CheckedCapacity {
  const milli: Record<string, bigint> = {};
  const text: Record<string, string> = {};
  for (const [resource, raw] of Object.entries(capacity)) {
    const path = [...at, resource];
    issues.errorIf(path, resourceNameProblem(resource));
    if (typeof raw !== 'string' && typeof raw !== 'number') continue;
    let value: bigint;
    try {
      value = parseQuantity(raw);
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      issues.error(path, err.message);
      continue;
    }
    const written = String(raw);
    if (value < 0n) issues.error(path, `${JSON.stringify(written)} is negative; capacity must be zero or more`);
    else if ((resource === 'cpu' || resource === 'memory') && value === 0n) issues.error(path, `is 0; a machine without ${resource} cannot run pods`);
    else if ((resource === 'pods' || isExtendedResourceName(resource)) && value % 1000n !== 0n) {
      issues.error(path, `${JSON.stringify(written)} is not a whole number; ${resource} is counted in whole units`);
    } else if (resource === 'memory' && value < MIN_PLAUSIBLE_MEMORY_MILLI && /^[+]?[\d.]+$/.test(written)) {
      issues.warn(path, `${written} means ${written} bytes; write ${written}Gi if you meant gibibytes`);
    }
    milli[resource] = value;
    text[resource] = written;
  }
  if (!('pods' in capacity)) {
    milli.pods = parseQuantity(DEFAULT_MAX_PODS);
    text.pods = DEFAULT_MAX_PODS;
  }
  return { milli, text };
}

function resourceNameProblem(resource: string): string | undefined {
  const problem = validateResourceName(resource);
  if (problem === undefined || resource.includes('/')) return problem;
  const suggestion = closestMatch(resource, STANDARD_RESOURCES);
  return suggestion === undefined ? problem : `unknown resource ${JSON.stringify(resource)}; did you mean ${JSON.stringify(suggestion)}?`;
}

function checkPower(power: Record<string, unknown>, at: PathSegment[], issues: IssueSink): void {
  const { idleWatts, maxWatts } = power;
  if (typeof idleWatts === 'number' && typeof maxWatts === 'number' && idleWatts > maxWatts) {
    issues.error([...at, 'idleWatts'], `${idleWatts} is more than maxWatts (${maxWatts}); idle draw cannot exceed full-load draw, so check both readings`);
  }
  if (maxWatts === undefined) {
    issues.warn(
      [...at, 'maxWatts'],
      'not set; machines without it cannot be ranked by power draw, so ties between equally good machines fall back to the machine name. Set it from the spec sheet or a PDU reading',
    );
  }
}

export function checkDuplicateNames(machines: unknown[], issues: IssueSink): void {
  const firstByName = new Map<string, number>();
  machines.forEach((machine, index) => {
    if (!isPlainObject(machine) || typeof machine.name !== 'string') return;
    const first = firstByName.get(machine.name);
    if (first === undefined) {
      firstByName.set(machine.name, index);
      return;
    }
    issues.error(
      ['machines', index, 'name'],
      `duplicate machine name ${JSON.stringify(machine.name)}, also used by machines[${first}]; each machine registers its own Node, so give it a unique name`,
    );
  });
}

export function checkDuplicateBmcs(checked: CheckedMachine[], issues: IssueSink): void {
  // grouped by host so that a large inventory is not compared pairwise
  const byHost = new Map<string, number[]>();
  checked.forEach(({ address }, index) => {
    if (address === undefined) return;
    const host = `${address.host}|${address.port}`;
    const earlier = byHost.get(host) ?? [];
    const clash = earlier.find((other) => {
      const otherAddress = checked[other]?.address;
      return otherAddress !== undefined && sameBmcEndpoint(otherAddress, address);
    });
    if (clash !== undefined) {
      issues.error(
        ['machines', index, 'bmc', 'address'],
        `same BMC endpoint as machines[${clash}]${issues.labelSuffix(clash)} (${bmcEndpoint(address)}); powering one would power the other, so give each machine its own BMC or Redfish system path`,
      );
    }
    byHost.set(host, [...earlier, index]);
  });
}
