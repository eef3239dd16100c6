const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const DECIMAL_INTEGER = /^[+-]?\d+$/;

/**
 * Go's strconv.ParseInt(text, 10, 64), which Kubernetes uses for the Gt and Lt operators of
 * node selectors and tolerations: an optional sign and decimal digits, nothing else, within
 * int64. Anything else is undefined and then never matches.
 */
export function parseInt64(text: string): bigint | undefined {
  if (!DECIMAL_INTEGER.test(text)) return undefined;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}
