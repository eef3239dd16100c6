import t from 'tap';
import { parseInt64 } from '../../scheduling/int64.js';

t.test("parses integers as Go's strconv.ParseInt(s, 10, 64) does", async (t) => {
  const cases: Array<[string, bigint | undefined]> = [
    ['0', 0n],
    ['16', 16n],
    ['007', 7n],
    ['+5', 5n],
    ['-5', -5n],
    ['9223372036854775807', 9223372036854775807n],
    ['-9223372036854775808', -9223372036854775808n],
    ['9223372036854775808', undefined],
    ['', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['0x10', undefined],
    ['1_000', undefined],
    [' 1', undefined],
    ['four', undefined],
    ['-', undefined],
  ];
  for (const [text, value] of cases) t.equal(parseInt64(text), value, JSON.stringify(text));
});
