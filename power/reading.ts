/**
 * Power readings: what a machine draws, as its BMC reports it. The sources a driver can
 * read, and the checks every reported number passes before it is believed.
 */
import { BmcProtocolError } from './errors.js';

/** Where a reading came from: the Redfish resource, or IPMI DCMI's Get Power Reading. */
export const READING_SOURCES = ['redfish-powersubsystem', 'redfish-environmentmetrics', 'redfish-power', 'ipmi-dcmi'] as const;
export type ReadingSource = (typeof READING_SOURCES)[number];

/** A measured draw. */
export interface PowerReading {
  kind: 'reading';
  watts: number;
  source: ReadingSource;
  observedAt: Date;
}

/** The BMC offers no reading (no power resource, the command is not supported, the meter is off): why, in words. */
export interface NoPowerReading {
  kind: 'none';
  reason: string;
}

export type PowerReadingResult = PowerReading | NoPowerReading;

/** Where a number came from, for the error when it is not one: the BMC and the field. */
export interface ReadingField {
  address: string;
  operation: string;
  /** e.g. "GET /redfish/v1/Chassis/1/EnvironmentMetrics: PowerWatts.Reading". */
  field: string;
}

/** The highest draw believed from one machine (a rack of GPUs on one chassis stays under it). */
export const MAX_PLAUSIBLE_WATTS = 100_000;

/**
 * A reported number of watts, checked: a finite number from 0 to MAX_PLAUSIBLE_WATTS.
 * Anything else (a string, a negative number, an absurd one) is a BmcProtocolError that
 * names the BMC and the field.
 */
export function checkedWatts(value: unknown, where: ReadingField): number {
  const problem =
    typeof value !== 'number'
      ? `is ${value === undefined ? 'missing' : JSON.stringify(value)}, not a number of watts`
      : !Number.isFinite(value)
        ? `is ${String(value)}, not a number of watts`
        : value < 0
          ? `is ${value}, a negative number of watts`
          : value > MAX_PLAUSIBLE_WATTS
            ? `is ${value} W, more than any one machine draws (${MAX_PLAUSIBLE_WATTS} W)`
            : undefined;
  if (problem === undefined) return value as number;
  throw new BmcProtocolError(`${where.field} ${problem}`, { address: where.address, operation: where.operation, hint: 'the BMC reports a power reading that cannot be right; check its power meter or firmware' });
}

/**
 * `ipmitool dcmi power reading` output. ipmitool 1.8.19 prints
 * "    Instantaneous power reading:                   214 Watts", later releases
 * "Instantaneous power reading              : 214      Watts"; both end with
 * "Power reading state is ...: activated|deactivated". A deactivated meter is no reading;
 * output without the instantaneous line, or with a value that is no number, is an error.
 */
export function parseDcmiPowerReading(stdout: string, where: Omit<ReadingField, 'field'>, observedAt: Date): PowerReadingResult {
  const state = /^\s*Power reading state is\s*:?\s*(\S+)/im.exec(stdout)?.[1]?.toLowerCase();
  if (state !== undefined && state !== 'activated') return { kind: 'none', reason: `the BMC's DCMI power meter is ${state}` };
  const line = /^\s*Instantaneous power reading\s*:?\s*(.*)$/im.exec(stdout);
  const field = 'dcmi power reading: "Instantaneous power reading"';
  if (line === null) {
    throw new BmcProtocolError(`${field} is missing from the answer`, { ...where, hint: 'expected a line "Instantaneous power reading: N Watts"' });
  }
  const value = /^(-?\d+(?:\.\d+)?)\s+Watts?\b/i.exec((line[1] ?? '').trim())?.[1];
  const watts = checkedWatts(value === undefined ? (line[1] ?? '').trim() || undefined : Number(value), { ...where, field });
  return { kind: 'reading', watts, source: 'ipmi-dcmi', observedAt };
}
