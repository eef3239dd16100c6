import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { fastYaml } from '../../api/fast-yaml.js';

// The fast reading must never give another value than the positional parser the rest of
// the inventory code relies on: either the same value, or undefined (read it with `yaml`).

function slow(text: string): unknown {
  try {
    return { value: parse(text, { merge: true, logLevel: 'silent' }) as unknown };
  } catch {
    return 'error';
  }
}

function agree(t: Test, text: string): boolean {
  const fast = fastYaml(text);
  if (fast === undefined) return false;
  t.same(slow(text), { value: fast.value }, `same value for ${JSON.stringify(text)}`);
  return true;
}

// Scalars where YAML schemas and libraries disagree, plus ordinary ones.
const SCALARS = [
  '0o14', '014', '0x1F', '0b101', '1_000', '+12', '-0', '.5', '1.', '1e3', '1E+3', '.inf', '-.Inf', '.NaN', '~', 'null', 'Null',
  'NULL', 'true', 'True', 'TRUE', 'yes', 'on', 'off', 'y', 'n', '2001-12-14', '2001-12-14T21:59:43Z', '12:30', '0.1e-2', '+.5', '-.5',
  '16Gi', '1.5', '00', '0', '0o8', '1e', '"a b"', "'b'", '"0x10"', '=', '<<', '"\\x41"', '[1, 2]', '{a: 1}', '"null"', '""', 'redfish+https://10.0.0.1/redfish/v1/Systems/1',
  'ipmi://10.0.0.2:623', '!!str 12', '!custom x', '&a 1', '*a', '? x', '%x', '"\\u00e9\\N\\t"', "'it''s'", '|\n  a\n  b\n', '|-\n  a\n', '|+\n  a\n\n', '>\n  a\n  b\n\n  c\n',
  'a # it\'s a comment', 'plain\n  continued', '"x\n  y"', "'x\n  y'", '"unclosed', 'x\ty',
];

t.test('each scalar: the same value or left to yaml', async (t) => {
  let fastCount = 0;
  for (const v of SCALARS) {
    for (const text of [`k: ${v}\n`, `k:\n  - ${v}\n`, `{k: ${v}}\n`, `m:\n  ${v}: x\n`]) if (agree(t, text)) fastCount++;
  }
  t.ok(fastCount > SCALARS.length * 2, `most documents take the fast reading (${fastCount})`);
});

t.test('documents where the libraries part ways are left to yaml', async (t) => {
  for (const text of [
    'a: &x {b: 1}\nc: *x\n',
    'a:\n  <<: {b: 1}\n  c: 2\n',
    '~: 1\n',
    'null: 1\n',
    '{: 1}\n',
    'a: !!str 1\n',
    'a: 1\na: 2\n',
    'a: 1\n---\nb: 2\n',
    '',
    '# only a comment\n',
    'a: [1, 2\n',
    'c: {cpu: o,{}, m: be}\n',
    '%YAML 1.2\n---\na: 1\n',
  ]) {
    t.equal(fastYaml(text), undefined, JSON.stringify(text));
  }
});

t.test('generated inventories: the same value', async (t) => {
  // mulberry32: a small seeded generator, so a failure repeats.
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return Math.floor((((x ^ (x >>> 14)) >>> 0) / 4294967296) * n);
  };
  const alphabet = ['0', '1', '7', '9', '.', '+', '-', 'e', 'E', 'x', 'o', 'b', '_', ':', 'a', 'inf', 'nan', 'NaN', 'true', 'null', '~', ' ', '#', '"', "'", ',', '[', ']', '{', '}', '/', 'Gi', '\\', '\t', '|', '>', '\n  ', '\n', '\n      '];
  // Half the documents from the characters numbers and names are made of, half from all.
  const plain = alphabet.slice(0, 22);
  let from = alphabet;
  const scalar = (): string => Array.from({ length: 1 + rnd(4) }, () => from[rnd(from.length)]).join('');
  let fastCount = 0;
  const docs = Number(process.env.BAMEL_FAST_YAML_DOCS ?? 6000);
  for (let doc = 0; doc < docs; doc++) {
    from = doc % 2 === 0 ? plain : alphabet;
    const lines = ['machines:'];
    for (let m = 0; m < 1 + rnd(3); m++) {
      lines.push(`  - name: m${m}`, `    bootSeconds: ${scalar()}`, '    labels:', `      rack: ${scalar()}`, `      z${m}: ${scalar()}`, `    capacity: {cpu: ${scalar()}, memory: ${scalar()}}`, `    taints: [${scalar()}]`);
    }
    if (agree(t, `${lines.join('\n')}\n`)) fastCount++;
  }
  t.ok(fastCount > docs / 4, `generated documents that took the fast reading: ${fastCount} of ${docs}`);
});
