/**
 * Part (b) of the power bench: the CPU the controller's process spends keeping the power
 * state of many BMCs fresh, one status() of each per round, measured against the BMCs of
 * the simulator host (power-sim-host.ts), ipmitool children included.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BmcCredentials } from '../../power/credentials.js';
import type { PowerDriver, PowerState } from '../../power/driver.js';
import { createPowerDriver } from '../../power/factory.js';
import { ms, timed } from './power-figures.js';
import type { SimHost } from './power-sim-host.js';
import { percentile } from './stats.js';

export interface PollingPlan {
  /** The BMCs the figures are given for (fewer measured are scaled). */
  polledBmcs: number;
  /** Rounds measured, benchIntervalMs apart. */
  rounds: number;
  /** status() calls in flight at once. */
  concurrency: number;
  /** The controller's interval, which the CPU figures are scaled to. */
  controllerIntervalS: number;
  benchIntervalMs: number;
  /** The IPMI user; Redfish BMC i has the user u000, u001, ... */
  username: string;
  password: string;
}

/** CPU of this process's children that have ended (ipmitool), from /proc/self/stat, in ms. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces): cutime and cstime are 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

async function pollRound(drivers: PowerDriver[], concurrency: number): Promise<{ failed: number; states: Record<PowerState, number> }> {
  const states: Record<PowerState, number> = { on: 0, off: 0 };
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < drivers.length) {
        const driver = drivers[next++] as PowerDriver;
        try {
          states[await driver.status()]++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { failed, states };
}

export interface PollingCost {
  label: string;
  bmcs: number;
  /** Per round, in ms of CPU: this process, its ended children. */
  selfMs: number;
  childrenMs: number;
  roundMs: number;
  failed: number;
}

async function pollingCost(label: string, drivers: PowerDriver[], plan: PollingPlan): Promise<PollingCost> {
  // The first round logs in (Redfish sessions) and finds the cipher suite (IPMI: ipmi_sim
  // refuses suite 17, and the fallback to 3 waits out the 5 s gap): a one-time cost, not
  // the steady state measured below, so all at once.
  const warm = await pollRound(drivers, drivers.length);
  if (warm.failed > 0) console.log(`  ${label}: ${warm.failed} of ${drivers.length} failed in the warm-up round`);
  await sleep(plan.benchIntervalMs);
  const cpu0 = process.cpuUsage();
  const children0 = await childrenCpuMs();
  let failed = 0;
  const roundTimes: number[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    const { ms: took, value } = await timed(() => pollRound(drivers, plan.concurrency));
    roundTimes.push(took);
    failed += value.failed;
    if (r < plan.rounds - 1) await sleep(plan.benchIntervalMs);
  }
  const cpu = process.cpuUsage(cpu0);
  const children = (await childrenCpuMs()) - children0;
  return {
    label,
    bmcs: drivers.length,
    selfMs: (cpu.user + cpu.system) / 1000 / plan.rounds,
    childrenMs: children / plan.rounds,
    roundMs: percentile(roundTimes, 50),
    failed,
  };
}

export function printPollingCosts(costs: PollingCost[], plan: PollingPlan): void {
  const perMinute = 60 / plan.controllerIntervalS;
  const perBmcMinute = (c: PollingCost) => ((c.selfMs + c.childrenMs) / c.bmcs) * perMinute;
  console.log('');
  console.log(`(b) CPU to keep ${plan.polledBmcs} BMCs' power states fresh: status() of each, ${plan.concurrency} at a time, one round per ${plan.controllerIntervalS} s`);
  console.log(`    (${plan.rounds} rounds measured ${plan.benchIntervalMs / 1000} s apart, so that every round opens new connections as at ${plan.controllerIntervalS} s; CPU scaled to the ${plan.controllerIntervalS} s interval)`);
  console.log(
    `  ${'driver'.padEnd(26)} ${'BMCs'.padStart(4)}  ${'round'.padStart(8)}  ${'CPU/round: self'.padStart(15)} ${'children'.padStart(9)} ${'total'.padStart(9)}  ${'per BMC-minute'.padStart(14)}  ${'100 BMCs, % of a core'.padStart(21)}`,
  );
  for (const c of costs) {
    const total = c.selfMs + c.childrenMs;
    const scaled = c.bmcs === plan.polledBmcs ? '' : ` (${c.bmcs} measured, scaled)`;
    const core = ((perBmcMinute(c) * plan.polledBmcs) / 60_000) * 100;
    console.log(
      `  ${c.label.padEnd(26)} ${String(c.bmcs).padStart(4)}  ${ms(c.roundMs).padStart(8)}  ${ms(c.selfMs).padStart(15)} ${ms(c.childrenMs).padStart(9)} ${ms(total).padStart(9)}  ${ms(perBmcMinute(c)).padStart(14)}  ${`${core.toFixed(3)} %`.padStart(21)}${scaled}${c.failed > 0 ? `  ${c.failed} failed polls` : ''}`,
    );
  }
  const ipmi = costs.find((c) => c.label.startsWith('ipmi'));
  for (const redfish of costs.filter((c) => c.label.startsWith('redfish'))) {
    if (ipmi !== undefined) console.log(`  ratio IPMI / ${redfish.label}: ${(perBmcMinute(ipmi) / perBmcMinute(redfish)).toFixed(1)} x per BMC-minute`);
  }
}

export async function pollingCosts(host: SimHost, plan: PollingPlan): Promise<PollingCost[]> {
  console.log(`  simulator host (pid ${host.child.pid ?? '?'}): ${host.ready.redfishHttps.length} Redfish systems over HTTPS and ${host.ready.redfishHttp.length} over HTTP, ${host.ready.ipmi.length} ipmi_sim, ready in ${ms(host.ready.startMs)}`);
  const credentials = (i: number) => new BmcCredentials(`u${String(i).padStart(3, '0')}`, plan.password);
  const costs: PollingCost[] = [];
  try {
    for (const [label, addresses, insecure] of [
      ['redfish (HTTPS, sessions)', host.ready.redfishHttps, true],
      ['redfish (HTTP, sessions)', host.ready.redfishHttp, false],
    ] as const) {
      const drivers = addresses.map((address, i) => createPowerDriver({ address, credentials: credentials(i), ...(insecure ? { insecureSkipVerify: true } : {}) }));
      costs.push(await pollingCost(label, drivers, plan));
      await Promise.all(drivers.map((d) => d.close()));
    }
    // The default 5 s gap between commands holds: rounds are further apart than that.
    const drivers = host.ready.ipmi.map((address) => createPowerDriver({ address, credentials: new BmcCredentials(plan.username, plan.password) }));
    costs.push(await pollingCost('ipmi (ipmitool lanplus)', drivers, plan));
    await Promise.all(drivers.map((d) => d.close()));
  } finally {
    await host.stop();
  }
  return costs;
}

