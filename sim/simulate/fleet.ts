import type { ParsedMachine } from '../../api/inventory.js';
import type { PowerDriver, PowerResult } from '../../power/driver.js';

/**
 * The machines of the simulation as their BMCs and kubelets behave: power-on is carried out
 * at once by the BMC, and the machine's Node registers Ready after its boot time (inventory
 * `bootSeconds`, 240 s when absent, stretched or shrunk by up to ±jitter at random with
 * the seed); power-off takes the power away at once, and with it the Node (a kubelet that
 * stops is a Node that goes NotReady; the controller deletes the Node of a machine that is
 * off, and treats a missing Node as a NotReady one, so removing it is what it would see).
 */

export const DEFAULT_BOOT_SECONDS = 240;

export interface FleetMachine {
  machine: ParsedMachine;
  power: 'on' | 'off';
  /** When its Node registers Ready (virtual ms), while it boots. */
  readyAt?: number;
}

export interface FleetListener {
  poweredOn(name: string, at: number): void;
  poweredOff(name: string, at: number): void;
}

export interface FleetOptions {
  /** Replaces every machine's boot time (the reprovisioning model). */
  bootSeconds?: number;
  /** Relative boot time jitter, 0..1 (0.1: ±10 %). */
  jitter: number;
  random: () => number;
  now: () => number;
}

export class Fleet {
  readonly machines = new Map<string, FleetMachine>();

  constructor(
    machines: readonly ParsedMachine[],
    private readonly opts: FleetOptions,
    private readonly listener: FleetListener,
  ) {
    for (const m of machines) this.machines.set(m.name, { machine: m, power: 'off' });
  }

  bootMs(m: ParsedMachine): number {
    const base = (this.opts.bootSeconds ?? m.bootSeconds ?? DEFAULT_BOOT_SECONDS) * 1000;
    return Math.round(base * (1 + this.opts.jitter * (2 * this.opts.random() - 1)));
  }

  /** A machine on from the start with its Node Ready (always-on). */
  startOn(name: string): void {
    const f = this.get(name);
    f.power = 'on';
    this.listener.poweredOn(name, this.opts.now());
  }

  powerOn(name: string): boolean {
    const f = this.get(name);
    if (f.power === 'on') return false;
    f.power = 'on';
    f.readyAt = this.opts.now() + this.bootMs(f.machine);
    this.listener.poweredOn(name, this.opts.now());
    return true;
  }

  powerOff(name: string): boolean {
    const f = this.get(name);
    if (f.power === 'off') return false;
    f.power = 'off';
    delete f.readyAt;
    this.listener.poweredOff(name, this.opts.now());
    return true;
  }

  /** The earliest boot that ends, if any. */
  nextReadyAt(): number | undefined {
    let next: number | undefined;
    for (const f of this.machines.values()) if (f.readyAt !== undefined && (next === undefined || f.readyAt < next)) next = f.readyAt;
    return next;
  }

  /** The machines whose boot ended by `now` (their readyAt is cleared). */
  booted(now: number): ParsedMachine[] {
    const out: ParsedMachine[] = [];
    for (const f of this.machines.values()) {
      if (f.readyAt !== undefined && f.readyAt <= now) {
        delete f.readyAt;
        out.push(f.machine);
      }
    }
    return out;
  }

  /** The BMC of the machine, as the controller's power drivers talk to it. */
  driver(name: string): PowerDriver {
    const result = (state: 'on' | 'off', changed: boolean): PowerResult => ({ state, alreadyInState: !changed, method: state === 'on' ? 'On' : 'ForceOff', durationMs: 0 });
    return {
      kind: 'redfish',
      endpoint: `https://${name}.bmc.simulated:443`,
      status: async () => this.get(name).power,
      powerOn: async () => result('on', this.powerOn(name)),
      powerOff: async () => result('off', this.powerOff(name)),
      close: async () => undefined,
    };
  }

  private get(name: string): FleetMachine {
    const f = this.machines.get(name);
    if (!f) throw new Error(`no machine ${name} in the simulated inventory`);
    return f;
  }
}
