import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ParsedInventory, ParsedMachine } from '../api/inventory.js';
import type { BmcCredentials } from '../power/credentials.js';
import { IpmiSimBmc } from './ipmi-sim.js';
import { SimMachine, type KubeletHooks, type MachineEvent, type MachineFaults } from './machine.js';
import { QUIRK_PROFILES, RedfishFakeServer, type QuirkProfile } from './redfish-fake.js';
import type { SimPowerState, SimulatedBmc } from './types.js';
import { drawOf } from './chassis.js';

/** Inventory label naming the Redfish fake's quirk profiles for a machine, dot-separated (a label value holds no comma). */
export const QUIRKS_LABEL = 'sim.bamel.io/redfish-quirks';

export interface DatacenterOptions {
  inventory: ParsedInventory;
  credentials: Map<string, BmcCredentials>;
  kubelet: KubeletHooks;
  /** Which machines were left running (their Nodes are still alive). */
  running: Set<string>;
  bootScale: number;
  bootJitter: number;
  defaultBootSeconds: number;
  /** How long the simulated OS takes to shut down after a graceful power-off request. */
  gracefulShutdownMs: number;
  emit: (e: MachineEvent) => void;
  logger: Logger;
}

/**
 * The simulated datacenter: one BMC per inventory machine on the address the inventory
 * names (IPMI machines on OpenIPMI's ipmi_sim, Redfish machines on the project's Redfish
 * fake, one fake server per host:port serving each of its systems), each driving a
 * SimMachine whose Node joins the cluster after it boots.
 */
export class Datacenter {
  readonly machines = new Map<string, SimMachine>();
  private readonly redfishServers = new Map<string, RedfishFakeServer>();
  private workDir: string | undefined;

  private constructor(private readonly opts: DatacenterOptions) {}

  static async start(opts: DatacenterOptions): Promise<Datacenter> {
    const dc = new Datacenter(opts);
    try {
      await dc.startAll();
    } catch (err) {
      await dc.stop();
      throw err;
    }
    return dc;
  }

  private async startAll(): Promise<void> {
    this.workDir = await mkdtemp(join(tmpdir(), 'bamel-sim-'));
    for (const m of this.opts.inventory.machines) {
      const creds = this.opts.credentials.get(m.name);
      if (!creds) throw new Error(`machines[${m.index}] (${m.name}): no credentials`);
      const initialPower: SimPowerState = this.opts.running.has(m.name) ? 'on' : 'off';
      const bmc = await this.startBmc(m, creds, initialPower);
      const machine = new SimMachine({
        machine: m,
        bmc,
        kubelet: this.opts.kubelet,
        bootScale: this.opts.bootScale,
        bootJitter: this.opts.bootJitter,
        defaultBootSeconds: this.opts.defaultBootSeconds,
        emit: this.opts.emit,
      });
      if (initialPower === 'on') machine.adoptRunning();
      this.machines.set(m.name, machine);
    }
  }

  private async startBmc(m: ParsedMachine, creds: BmcCredentials, initialPower: SimPowerState): Promise<SimulatedBmc> {
    const addr = m.bmc.parsedAddress;
    const credentials = { username: creds.username, password: creds.reveal() };
    if (addr.driver === 'ipmi') {
      return IpmiSimBmc.start({
        machine: m.name,
        host: addr.host,
        port: addr.port,
        credentials,
        initialPower,
        draw: drawOf(m.power),
        gracefulShutdownMs: this.opts.gracefulShutdownMs,
        workDir: join(this.workDir ?? tmpdir(), m.name),
        logger: this.opts.logger.child({ machine: m.name }),
      });
    }
    const key = `${addr.host}:${addr.port}`;
    let server = this.redfishServers.get(key);
    if (!server) {
      if (addr.protocol === 'https') {
        throw new Error(`machines[${m.index}] (${m.name}).bmc.address: the simulator serves Redfish over http only; use redfish+http://`);
      }
      server = new RedfishFakeServer({ host: addr.host, port: addr.port, logger: this.opts.logger.child({ bmc: key }) });
      await server.start();
      this.redfishServers.set(key, server);
    }
    const id = addr.systemPath ? (addr.systemPath.split('/').filter(Boolean).at(-1) ?? m.name) : m.name;
    const quirks = (m.labels[QUIRKS_LABEL] ?? '')
      .split('.')
      .map((q) => q.trim())
      .filter(Boolean);
    const unknown = quirks.filter((q) => !(QUIRK_PROFILES as readonly string[]).includes(q));
    if (unknown.length > 0) {
      throw new Error(`machines[${m.index}] (${m.name}).labels.${QUIRKS_LABEL}: unknown quirk profile ${unknown.map((q) => JSON.stringify(q)).join(', ')}; expected some of ${QUIRK_PROFILES.join(', ')}, separated by dots`);
    }
    return server.addSystem({
      id,
      machine: m.name,
      credentials,
      ...(quirks.length > 0 ? { profile: quirks as QuirkProfile[] } : {}),
      initialPower,
      draw: drawOf(m.power),
      gracefulShutdownMs: this.opts.gracefulShutdownMs,
    });
  }

  machine(name: string): SimMachine {
    const m = this.machines.get(name);
    if (!m) throw new Error(`no machine named ${name} in the inventory`);
    return m;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.machines.values()].map((m) => m.stop()));
    await Promise.allSettled([...this.redfishServers.values()].map((s) => s.stop()));
    if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
  }
}

/** The simulator's control API: tests and the demo inject faults and press power buttons. */
export async function controlServer(dc: Datacenter, logger: Logger): Promise<FastifyInstance> {
  // pino's Logger and fastify's logger type differ only in generics fastify cannot infer.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const app = Fastify({ loggerInstance: logger.child({ component: 'sim-control' }) as FastifyBaseLogger });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/machines', async () => [...dc.machines.values()].map((m) => m.state));
  app.get<{ Params: { name: string } }>('/machines/:name', async (req, reply) => {
    const m = dc.machines.get(req.params.name);
    if (!m) return reply.code(404).send({ error: `no machine ${req.params.name}` });
    return m.state;
  });
  app.put<{ Params: { name: string }; Body: MachineFaults }>(
    '/machines/:name/faults',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            unreachable: { type: 'boolean' },
            wrongPassword: { type: 'boolean' },
            powerOnFails: { type: 'boolean' },
            hang: { type: 'boolean' },
            slowMs: { type: 'integer', minimum: 0, maximum: 600000 },
            neverJoins: { type: 'boolean' },
          },
        },
      },
    },
    async (req, reply) => {
      const m = dc.machines.get(req.params.name);
      if (!m) return reply.code(404).send({ error: `no machine ${req.params.name}` });
      await m.setFaults(req.body);
      return m.state;
    },
  );
  app.put<{ Params: { name: string }; Body: { load: number } }>(
    '/machines/:name/load',
    { schema: { body: { type: 'object', required: ['load'], additionalProperties: false, properties: { load: { type: 'number', minimum: 0, maximum: 1 } } } } },
    async (req, reply) => {
      const m = dc.machines.get(req.params.name);
      if (!m) return reply.code(404).send({ error: `no machine ${req.params.name}` });
      m.setLoad(req.body.load);
      return m.state;
    },
  );
  app.post<{ Params: { name: string }; Body: { state: SimPowerState } }>(
    '/machines/:name/power',
    {
      schema: {
        body: { type: 'object', required: ['state'], additionalProperties: false, properties: { state: { type: 'string', enum: ['on', 'off'] } } },
      },
    },
    async (req, reply) => {
      const m = dc.machines.get(req.params.name);
      if (!m) return reply.code(404).send({ error: `no machine ${req.params.name}` });
      await m.pressPower(req.body.state);
      return m.state;
    },
  );
  return app;
}
