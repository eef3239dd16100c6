import t from 'tap';
import { formatMilli, parseQuantity, QuantityError } from '../../api/quantity.js';

const GI = 1n << 30n;

function thrown(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

t.test('parses Kubernetes quantities into milli-units', async (t) => {
  const cases: Array<[string | number, bigint]> = [
    ['0', 0n],
    ['1', 1000n],
    ['500m', 500n],
    ['0.5', 500n],
    ['.5', 500n],
    ['5.', 5000n],
    ['+5', 5000n],
    ['-2', -2000n],
    ['1k', 1_000_000n],
    ['2M', 2n * 10n ** 9n],
    ['1G', 10n ** 12n],
    ['1T', 10n ** 15n],
    ['1P', 10n ** 18n],
    ['1E', 10n ** 21n],
    ['1Ki', 1024_000n],
    ['1Mi', (1n << 20n) * 1000n],
    ['64Gi', 64n * GI * 1000n],
    ['1.5Gi', (3n * GI * 1000n) / 2n],
    ['1Ti', (1n << 40n) * 1000n],
    ['1Pi', (1n << 50n) * 1000n],
    ['1Ei', (1n << 60n) * 1000n],
    ['1e3', 1_000_000n],
    ['1E3', 1_000_000n],
    ['1.5e3', 1_500_000n],
    ['12e-1', 1200n],
    ['1e-3', 1n],
    ['1e+2', 100_000n],
    ['1m', 1n],
    [32, 32_000n],
    [0.1, 100n],
    [1e21, 10n ** 24n],
  ];
  for (const [input, milli] of cases) t.equal(parseQuantity(input), milli, JSON.stringify(input));
});

t.test('rounds a fractional milli-unit away from zero, like MilliValue', async (t) => {
  t.equal(parseQuantity('1n'), 1n);
  t.equal(parseQuantity('1u'), 1n);
  t.equal(parseQuantity('1001u'), 2n);
  t.equal(parseQuantity('0.1m'), 1n);
  t.equal(parseQuantity('-0.1m'), -1n);
  t.equal(parseQuantity('1500u'), 2n);
  t.equal(parseQuantity('1000u'), 1n);
});

t.test('says what is wrong with an invalid quantity', async (t) => {
  const advice = 'use a number with an optional suffix such as 500m, 2, 64Gi or 1Ti';
  const cases: Array<[string | number, string]> = [
    ['12XB', `"12XB" is not a valid quantity: unknown suffix "XB"; ${advice}`],
    ['', `"" is not a valid quantity: it is empty; ${advice}`],
    ['abc', `"abc" is not a valid quantity: it must start with a number; ${advice}`],
    ['Gi', `"Gi" is not a valid quantity: it must start with a number; ${advice}`],
    ['--1', `"--1" is not a valid quantity: it must start with a number; ${advice}`],
    ['1 Gi', `"1 Gi" is not a valid quantity: it contains whitespace; ${advice}`],
    ['64GB', `"64GB" is not a valid quantity: unknown suffix "GB" (did you mean "Gi" or "G"?); ${advice}`],
    ['64GiB', `"64GiB" is not a valid quantity: unknown suffix "GiB" (did you mean "Gi"?); ${advice}`],
    ['1gi', `"1gi" is not a valid quantity: unknown suffix "gi" (did you mean "Gi"?); ${advice}`],
    ['1K', `"1K" is not a valid quantity: unknown suffix "K" (did you mean "Ki" or "k"?); ${advice}`],
    ['1.2.3', `"1.2.3" is not a valid quantity: unknown suffix ".3"; ${advice}`],
    ['1e1000', `"1e1000" is not a valid quantity: exponent 1000 is out of range (-100 to 100); ${advice}`],
    [Number.NaN, `"NaN" is not a valid quantity: it is not a finite number; ${advice}`],
    [Number.POSITIVE_INFINITY, `"Infinity" is not a valid quantity: it is not a finite number; ${advice}`],
  ];
  for (const [input, message] of cases) {
    const err = thrown(() => parseQuantity(input));
    t.ok(err instanceof QuantityError, `${String(input)} throws a QuantityError`);
    t.equal(err?.message, message);
  }
});

t.test('formats milli-units for people', async (t) => {
  t.equal(formatMilli(500n, 'cpu'), '500m');
  t.equal(formatMilli(2000n, 'cpu'), '2');
  t.equal(formatMilli(1500n, 'cpu'), '1500m');
  t.equal(formatMilli(-500n, 'cpu'), '-500m');
  t.equal(formatMilli(64n * GI * 1000n, 'bytes'), '64Gi');
  t.equal(formatMilli((1n << 40n) * 1000n, 'bytes'), '1Ti');
  t.equal(formatMilli(1024n * 1024n * 1000n, 'bytes'), '1Mi');
  t.equal(formatMilli(1536n * 1000n, 'bytes'), '1536');
  t.equal(formatMilli(1_000_000n, 'bytes'), '1000');
  t.equal(formatMilli(0n, 'bytes'), '0');
  t.equal(formatMilli(1500n, 'bytes'), '1.5');
  t.equal(formatMilli(110_000n, 'count'), '110');
  t.equal(formatMilli(1500n, 'count'), '1.5');
  t.equal(formatMilli(1n, 'count'), '0.001');
});

t.test('formatMilli round-trips through parseQuantity', async (t) => {
  for (const text of ['500m', '2', '64Gi', '1Ti', '1536', '3Ei']) {
    const kind = text.endsWith('m') ? 'cpu' : 'bytes';
    t.equal(formatMilli(parseQuantity(text), kind), text);
  }
});
