import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * The layout's rules, checked on every source file: imports run one way (cmd → manager →
 * controller, webhook, extender → scheduling, api, power, kube), nothing shipped imports
 * hack/, files stay small enough to read, and the small helpers that used to be written
 * several times live in one place each.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE_DIRS = ['api', 'kube', 'manager', 'controller', 'scheduling', 'power', 'extender', 'webhook', 'bpf', 'sim', 'cmd', 'hack'];
const ALL_DIRS = [...SOURCE_DIRS, 'test', 'bench'];

/** Folder → the folders it must not import from. */
const FORBIDDEN: Record<string, string[]> = {
  kube: ['api', 'scheduling', 'power', 'controller', 'manager', 'webhook', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  api: ['controller', 'manager', 'webhook', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  scheduling: ['controller', 'manager', 'webhook', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  power: ['controller', 'manager', 'webhook', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  webhook: ['controller', 'manager', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  extender: ['controller', 'manager', 'webhook', 'bpf', 'sim', 'cmd', 'hack'],
  controller: ['manager', 'webhook', 'extender', 'bpf', 'sim', 'cmd', 'hack'],
  bpf: ['controller', 'manager', 'webhook', 'extender', 'sim', 'cmd', 'hack'],
  sim: ['controller', 'manager', 'webhook', 'extender', 'bpf', 'cmd', 'hack'],
  // `bamel simulate` runs the real controller and the extender's scoring on a virtual cluster.
  'sim/simulate': ['manager', 'webhook', 'bpf', 'cmd', 'hack'],
  manager: ['cmd', 'hack', 'sim', 'bpf'],
  cmd: ['hack'],
};

interface Source {
  path: string;
  text: string;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'build' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function sources(dirs: string[]): Source[] {
  return dirs.flatMap((d) => walk(join(root, d))).map((p) => ({ path: relative(root, p), text: readFileSync(p, 'utf8') }));
}

/** Relative import specifiers (static and dynamic), resolved to repository paths. */
export function importsOf(file: Source): string[] {
  const out: string[] = [];
  for (const m of file.text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    out.push(relative(root, resolve(root, dirname(file.path), m[1] as string)));
  }
  return out;
}

/** Every import that breaks a layering rule, in words. */
export function layerViolations(files: Source[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    // The most specific folder with rules of its own (sim/simulate before sim).
    const top = f.path.split('/')[0] ?? '';
    const from = [f.path.split('/').slice(0, 2).join('/'), top].find((k) => FORBIDDEN[k] !== undefined) ?? top;
    const forbidden = FORBIDDEN[from] ?? [];
    for (const target of importsOf(f)) {
      const to = target.split('/')[0] as string;
      if (forbidden.includes(to)) out.push(`${f.path} imports ${target}: ${from}/ must not import ${to}/`);
    }
  }
  return out;
}

t.test('the checker finds a forbidden import', async (t) => {
  const fake: Source[] = [
    { path: 'kube/x.ts', text: "import { a } from '../controller/y.js';" },
    { path: 'webhook/x.ts', text: "const m = await import('../controller/y.js');" },
    { path: 'controller/x.ts', text: "import { a } from '../api/y.js';\nimport { b } from '../kube/z.js';" },
  ];
  const found = layerViolations(fake);
  t.equal(found.length, 2, found.join('\n'));
  const sims: Source[] = [
    { path: 'sim/machine.ts', text: "import { a } from '../controller/y.js';" },
    { path: 'sim/simulate/engine.ts', text: "import { a } from '../../controller/y.js';\nimport { b } from '../../webhook/z.js';" },
  ];
  t.same(
    layerViolations(sims).map((v) => v.split(':')[0]),
    ['sim/machine.ts imports controller/y.js', 'sim/simulate/engine.ts imports webhook/z.js'],
    "sim/simulate/ may run the controller, the rest of sim/ may not; neither may import the webhook",
  );
  t.match(found[0], /kube\/x\.ts imports controller\/y\.js: kube\/ must not import controller\//);
});

t.test('imports run one way', async (t) => {
  const files = sources(SOURCE_DIRS);
  t.ok(files.length > 100, `${files.length} source files read`);
  t.same(layerViolations(files), [], 'no import from a lower layer into a higher one');
});

t.test('nothing shipped imports hack/', async (t) => {
  const shipped = sources(SOURCE_DIRS.filter((d) => d !== 'hack'));
  const bad = shipped.flatMap((f) => importsOf(f).filter((i) => i.startsWith('hack/')).map((i) => `${f.path} imports ${i}`));
  t.same(bad, []);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
  t.notOk(pkg.files.includes('dist'), 'package.json files names the shipped folders of dist/, not all of it');
  t.notOk(pkg.files.some((f) => f.includes('hack')), 'hack/ is not shipped');
  for (const f of pkg.files) {
    const first = f.replace(/^dist\//, '').split('/')[0] as string;
    if (f.startsWith('dist/')) t.ok(SOURCE_DIRS.includes(first), `${f} is a compiled source folder`);
    else t.ok(statSync(join(root, f), { throwIfNoEntry: false }) !== undefined, `${f} exists`);
  }
});

t.test('files stay small', async (t) => {
  const files = sources(ALL_DIRS);
  const lines = (f: Source): number => f.text.split('\n').length - (f.text.endsWith('\n') ? 1 : 0);
  t.same(files.filter((f) => lines(f) > 500).map((f) => `${f.path}: ${lines(f)} lines`), [], 'no source file over 500 lines');
  t.same(
    files.filter((f) => f.path.startsWith('controller/reconcile/') && lines(f) >= 300).map((f) => `${f.path}: ${lines(f)} lines`),
    [],
    'controller/reconcile/ files under 300 lines',
  );
});

/** A small helper and the one file it lives in; the pattern finds a copy of it elsewhere. */
const ONE_HOME: { what: string; home: string; pattern: RegExp }[] = [
  { what: 'the message of a thrown value', home: 'kube/errors.ts', pattern: /(\w+) instanceof Error \? \1\.message : String\(\1\)/ },
  { what: 'the ApiException describer', home: 'kube/errors.ts', pattern: /function (describe|statusMessage)\w*\(err: (unknown|k8s\.ApiException)/ },
  { what: 'host:port parsing', home: 'kube/net.ts', pattern: /\.lastIndexOf\(':'\)/ },
  { what: 'the pod reference for events', home: 'kube/events.ts', pattern: /apiVersion: 'v1',\s*kind: 'Pod',\s*name: / },
  { what: 'the terminated-phase set', home: 'scheduling/machine.ts', pattern: /new Set\(\['Succeeded', 'Failed'\]\)/ },
];

t.test('small helpers live in one place', async (t) => {
  const files = sources(SOURCE_DIRS);
  for (const h of ONE_HOME) {
    const where = files.filter((f) => h.pattern.test(f.text)).map((f) => f.path);
    t.same(where, [h.home], `${h.what}: only in ${h.home}`);
  }
});
