// Reads a TAP stream (tap --reporter=tap) on stdin, keeps it whole in the file named by
// argv[2], prints each test file's result and, for a failed file, every failing assertion
// with its diagnostics, and writes "passed failed skipped" to the file named by argv[3].
// A test is a direct child of a test file (a t.test() or a top-level assertion); a file
// that failed without reporting any child (a crash, a timeout) counts as one failure.
import { createWriteStream, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const raw = createWriteStream(process.argv[2]);
const countsFile = process.argv[3];
let passed = 0;
let failed = 0;
let skipped = 0;
let childrenInFile = 0;
let block = []; // the current file's lines, for its failure report

function report(lines) {
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*not ok \d+/.test(lines[i])) continue;
    const depth = lines[i].search(/\S/);
    const out = [lines[i]];
    for (let j = i + 1; j < lines.length && out.length < 30; j++) {
      const d = lines[j].search(/\S/);
      if (d !== -1 && d <= depth) break;
      out.push(lines[j]);
    }
    process.stdout.write(out.map((l) => `  ${l}`).join('\n') + '\n');
  }
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  raw.write(line + '\n');
  block.push(line);
  const child = /^ {4}(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/i.exec(line);
  const top = /^(not ok|ok) \d+ - (\S+)/.exec(line);
  if (child) {
    childrenInFile++;
    if (child[3]) skipped++;
    else if (child[1] === 'ok') passed++;
    else failed++;
    continue;
  }
  if (top) {
    const ok = top[1] === 'ok';
    if (!ok && childrenInFile === 0) failed++;
    process.stdout.write(`${ok ? 'ok    ' : 'FAILED'} ${top[2]}\n`);
    if (!ok) report(block);
    childrenInFile = 0;
    block = [];
  }
}
raw.end();
writeFileSync(countsFile, `${passed} ${failed} ${skipped}\n`);
