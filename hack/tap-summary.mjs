// Reads a TAP stream (tap --reporter=tap) on stdin, keeps it whole in the file named by
// argv[2], prints each test file's result and every failing test with its diagnostics,
// and writes "passed failed skipped" to the file named by argv[3].
// A test is a direct child of a test file (a t.test() or a top-level assertion); a file
// that failed without reporting any child (a crash, a timeout) counts as one failure.
import { createWriteStream, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const raw = createWriteStream(process.argv[2]);
const countsFile = process.argv[3];
let passed = 0, failed = 0, skipped = 0;
let childrenInFile = 0;
let failing = null; // lines of the failing child being collected
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  raw.write(line + '\n');
  const child = /^ {4}(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/i.exec(line);
  const top = /^(not ok|ok) \d+ - (\S+)/.exec(line);
  if (failing && (child || top || /^ {4}\S/.test(line) && !/^ {4}(---|\.\.\.)/.test(line))) {
    if (!/^ {6}/.test(line)) { process.stdout.write(failing.join('\n') + '\n'); failing = null; }
  }
  if (failing && /^ {6}/.test(line)) { if (failing.length < 40) failing.push(line); continue; }
  if (child) {
    childrenInFile++;
    if (child[3]) skipped++;
    else if (child[1] === 'ok') passed++;
    else { failed++; failing = [`  FAIL ${child[2]}`]; }
    continue;
  }
  if (top) {
    const ok = top[1] === 'ok';
    if (!ok && childrenInFile === 0) failed++;
    process.stdout.write(`${ok ? 'ok    ' : 'FAILED'} ${top[2]}\n`);
    childrenInFile = 0;
  }
}
if (failing) process.stdout.write(failing.join('\n') + '\n');
raw.end();
writeFileSync(countsFile, `${passed} ${failed} ${skipped}\n`);
