import { measureSize, type SizeOptions } from './recorded-bench.js';

/**
 * A recorded-state child (compiled-child.ts): measures one size and prints the result as
 * its last line. Run by measureSizeInChild, under plain node with --expose-gc.
 */
const opts = JSON.parse(process.argv[2] ?? '{}') as SizeOptions;
const result = await measureSize(opts);
process.stdout.write(`${JSON.stringify(result)}\n`);
