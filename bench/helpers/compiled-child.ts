import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The recorded-state children run as the manager does: compiled JavaScript under plain
 * node, not under the TypeScript loader the benches start with (which alone holds about
 * 300 MiB, and would be most of any RSS measured with it). The few bench files a child
 * needs are transpiled next to the build (dist/bench/...), where their imports of the
 * project's modules find dist/; dist/ must be current (make build).
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The bench files a recorded-state child loads. */
const CHILD_FILES = ['bench/helpers/recorded-child.ts', 'bench/helpers/recorded-bench.ts', 'bench/helpers/compiled-child.ts', 'bench/helpers/recorded-cluster.ts', 'bench/helpers/recorded-reconciler.ts', 'bench/helpers/random.ts', 'bench/helpers/stats.ts'];

/** Folders the children load from dist/: a source newer than its build means dist/ is stale. */
const BUILT = ['api', 'controller', 'kube', 'power', 'scheduling'];

function newerSource(dir: string): string | undefined {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = newerSource(path);
      if (found) return found;
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      const built = join(root, 'dist', path.replace(/\.ts$/, '.js'));
      let builtAt = 0;
      try {
        builtAt = statSync(built).mtimeMs;
      } catch {
        return path;
      }
      if (statSync(join(root, path)).mtimeMs > builtAt) return path;
    }
  }
  return undefined;
}

/** Transpiles the child's files into dist/bench and returns the entry to run with node. */
export async function compiledChildEntry(): Promise<string> {
  const stale = BUILT.map(newerSource).find((x) => x !== undefined);
  if (stale) throw new Error(`dist/ is older than ${stale}: run make build (the recorded-state children run the compiled code)`);
  const ts = (await import('typescript')).default;
  for (const file of CHILD_FILES) {
    const out = join(root, 'dist', file.replace(/\.ts$/, '.js'));
    const { outputText } = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true },
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
  }
  return join(root, 'dist', CHILD_FILES[0]?.replace(/\.ts$/, '.js') ?? '');
}
