import type { FakeSystem } from './system.js';

/** The JSON documents the fake serves, shaped like DMTF's schemas (the parts clients read). */

export const ROOT = '/redfish/v1';
export const SYSTEMS = `${ROOT}/Systems`;
export const SESSION_SERVICE = `${ROOT}/SessionService`;
export const SESSIONS = `${SESSION_SERVICE}/Sessions`;
export const TASK_SERVICE = `${ROOT}/TaskService`;
export const TASK_MONITORS = `${TASK_SERVICE}/TaskMonitors`;
export const TASKS = `${TASK_SERVICE}/Tasks`;

export type Json = Record<string, unknown>;

export function serviceRoot(opts: { sessionService: boolean; linksSessions: boolean }): Json {
  return {
    '@odata.id': ROOT,
    '@odata.type': '#ServiceRoot.v1_11_0.ServiceRoot',
    Id: 'RootService',
    Name: 'bamel Redfish fake',
    RedfishVersion: '1.15.0',
    UUID: '5a3b5a2e-0b8f-4c49-9d7e-6d1f3a0b6c11',
    Systems: { '@odata.id': SYSTEMS },
    Chassis: { '@odata.id': `${ROOT}/Chassis` },
    TaskService: { '@odata.id': TASK_SERVICE },
    ...(opts.sessionService ? { SessionService: { '@odata.id': SESSION_SERVICE } } : {}),
    Links: opts.linksSessions ? { Sessions: { '@odata.id': SESSIONS } } : {},
  };
}

export function collection(id: string, type: string, name: string, members: string[]): Json {
  return {
    '@odata.id': id,
    '@odata.type': `#${type}.${type}`,
    Name: name,
    'Members@odata.count': members.length,
    Members: members.map((m) => ({ '@odata.id': m })),
  };
}

export function systemPath(system: FakeSystem): string {
  return `${SYSTEMS}/${encodeURIComponent(system.id)}`;
}

export function computerSystem(system: FakeSystem): Json {
  const path = systemPath(system);
  const reset: Json = { target: `${path}/Actions/ComputerSystem.Reset` };
  if (system.has('actioninfo-only')) reset['@Redfish.ActionInfo'] = `${path}/ResetActionInfo`;
  else if (!system.has('no-allowable-values')) reset['ResetType@Redfish.AllowableValues'] = system.allowedResetTypes();
  return {
    '@odata.id': path,
    '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
    Id: system.id,
    Name: system.machine,
    SystemType: 'Physical',
    PowerState: system.reportedPowerState(),
    Status: { State: 'Enabled', Health: 'OK' },
    Links: { Chassis: [{ '@odata.id': `${ROOT}/Chassis/${encodeURIComponent(system.id)}` }] },
    Actions: { '#ComputerSystem.Reset': reset },
  };
}

export function resetActionInfo(system: FakeSystem): Json {
  return {
    '@odata.id': `${systemPath(system)}/ResetActionInfo`,
    '@odata.type': '#ActionInfo.v1_3_0.ActionInfo',
    Id: 'ResetActionInfo',
    Name: 'Reset Action Info',
    Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: system.allowedResetTypes() }],
  };
}

export function sessionService(): Json {
  return {
    '@odata.id': SESSION_SERVICE,
    '@odata.type': '#SessionService.v1_1_8.SessionService',
    Id: 'SessionService',
    Name: 'Session Service',
    ServiceEnabled: true,
    SessionTimeout: 1800,
    Sessions: { '@odata.id': SESSIONS },
  };
}

export function session(id: string, username: string): Json {
  return { '@odata.id': `${SESSIONS}/${id}`, '@odata.type': '#Session.v1_6_0.Session', Id: id, Name: 'User Session', UserName: username };
}

export type TaskState = 'Running' | 'Completed' | 'Exception';

export function task(id: string, state: TaskState, messages: { id: string; text: string }[]): Json {
  return {
    '@odata.id': `${TASKS}/${id}`,
    '@odata.type': '#Task.v1_7_0.Task',
    Id: id,
    Name: 'Reset task',
    TaskState: state,
    TaskStatus: state === 'Exception' ? 'Critical' : 'OK',
    TaskMonitor: `${TASK_MONITORS}/${id}`,
    Messages: messages.map((m) => ({ MessageId: m.id, Message: m.text, Severity: 'Critical' })),
  };
}

/** A Redfish error body: `error` with a code, a message and @Message.ExtendedInfo. */
export function errorBody(messageId: string, message: string, resolution?: string): Json {
  return {
    error: {
      code: messageId,
      message,
      '@Message.ExtendedInfo': [
        {
          '@odata.type': '#Message.v1_1_2.Message',
          MessageId: messageId,
          Message: message,
          Severity: 'Critical',
          ...(resolution === undefined ? {} : { Resolution: resolution }),
        },
      ],
    },
  };
}
