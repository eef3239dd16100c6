/**
 * host:port as every listening flag takes it (--metrics-bind-address, --webhook-bind-address,
 * --extender-bind-address, the agent's and the simulator's): ":9443" is every address,
 * "127.0.0.1:9443" one of them, "[::1]:9443" an IPv6 one. "0" or "" turn a listener off
 * where the flag allows it (parseOptionalBindAddress).
 */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses host:port; `flag` names the option in the error, e.g. "--webhook-bind-address". */
export function parseBindAddress(address: string, flag: string, opts: { requireHost?: boolean } = {}): HostPort {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i === -1 || address.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${flag} ${JSON.stringify(address)}: expected host:port or :port, e.g. :9443`);
  }
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  if (host === '' && opts.requireHost) throw new Error(`${flag} ${JSON.stringify(address)}: expected host:port, with a host`);
  return { host: host || '0.0.0.0', port };
}

/** As parseBindAddress, but "0" or "" mean the listener is off (undefined). */
export function parseOptionalBindAddress(address: string | undefined, flag: string): HostPort | undefined {
  if (address === undefined || address === '0' || address === '') return undefined;
  return parseBindAddress(address, flag);
}
