import type { Logger } from 'pino';
import { parseBmcAddress, type BmcAddress } from './address.js';
import type { BmcCredentials } from './credentials.js';
import type { DriverTimeouts, PowerDriver } from './driver.js';
import { IpmiDriver } from './ipmi/driver.js';
import { RedfishDriver } from './redfish.js';

export interface BmcConnection {
  /** The inventory's address URL, or one already parsed. */
  address: string | BmcAddress;
  credentials: BmcCredentials;
  insecureSkipVerify?: boolean;
  caBundle?: string;
}

export interface DriverOptions {
  timeouts?: Partial<DriverTimeouts>;
  logger?: Logger;
  gracefulTimeoutMs?: number;
}

/** The driver for a machine, chosen by its address scheme (ipmi:// or a redfish flavour). */
export function createPowerDriver(bmc: BmcConnection, opts: DriverOptions = {}): PowerDriver {
  const address = typeof bmc.address === 'string' ? parseBmcAddress(bmc.address) : bmc.address;
  const common = {
    address,
    credentials: bmc.credentials,
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.gracefulTimeoutMs !== undefined ? { gracefulTimeoutMs: opts.gracefulTimeoutMs } : {}),
  };
  if (address.driver === 'ipmi') return new IpmiDriver(common);
  return new RedfishDriver({
    ...common,
    ...(bmc.insecureSkipVerify !== undefined ? { insecureSkipVerify: bmc.insecureSkipVerify } : {}),
    ...(bmc.caBundle !== undefined ? { caBundle: bmc.caBundle } : {}),
  });
}
