import type { Logger } from 'pino';
import { BmcProtocolError } from '../errors.js';
import type { RedfishAuth } from './auth.js';
import { isRecord, linkField, statusError, stringField } from './messages.js';
import type { Operation } from '../operation.js';
import type { RedfishTransport } from './transport.js';

export const REDFISH_POWER_STATES = ['On', 'Off', 'PoweringOn', 'PoweringOff', 'Paused'] as const;
export type RedfishPowerState = (typeof REDFISH_POWER_STATES)[number];

export interface ResetAction {
  /** Where the ComputerSystem.Reset action is POSTed. */
  target: string;
  /** The ResetType values given inline, or undefined. */
  inlineValues: string[] | undefined;
  /** The @Redfish.ActionInfo resource that lists them instead, or undefined. */
  actionInfo: string | undefined;
}

export interface SystemView {
  path: string;
  powerState: RedfishPowerState;
  reset: ResetAction | undefined;
}

/**
 * The one ComputerSystem a driver powers: found through the service root (the address's
 * system path, or the only member of the Systems collection) and read fresh for every
 * power state.
 */
export class RedfishSystem {
  private path: string | undefined;
  private readonly actionInfoValues = new Map<string, string[] | undefined>();

  constructor(
    private readonly auth: RedfishAuth,
    private readonly transport: RedfishTransport,
    private readonly configuredPath: string | undefined,
    private readonly log: Logger,
  ) {}

  async read(op: Operation): Promise<SystemView> {
    const path = await this.systemPath(op);
    const res = await this.auth.request(op, { method: 'GET', path });
    if (res.status === 404) {
      throw new BmcProtocolError(`the BMC has no system at ${path} (404)`, {
        address: op.endpoint,
        operation: op.operation,
        status: 404,
        hint: 'check the system path in the address, e.g. /redfish/v1/Systems/1',
      });
    }
    if (res.status !== 200) throw statusError(this.place(op), 'reading the system', res);
    return { path, ...parseSystem(op, path, res.body) };
  }

  /** The system resource as the BMC answers it, for what lies beyond the power state (its chassis). */
  async resource(op: Operation): Promise<unknown> {
    const path = await this.systemPath(op);
    const res = await this.auth.request(op, { method: 'GET', path });
    if (res.status !== 200) throw statusError(this.place(op), 'reading the system', res);
    return res.body;
  }

  /**
   * The ResetType values the BMC allows: inline, else from its ActionInfo resource, else
   * undefined (the BMC does not say; the caller tries and reads the answer).
   */
  async allowedResetTypes(op: Operation, reset: ResetAction): Promise<string[] | undefined> {
    if (reset.inlineValues !== undefined) return reset.inlineValues;
    if (reset.actionInfo === undefined) return undefined;
    if (this.actionInfoValues.has(reset.actionInfo)) return this.actionInfoValues.get(reset.actionInfo);
    const res = await this.auth.request(op, { method: 'GET', path: reset.actionInfo });
    let values: string[] | undefined;
    if (res.status === 200 && isRecord(res.body) && Array.isArray(res.body.Parameters)) {
      const parameters: unknown[] = res.body.Parameters;
      const parameter = parameters.find((p) => stringField(p, 'Name') === 'ResetType');
      values = isRecord(parameter) ? stringArray(parameter.AllowableValues) : undefined;
    }
    if (values === undefined) this.log.info({ actionInfo: reset.actionInfo, status: res.status }, 'the Reset ActionInfo lists no ResetType values');
    this.actionInfoValues.set(reset.actionInfo, values);
    return values;
  }

  private async systemPath(op: Operation): Promise<string> {
    if (this.path !== undefined) return this.path;
    const root = await this.auth.serviceRoot(op);
    this.path = this.configuredPath ?? (await this.onlySystem(op, root));
    return this.path;
  }

  private async onlySystem(op: Operation, root: Record<string, unknown>): Promise<string> {
    const collection = linkField(root, 'Systems');
    if (collection === undefined) throw new BmcProtocolError('the service root links no Systems collection', { address: op.endpoint, operation: op.operation });
    const res = await this.auth.request(op, { method: 'GET', path: collection });
    if (res.status !== 200) throw statusError(this.place(op), 'listing the systems', res);
    const list: unknown = isRecord(res.body) ? res.body.Members : undefined;
    const members = Array.isArray(list) ? list.map((m: unknown) => stringField(m, '@odata.id')) : undefined;
    if (members === undefined || members.some((m) => m === undefined)) {
      throw new BmcProtocolError(`GET ${collection} did not answer a collection with Members`, { address: op.endpoint, operation: op.operation });
    }
    const only = members[0];
    if (members.length !== 1 || only === undefined) {
      const listed = members.length === 0 ? 'none' : members.join(', ');
      throw new BmcProtocolError(`the address names no system and the BMC has ${members.length} (${listed})`, {
        address: op.endpoint,
        operation: op.operation,
        hint: `put the system path in the address, e.g. ${op.endpoint}${members[0] ?? '/redfish/v1/Systems/1'}`,
      });
    }
    return this.transport.sameOriginPath(only) ?? only;
  }

  private place(op: Operation) {
    return { operation: op.operation, endpoint: op.endpoint, redact: this.transport.redact };
  }
}

function parseSystem(op: Operation, path: string, body: unknown): Omit<SystemView, 'path'> {
  const state = stringField(body, 'PowerState');
  if (state === undefined || !(REDFISH_POWER_STATES as readonly string[]).includes(state)) {
    throw new BmcProtocolError(`GET ${path} reported ${state === undefined ? 'no PowerState' : `the unknown PowerState ${JSON.stringify(state)}`}`, {
      address: op.endpoint,
      operation: op.operation,
    });
  }
  const actions = isRecord(body) ? body.Actions : undefined;
  const action = isRecord(actions) ? actions['#ComputerSystem.Reset'] : undefined;
  const target = stringField(action, 'target');
  const reset =
    target === undefined || !isRecord(action)
      ? undefined
      : { target, inlineValues: stringArray(action['ResetType@Redfish.AllowableValues']), actionInfo: stringField(action, '@Redfish.ActionInfo') };
  return { powerState: state as RedfishPowerState, reset };
}

function stringArray(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const strings = value.filter((v): v is string => typeof v === 'string');
  return strings.length === 0 ? undefined : strings;
}
