// Run: TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/status-size.bench.ts [--json] [--machines N] [--heavy] [--long-names]
//
// The size of a BareMetalAutoscaler status at 10,000 machines after a week (every machine
// powered on and off, learned boot times, power readings, Ready machines with blockers,
// Failed ones with messages, operations in flight: bench/helpers/fleet-status.ts builds it
// with the controller's own steps), against etcd's 1.5 MiB request limit: bytes as the
// status is built (in memory), bytes as the status writer sends it (compacted, within the
// safe size), and each field's share of both.
import { compactStatus } from '../controller/reconcile/status-compact.js';
import { fitStatus, SAFE_STATUS_BYTES } from '../controller/reconcile/status-guard.js';
import { REALISTIC, sizeReport, weekOldFleet, WEEK_NOW, type FleetProfile } from './helpers/fleet-status.js';

const arg = process.argv.indexOf('--machines');
const n = arg > 0 ? Number(process.argv[arg + 1]) : 10_000;
const profile: FleetProfile = { cycles: process.argv.includes('--heavy') ? 'heavy' : REALISTIC.cycles, names: process.argv.includes('--long-names') ? 'long' : REALISTIC.names };
const MiB = 1024 * 1024;
const start = performance.now();
const fleet = weekOldFleet(n, profile);
const built = performance.now() - start;
const t0 = performance.now();
const sent = fitStatus(compactStatus(fleet.status, WEEK_NOW), { limitBytes: SAFE_STATUS_BYTES, generation: 3, now: WEEK_NOW });
const writeMs = performance.now() - t0;
const before = sizeReport(fleet.status);
const after = sizeReport(sent.status);
const mib = (b: number): string => (b / MiB).toFixed(3);
console.log(`${n} machines, ${profile.cycles} power cycles, ${profile.names} names (fleet built in ${Math.round(built)} ms; compacted and measured in ${writeMs.toFixed(0)} ms)`);
console.log(`status as built: ${before.bytes} bytes = ${mib(before.bytes)} MiB, ${Math.round(before.bytes / n)} bytes a machine`);
console.log(`status as sent:  ${after.bytes} bytes = ${mib(after.bytes)} MiB, ${Math.round(after.bytes / n)} bytes a machine (${(after.bytes / before.bytes).toFixed(3)}x)${sent.trimmed.length > 0 ? `, trimmed: ${sent.trimmed.join('; ')}` : ''}`);
console.log('field                                 as built   share     as sent   share');
const sentBy = new Map(after.fields.map((f) => [f.field, f]));
for (const f of before.fields) {
  const a = sentBy.get(f.field);
  console.log(`${f.field.padEnd(34)} ${String(f.bytes).padStart(10)}  ${f.share.toFixed(1).padStart(5)} %  ${String(a?.bytes ?? 0).padStart(10)}  ${(a?.share ?? 0).toFixed(1).padStart(5)} %`);
}
for (const f of after.fields) if (!before.fields.some((b) => b.field === f.field)) console.log(`${f.field.padEnd(34)} ${'0'.padStart(10)}  ${'0.0'.padStart(5)} %  ${String(f.bytes).padStart(10)}  ${f.share.toFixed(1).padStart(5)} %`);
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ bench: 'status-size', machines: n, profile, builtBytes: before.bytes, sentBytes: after.bytes, sentMiB: Number(mib(after.bytes)), trimmed: sent.trimmed.length }));
}
