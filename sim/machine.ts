import type { ParsedMachine } from '../api/inventory.js';
import type { SimFaults, SimPowerEvent, SimPowerState, SimulatedBmc } from './types.js';
import { errorMessage } from '../kube/errors.js';

export type MachineFaults = SimFaults & {
  /** The machine powers on but its Node never registers. */
  neverJoins?: boolean;
};

export interface KubeletHooks {
  start(machine: ParsedMachine): Promise<'registered' | 'resumed'>;
  stop(name: string): Promise<void>;
}

export type MachineEvent =
  | ({ event: 'power' } & SimPowerEvent)
  | { event: 'booting'; machine: string; bootMs: number }
  | { event: 'joined'; machine: string; how: 'registered' | 'resumed' }
  | { event: 'halted'; machine: string }
  | { event: 'error'; machine: string; message: string };

export interface SimMachineOptions {
  machine: ParsedMachine;
  bmc: SimulatedBmc;
  kubelet: KubeletHooks;
  /** Multiplies each machine's bootSeconds (tests and the demo boot faster than racks). */
  bootScale: number;
  /** Relative jitter on the boot time, e.g. 0.2 for ±20 %. */
  bootJitter: number;
  defaultBootSeconds: number;
  emit: (e: MachineEvent) => void;
  random?: () => number;
}

/**
 * One simulated machine: its BMC's power state drives a boot (after the machine's boot
 * time, its Node joins the cluster) and a halt (its Node is no longer kept alive).
 */
export class SimMachine {
  private bootTimer: NodeJS.Timeout | undefined;
  private faults: MachineFaults = {};
  private joined = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: SimMachineOptions) {
    this.unsubscribe = opts.bmc.onPower((e) => {
      opts.emit({ event: 'power', ...e });
      this.follow(e.state);
    });
  }

  get name(): string {
    return this.opts.machine.name;
  }

  get power(): SimPowerState {
    return this.opts.bmc.power;
  }

  get state(): { machine: string; power: SimPowerState; booting: boolean; joined: boolean; watts: number; faults: MachineFaults } {
    return { machine: this.name, power: this.power, booting: this.bootTimer !== undefined, joined: this.joined, watts: this.opts.bmc.watts, faults: { ...this.faults } };
  }

  /** The work the machine does, from 0 (idle) to 1 (full load): its draw follows while it is on. */
  setLoad(load: number): void {
    this.opts.bmc.setActivity({ load });
  }

  /** At start-up: a machine whose Node is still kept alive was left running. */
  adoptRunning(): void {
    this.joined = true;
  }

  async setFaults(faults: MachineFaults): Promise<void> {
    const { neverJoins, ...bmcFaults } = faults;
    this.faults = { ...faults };
    await this.opts.bmc.setFaults(bmcFaults);
    if (neverJoins && this.bootTimer) this.cancelBoot();
  }

  /** A person pressed the power button. */
  async pressPower(state: SimPowerState): Promise<void> {
    await this.opts.bmc.setPowerDirect(state);
    this.follow(state);
  }

  async stop(): Promise<void> {
    this.cancelBoot();
    this.unsubscribe();
    await this.chain;
    await this.opts.bmc.stop();
  }

  private follow(state: SimPowerState): void {
    if (state === 'on' && !this.joined && this.bootTimer === undefined) this.boot();
    if (state === 'off' && (this.joined || this.bootTimer !== undefined)) this.halt();
  }

  private boot(): void {
    const { machine, bootScale, bootJitter, defaultBootSeconds } = this.opts;
    const random = this.opts.random ?? Math.random;
    const base = (machine.bootSeconds ?? defaultBootSeconds) * 1000 * bootScale;
    const bootMs = Math.max(0, Math.round(base * (1 + bootJitter * (2 * random() - 1))));
    this.opts.emit({ event: 'booting', machine: this.name, bootMs });
    this.opts.bmc.setActivity({ booting: true });
    this.bootTimer = setTimeout(() => {
      this.bootTimer = undefined;
      // Booted (a machine whose Node never joins still ran its POST and OS).
      this.opts.bmc.setActivity({ booting: false });
      if (this.faults.neverJoins || this.power !== 'on') return;
      this.serial(async () => {
        const how = await this.opts.kubelet.start(machine);
        this.joined = true;
        this.opts.emit({ event: 'joined', machine: this.name, how });
      });
    }, bootMs);
  }

  private halt(): void {
    this.cancelBoot();
    const wasJoined = this.joined;
    this.joined = false;
    if (!wasJoined) return;
    this.serial(async () => {
      await this.opts.kubelet.stop(this.name);
      this.opts.emit({ event: 'halted', machine: this.name });
    });
  }

  private cancelBoot(): void {
    if (this.bootTimer) clearTimeout(this.bootTimer);
    if (this.bootTimer) this.opts.bmc.setActivity({ booting: false });
    this.bootTimer = undefined;
  }

  /** Node updates of one machine happen in order (a halt never overtakes a boot). */
  private serial(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      this.opts.emit({ event: 'error', machine: this.name, message: errorMessage(err) });
    });
  }
}
