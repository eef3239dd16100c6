// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/status-size.bench.ts [--json] [--machines N]
//
// The size of a BareMetalAutoscaler status at 10,000 machines after a week (every machine
// powered on and off, learned boot times, power readings, Ready machines with blockers,
// Failed ones with messages, operations in flight: bench/helpers/fleet-status.ts builds it
// with the controller's own steps), against etcd's 1.5 MiB request limit: bytes as the
// status is built, bytes as the status writer sends it, and each field's share.
import { weekOldFleet, sizeReport } from './helpers/fleet-status.js';

const arg = process.argv.indexOf('--machines');
const n = arg > 0 ? Number(process.argv[arg + 1]) : 10_000;
const start = performance.now();
const fleet = weekOldFleet(n);
const built = performance.now() - start;
const report = sizeReport(fleet.status);
const MiB = 1024 * 1024;
console.log(`${n} machines (built in ${Math.round(built)} ms): status ${report.bytes} bytes = ${(report.bytes / MiB).toFixed(3)} MiB, ${Math.round(report.bytes / n)} bytes a machine`);
console.log('field                                 bytes   share');
for (const f of report.fields) console.log(`${f.field.padEnd(34)} ${String(f.bytes).padStart(9)}  ${f.share.toFixed(1).padStart(5)} %`);
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ bench: 'status-size', machines: n, statusBytes: report.bytes, statusMiB: Number((report.bytes / MiB).toFixed(3)) }));
}
