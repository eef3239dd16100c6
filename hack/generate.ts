import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { structuralSchemaProblems } from '../api/structural.js';
import { buildBareMetalAutoscalerCrd, buildTrafficReportCrd } from '../api/crd.js';
import { generatedFiles } from './generated-files.js';

// Run from the repository root (the Makefile does).
const root = process.cwd();
const check = process.argv.includes('--check');

type Crd = { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
const problems = [buildBareMetalAutoscalerCrd(), buildTrafficReportCrd()].flatMap((crd) =>
  (crd as Crd).spec.versions.flatMap((v) => structuralSchemaProblems(v.schema.openAPIV3Schema)),
);
if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`structural schema: ${p}\n`);
  process.exit(1);
}

let stale = 0;
for (const [rel, content] of generatedFiles()) {
  const path = join(root, rel);
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  if (check) {
    process.stderr.write(`${rel} is stale: run make generate\n`);
    stale++;
    continue;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  process.stdout.write(`wrote ${rel}\n`);
}
process.exit(stale > 0 ? 1 : 0);
