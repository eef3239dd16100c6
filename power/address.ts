import { isIPv4, isIPv6 } from 'node:net';

/**
 * BMC addresses in Metal3's URL form, so an inventory written for Metal3/Ironic reads the
 * same here: `ipmi://10.0.0.12:623`, `redfish+https://10.0.0.11/redfish/v1/Systems/1`,
 * `idrac-redfish://...`, `ilo5-redfish://...`.
 */

export const BMC_SCHEMES = [
  'ipmi',
  'redfish',
  'redfish+http',
  'redfish+https',
  'idrac-redfish',
  'idrac-redfish+http',
  'idrac-redfish+https',
  'ilo5-redfish',
  'ilo5-redfish+http',
  'ilo5-redfish+https',
] as const;

export type BmcScheme = (typeof BMC_SCHEMES)[number];
export type BmcDriver = 'ipmi' | 'redfish';
export type BmcVendor = 'generic' | 'idrac' | 'ilo5';

export interface BmcAddress {
  driver: BmcDriver;
  vendor: BmcVendor;
  scheme: BmcScheme;
  /** Lowercased; IPv6 without brackets (as ipmitool and sockets want it). */
  host: string;
  port: number;
  /** Redfish only. */
  protocol?: 'http' | 'https';
  /** Redfish only: the ComputerSystem path; undefined means "discover the only system". */
  systemPath?: string;
  /** Redfish only: protocol://host:port, IPv6 in brackets. */
  baseUrl?: string;
}

/** Says what is wrong with an address without repeating it: it might hold a password. */
export class BmcAddressError extends Error {
  override name = 'BmcAddressError';
}

const IPMI_PORT = 623;
const REDFISH_ROOT = '/redfish/v1';
const EXAMPLES = 'e.g. ipmi://10.0.0.12:623 or redfish+https://10.0.0.11/redfish/v1/Systems/1';

// Metal3 schemes bamel does not drive, and the one to use instead for power control.
const SCHEME_HINTS: Readonly<Record<string, string>> = {
  http: 'redfish+http',
  https: 'redfish+https',
  idrac: 'idrac-redfish',
  'idrac-virtualmedia': 'idrac-redfish',
  'redfish-virtualmedia': 'redfish',
  ilo5: 'ilo5-redfish',
  'ilo5-virtualmedia': 'ilo5-redfish',
};

export function isBmcScheme(scheme: string): scheme is BmcScheme {
  return (BMC_SCHEMES as readonly string[]).includes(scheme);
}

export function parseBmcAddress(address: string): BmcAddress {
  if (address.trim() === '') throw new BmcAddressError(`missing address; ${EXAMPLES}`);
  if (address.trim() !== address) throw new BmcAddressError('the address has leading or trailing spaces; remove them');

  const { scheme, rest } = splitScheme(address);
  const pathStart = rest.search(/[/?#]/);
  const authority = pathStart === -1 ? rest : rest.slice(0, pathStart);
  const path = pathStart === -1 ? '' : rest.slice(pathStart);

  if (authority.includes('@')) {
    throw new BmcAddressError('the address contains credentials ("user:password@"); remove them and put them in the Secret named by credentialsSecret');
  }
  if (/[?#]/.test(path)) throw new BmcAddressError('query strings and fragments ("?", "#") are not used; remove them');

  const driver: BmcDriver = scheme === 'ipmi' ? 'ipmi' : 'redfish';
  const protocol = scheme.endsWith('+http') ? 'http' : 'https';
  const defaultPort = driver === 'ipmi' ? IPMI_PORT : protocol === 'https' ? 443 : 80;
  const { host, port } = parseAuthority(authority, defaultPort);
  const vendor: BmcVendor = scheme.startsWith('idrac-') ? 'idrac' : scheme.startsWith('ilo5-') ? 'ilo5' : 'generic';

  if (driver === 'ipmi') {
    if (path !== '' && path !== '/') throw new BmcAddressError('ipmi addresses take no path; use ipmi://host[:port]');
    return { driver, vendor, scheme, host, port };
  }

  const systemPath = parseSystemPath(path);
  const baseUrl = `${protocol}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return systemPath === undefined
    ? { driver, vendor, scheme, host, port, protocol, baseUrl }
    : { driver, vendor, scheme, host, port, protocol, systemPath, baseUrl };
}

function splitScheme(address: string): { scheme: BmcScheme; rest: string } {
  const separator = address.indexOf('://');
  if (separator === -1) {
    // Metal3 reads an unadorned host[:port] as IPMI.
    if (address.includes('/')) throw new BmcAddressError(`missing "://" after the scheme; ${EXAMPLES}`);
    return { scheme: 'ipmi', rest: address };
  }
  const scheme = address.slice(0, separator).toLowerCase();
  if (!isBmcScheme(scheme)) {
    const hint = SCHEME_HINTS[scheme];
    const instead = hint === undefined ? '' : `; for power control use ${hint}://`;
    const shown = scheme === '' ? 'missing scheme' : `unknown scheme ${JSON.stringify(scheme)}`;
    throw new BmcAddressError(`${shown}; expected one of ${BMC_SCHEMES.join(', ')}${instead}`);
  }
  return { scheme, rest: address.slice(separator + 3) };
}

function parseAuthority(authority: string, defaultPort: number): { host: string; port: number } {
  if (authority === '') throw new BmcAddressError(`missing host; ${EXAMPLES}`);

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) throw new BmcAddressError('missing "]" after the IPv6 address');
    host = authority.slice(1, close).replace(/%25/g, '%');
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new BmcAddressError('unexpected text after "]"; expected ":port" or nothing');
    portText = after === '' ? undefined : after.slice(1);
    if (!isIPv6(host)) throw new BmcAddressError(`"[${host}]" is not an IPv6 address`);
  } else {
    const parts = authority.split(':');
    if (parts.length > 2) throw new BmcAddressError('IPv6 addresses must be in brackets, e.g. ipmi://[fd00::12]:623');
    host = parts[0] ?? '';
    portText = parts[1];
    if (host === '') throw new BmcAddressError(`missing host; ${EXAMPLES}`);
    checkHostName(host);
  }

  return { host: host.toLowerCase(), port: portText === undefined ? defaultPort : parsePort(portText) };
}

function checkHostName(host: string): void {
  if (/^[\d.]+$/.test(host)) {
    if (!isIPv4(host)) throw new BmcAddressError(`"${host}" is not a valid IPv4 address`);
    return;
  }
  const labelsOk = host.length <= 253 && host.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
  if (!labelsOk) throw new BmcAddressError(`"${host}" is not a valid host name or IP address`);
}

function parsePort(text: string): number {
  if (text === '') throw new BmcAddressError('empty port after ":"; remove the ":" or give a port number');
  if (!/^\d+$/.test(text)) throw new BmcAddressError(`port "${text}" is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new BmcAddressError(`port ${text} out of range; use 1 to 65535`);
  return port;
}

function parseSystemPath(path: string): string | undefined {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '' || trimmed === REDFISH_ROOT) return undefined;
  if (!trimmed.startsWith(`${REDFISH_ROOT}/`)) {
    throw new BmcAddressError(`the system path must start with ${REDFISH_ROOT}/ (e.g. ${REDFISH_ROOT}/Systems/1), or be left out to use the BMC's only system`);
  }
  const bad = /[^A-Za-z0-9\-._~!$&'()*+,;=:@%/]/.exec(trimmed);
  if (bad !== null) throw new BmcAddressError(`the system path contains ${JSON.stringify(bad[0])}; percent-encode it`);
  return trimmed;
}

/**
 * The endpoint a machine's power operations go to, as one comparable string: two machines
 * with the same endpoint would power each other.
 */
export function bmcEndpoint(address: BmcAddress): string {
  if (address.driver === 'ipmi') return `ipmi://${isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}`;
  return `${address.baseUrl ?? ''}${address.systemPath ?? ''}`;
}

/**
 * Whether two addresses reach the same machine. A Redfish address without a system path
 * means "the BMC's only system", so it collides with any system on the same BMC.
 */
export function sameBmcEndpoint(a: BmcAddress, b: BmcAddress): boolean {
  if (a.driver !== b.driver || a.host !== b.host || a.port !== b.port) return false;
  if (a.driver === 'ipmi') return true;
  return a.systemPath === undefined || b.systemPath === undefined || a.systemPath === b.systemPath;
}
