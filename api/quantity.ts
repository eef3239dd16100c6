/**
 * Kubernetes resource quantities (resource.Quantity): "500m", "2", "64Gi", "1.5e3".
 *
 * Values are carried as bigint milli-units so that capacity arithmetic in the scheduler
 * and the controller is exact: no float rounding can make a pod appear to fit when it
 * does not.
 */

/** A quantity as written in YAML: `cpu: 32` arrives as a number, `memory: 64Gi` as a string. */
export type Quantity = string | number;

export class QuantityError extends Error {
  override name = 'QuantityError';
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`${JSON.stringify(input)} is not a valid quantity: ${reason}; use a number with an optional suffix such as 500m, 2, 64Gi or 1Ti`);
  }
}

const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIXES: Readonly<Record<string, bigint>> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};

// Kubernetes accepts any exponent, but "1e999999999" would make us build a billion-digit
// bigint; no real resource needs more than this.
const MAX_EXPONENT = 100;

const NUMBER_PART = /^([+-]?)(\d*)(?:\.(\d*))?(.*)$/s;
const EXPONENT_SUFFIX = /^[eE]([+-]?\d+)$/;

/**
 * Parses a quantity into milli-units (value × 1000), rounding a fractional milli-unit
 * away from zero as Kubernetes' MilliValue does ("0.1m" → 1).
 */
export function parseQuantity(input: Quantity): bigint {
  const text = typeof input === 'number' ? numberToQuantityText(input) : input;
  if (text === '') throw new QuantityError(text, 'it is empty');
  if (/\s/.test(text)) throw new QuantityError(text, 'it contains whitespace');

  const match = NUMBER_PART.exec(text);
  const [, sign = '', whole = '', fraction = '', suffix = ''] = match ?? [];
  if (whole === '' && fraction === '') throw new QuantityError(text, 'it must start with a number');

  const scale = parseSuffix(text, suffix);
  // value = mantissa / 10^fraction.length × multiplier, scaled to milli-units
  let numerator = BigInt(whole + fraction) * 1000n * scale.multiplier;
  let denominator = 10n ** BigInt(fraction.length);
  if (scale.exponent >= 0) numerator *= 10n ** BigInt(scale.exponent);
  else denominator *= 10n ** BigInt(-scale.exponent);

  const milli = (numerator + denominator - 1n) / denominator;
  return sign === '-' ? -milli : milli;
}

function numberToQuantityText(value: number): string {
  if (!Number.isFinite(value)) throw new QuantityError(String(value), 'it is not a finite number');
  // String() gives the shortest form that round-trips ("0.1", "1e+21"), which the
  // grammar below accepts.
  return String(value);
}

function parseSuffix(text: string, suffix: string): { multiplier: bigint; exponent: number } {
  const binary = BINARY_SUFFIXES[suffix];
  if (binary !== undefined) return { multiplier: binary, exponent: 0 };
  const decimal = DECIMAL_SUFFIXES[suffix];
  if (decimal !== undefined) return { multiplier: 1n, exponent: decimal };
  const exponent = EXPONENT_SUFFIX.exec(suffix)?.[1];
  if (exponent !== undefined) {
    const value = Number(exponent);
    if (Math.abs(value) > MAX_EXPONENT) {
      throw new QuantityError(text, `exponent ${exponent} is out of range (-${MAX_EXPONENT} to ${MAX_EXPONENT})`);
    }
    return { multiplier: 1n, exponent: value };
  }
  const hint = suggestSuffix(suffix);
  throw new QuantityError(text, `unknown suffix ${JSON.stringify(suffix)}${hint === undefined ? '' : ` (${hint})`}`);
}

/** Catches the usual slips: "GB", "GiB", "gi", "K". */
function suggestSuffix(suffix: string): string | undefined {
  const withoutByte = suffix.replace(/[bB]$/, '');
  const candidates = new Set<string>();
  // Only multiplying suffixes: someone writing "mb" means megabytes, not millibytes.
  for (const known of [...Object.keys(BINARY_SUFFIXES), 'k', 'M', 'G', 'T', 'P', 'E']) {
    if (known === withoutByte || known.toLowerCase() === withoutByte.toLowerCase()) candidates.add(known);
    if (known === `${withoutByte.toUpperCase()}i`) candidates.add(known);
  }
  if (candidates.size === 0) return undefined;
  const names = [...candidates].sort((a, b) => b.length - a.length).map((c) => JSON.stringify(c));
  return `did you mean ${names.join(' or ')}?`;
}

export type QuantityKind = 'cpu' | 'bytes' | 'count';

/**
 * Renders milli-units for people: cpu as "500m" or "2", bytes as "64Gi" when a binary
 * suffix is exact (else plain bytes), counts as integers.
 */
export function formatMilli(milli: bigint, kind: QuantityKind): string {
  if (milli < 0n) return `-${formatMilli(-milli, kind)}`;
  if (kind === 'cpu') return milli % 1000n === 0n ? String(milli / 1000n) : `${milli}m`;
  if (milli % 1000n !== 0n) return formatDecimal(milli);
  const whole = milli / 1000n;
  if (kind === 'bytes' && whole !== 0n) {
    for (const [suffix, size] of Object.entries(BINARY_SUFFIXES).reverse()) {
      if (whole % size === 0n) return `${whole / size}${suffix}`;
    }
  }
  return String(whole);
}

function formatDecimal(milli: bigint): string {
  const fraction = String(milli % 1000n).padStart(3, '0').replace(/0+$/, '');
  return `${milli / 1000n}.${fraction}`;
}
