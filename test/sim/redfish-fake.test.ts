import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { QUIRK_PROFILES, RedfishFakeServer, type AddSystemOptions } from '../../sim/redfish-fake.js';
import type { SimPowerEvent } from '../../sim/types.js';

const USER = 'admin';
const PASSWORD = 'fake-Pa55word';
const basic = (user = USER, password = PASSWORD) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function started(tt: { teardown(fn: () => unknown): void }, logger?: pino.Logger): Promise<RedfishFakeServer> {
  const server = new RedfishFakeServer({ host: '127.0.0.1', port: 0, ...(logger === undefined ? {} : { logger }) });
  await server.start();
  tt.teardown(() => server.stop());
  return server;
}

function system(server: RedfishFakeServer, opts: Partial<AddSystemOptions> = {}) {
  return server.addSystem({ id: '1', machine: 'm1', credentials: { username: USER, password: PASSWORD }, ...opts });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown> | undefined;
}

async function call(server: RedfishFakeServer, method: 'GET' | 'POST' | 'DELETE' | 'PATCH', path: string, opts: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {}): Promise<Answer> {
  const res = await request(`${server.url}${path}`, {
    method,
    headers: { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    body: opts.body === undefined ? null : JSON.stringify(opts.body),
    ...(opts.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(opts.timeoutMs) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

const reset = (server: RedfishFakeServer, type: string, id = '1') =>
  call(server, 'POST', `/redfish/v1/Systems/${id}/Actions/ComputerSystem.Reset`, { headers: { authorization: basic() }, body: { ResetType: type } });

t.test('service root, Systems and the ComputerSystem', async (t) => {
  const server = await started(t);
  system(server);
  t.match((await call(server, 'GET', '/redfish')).body, { v1: '/redfish/v1/' });
  const root = await call(server, 'GET', '/redfish/v1/');
  t.equal(root.status, 200);
  t.equal(root.headers['odata-version'], '4.0');
  t.match(root.body, { Systems: { '@odata.id': '/redfish/v1/Systems' }, SessionService: { '@odata.id': '/redfish/v1/SessionService' }, Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } });
  t.equal((await call(server, 'GET', '/redfish/v1/Systems')).status, 401, 'the collection needs credentials');
  t.match((await call(server, 'GET', '/redfish/v1/Systems', { headers: { authorization: basic() } })).body, { Members: [{ '@odata.id': '/redfish/v1/Systems/1' }], 'Members@odata.count': 1 });
  const sys = await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } });
  t.match(sys.body, {
    Id: '1',
    Name: 'm1',
    PowerState: 'Off',
    Actions: { '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', 'ResetType@Redfish.AllowableValues': ['On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi'] } },
  });
  const missing = await call(server, 'GET', '/redfish/v1/Managers', { headers: { authorization: basic() } });
  t.equal(missing.status, 404);
  t.match(missing.body, { error: { '@Message.ExtendedInfo': [{ MessageId: /ResourceNotFound/ }] } });
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { headers: { authorization: basic() } })).status, 405);
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/9', { headers: { authorization: basic() } })).status, 404);
});

t.test('each system is its own BMC: its credentials see only its system', async (t) => {
  const server = await started(t);
  system(server);
  server.addSystem({ id: 'two', machine: 'm2', credentials: { username: 'other', password: 'other-pass' } });
  const mine = await call(server, 'GET', '/redfish/v1/Systems', { headers: { authorization: basic() } });
  t.match(mine.body, { Members: [{ '@odata.id': '/redfish/v1/Systems/1' }] });
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/two', { headers: { authorization: basic() } })).status, 401);
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/two', { headers: { authorization: basic('other', 'other-pass') } })).status, 200);
  t.equal(server.addressOf('two'), `${server.url.replace(/^http/, 'redfish+http')}/redfish/v1/Systems/two`);
  t.throws(() => server.addSystem({ id: 'two', machine: 'x', credentials: { username: 'a', password: 'b' } }), /already has a system two/);
});

t.test('sessions: create, use, delete', async (t) => {
  const server = await started(t);
  system(server);
  const login = await call(server, 'POST', '/redfish/v1/SessionService/Sessions', { body: { UserName: USER, Password: PASSWORD } });
  t.equal(login.status, 201);
  const token = login.headers['x-auth-token'] as string;
  const location = login.headers.location as string;
  t.match(location, /^\/redfish\/v1\/SessionService\/Sessions\/\w+$/);
  t.match(login.body, { UserName: USER });
  t.notOk(JSON.stringify(login.body).includes(PASSWORD));
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { 'x-auth-token': token } })).status, 200);
  t.match((await call(server, 'GET', '/redfish/v1/SessionService/Sessions', { headers: { 'x-auth-token': token } })).body, { 'Members@odata.count': 1 });
  t.equal((await call(server, 'POST', '/redfish/v1/SessionService/Sessions', { body: { UserName: USER, Password: 'nope' } })).status, 401);
  t.equal((await call(server, 'POST', '/redfish/v1/SessionService/Sessions', { body: { UserName: USER } })).status, 400);
  t.equal((await call(server, 'DELETE', location, { headers: { 'x-auth-token': token } })).status, 204);
  t.equal(server.sessionCount, 0);
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { 'x-auth-token': token } })).status, 401, 'the token is gone');
});

t.test('session-only refuses Basic; no-session-service has no SessionService', async (t) => {
  const server = await started(t);
  system(server, { profile: 'session-only' });
  const refused = await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } });
  t.equal(refused.status, 401);
  t.notOk(refused.headers['www-authenticate'], 'Basic is not offered');

  const other = await started(t);
  system(other, { profile: 'no-session-service' });
  const root = await call(other, 'GET', '/redfish/v1');
  t.notOk(root.body?.SessionService);
  t.same(root.body?.Links, {});
  t.equal((await call(other, 'POST', '/redfish/v1/SessionService/Sessions', { body: { UserName: USER, Password: PASSWORD } })).status, 404);
  t.equal((await call(other, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } })).status, 200);
});

t.test('not-acceptable-identity answers 406 to identity only', async (t) => {
  const server = await started(t);
  system(server, { profile: 'not-acceptable-identity' });
  t.equal((await call(server, 'GET', '/redfish/v1', { headers: { 'accept-encoding': 'identity' } })).status, 406);
  t.equal((await call(server, 'GET', '/redfish/v1')).status, 200);
});

t.test('Reset: events for each request, and later ones when a change lands', async (t) => {
  const server = await started(t);
  const bmc = system(server, { gracefulShutdownMs: 100 });
  const events: SimPowerEvent[] = [];
  const states: string[] = [];
  bmc.onPower((e) => events.push(e));
  const unsubscribe = bmc.onStateChange((s) => states.push(s));
  t.equal((await reset(server, 'On')).status, 204);
  t.equal(bmc.power, 'on');
  t.equal((await reset(server, 'On')).status, 204, 'already on is fine for a generic BMC');
  t.equal((await reset(server, 'GracefulShutdown')).status, 204);
  t.equal(bmc.power, 'on', 'the OS is still shutting down');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(bmc.power, 'off');
  t.match(events, [
    { machine: 'm1', action: 'on', result: 'ok', state: 'on' },
    { action: 'on', result: 'already', state: 'on' },
    { action: 'graceful-off', result: 'ok', state: 'on' },
    { action: 'graceful-off', result: 'ok', state: 'off', detail: /^completed/ },
  ]);
  t.same(states, ['on', 'off']);
  unsubscribe();

  events.length = 0;
  await bmc.setPowerDirect('on');
  t.equal(bmc.power, 'on');
  t.equal(events.length, 0, 'a person at the machine makes no BMC event');
  t.equal((await reset(server, 'ForceRestart')).status, 204);
  t.equal((await reset(server, 'Nmi')).status, 204);
  const bad = await reset(server, 'Explode');
  t.equal(bad.status, 400);
  t.match(bad.body, { error: { '@Message.ExtendedInfo': [{ MessageId: /ActionParameterNotSupported/ }] } });
  t.match(events, [{ action: 'force-restart', result: 'ok' }, { action: 'nmi', result: 'ok' }, { action: 'Explode', result: 'refused' }]);
});

t.test('a Reset with wrong credentials is a refused event', async (t) => {
  const server = await started(t);
  const bmc = system(server);
  const events: SimPowerEvent[] = [];
  bmc.onPower((e) => events.push(e));
  await bmc.setFaults({ wrongPassword: true });
  t.equal((await reset(server, 'On')).status, 401);
  t.match(events, [{ action: 'on', result: 'refused', detail: 'authentication', state: 'off' }]);
});

t.test('powerOnFails: 500 with a message, the machine stays off', async (t) => {
  const server = await started(t);
  const bmc = system(server);
  await bmc.setFaults({ powerOnFails: true });
  const res = await reset(server, 'On');
  t.equal(res.status, 500);
  t.match(res.body, { error: { '@Message.ExtendedInfo': [{ Message: /did not power on/ }] } });
  t.equal(bmc.power, 'off');
  await bmc.setFaults({});
  t.equal((await reset(server, 'On')).status, 204);
});

t.test('task-monitor: 202, a running task, then Completed', async (t) => {
  const server = await started(t);
  const bmc = system(server, { profile: 'task-monitor', quirks: { taskMs: 150, retryAfterSeconds: 2 } });
  const accepted = await reset(server, 'On');
  t.equal(accepted.status, 202);
  t.equal(accepted.headers['retry-after'], '2');
  const monitor = accepted.headers.location as string;
  const running = await call(server, 'GET', monitor, { headers: { authorization: basic() } });
  t.equal(running.status, 202);
  t.match(running.body, { TaskState: 'Running' });
  t.equal(bmc.power, 'off');
  await new Promise((r) => setTimeout(r, 200));
  const done = await call(server, 'GET', monitor, { headers: { authorization: basic() } });
  t.equal(done.status, 200);
  t.match(done.body, { TaskState: 'Completed', TaskStatus: 'OK' });
  t.equal(bmc.power, 'on');
  const taskPath = String(done.body?.['@odata.id']);
  t.match((await call(server, 'GET', taskPath, { headers: { authorization: basic() } })).body, { TaskState: 'Completed' });
  t.equal((await call(server, 'GET', monitor)).status, 401, 'monitors need credentials');
});

t.test('transitional and conflict-after-off', async (t) => {
  const server = await started(t);
  const bmc = system(server, { profile: ['transitional', 'conflict-after-off'], poweringOnMs: 100, initialPower: 'on', quirks: { conflictWindowMs: 200 } });
  const state = async () => (await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } })).body?.PowerState;
  t.equal((await reset(server, 'ForceOff')).status, 204);
  t.equal(await state(), 'PoweringOff');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(await state(), 'Off');
  const conflict = await reset(server, 'On');
  t.equal(conflict.status, 409);
  t.match(conflict.body, { error: { '@Message.ExtendedInfo': [{ MessageId: /SYS518/ }] } });
  await new Promise((r) => setTimeout(r, 250));
  t.equal((await reset(server, 'On')).status, 204);
  t.equal(await state(), 'PoweringOn');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(bmc.power, 'on');
});

t.test('no-force-on, actioninfo-only and no-allowable-values', async (t) => {
  const server = await started(t);
  system(server, { profile: ['no-force-on', 'actioninfo-only'] });
  server.addSystem({ id: '2', machine: 'm2', credentials: { username: USER, password: PASSWORD }, profile: 'no-allowable-values' });
  const one = await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } });
  t.same(one.body?.Actions, { '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', '@Redfish.ActionInfo': '/redfish/v1/Systems/1/ResetActionInfo' } });
  const info = await call(server, 'GET', '/redfish/v1/Systems/1/ResetActionInfo', { headers: { authorization: basic() } });
  t.match(info.body, { Parameters: [{ Name: 'ResetType', AllowableValues: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi'] }] });
  t.equal((await reset(server, 'ForceOn')).status, 400);
  const two = await call(server, 'GET', '/redfish/v1/Systems/2', { headers: { authorization: basic() } });
  t.same(two.body?.Actions, { '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/2/Actions/ComputerSystem.Reset' } });
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/2/ResetActionInfo', { headers: { authorization: basic() } })).status, 404);
});

t.test('faults: hang, unreachable, a stopped system', async (t) => {
  const server = await started(t);
  const bmc = system(server);
  await bmc.setFaults({ hang: true });
  await t.rejects(call(server, 'GET', '/redfish/v1', { timeoutMs: 300 }), { name: /TimeoutError|AbortError/ });
  await bmc.setFaults({ unreachable: true });
  await t.rejects(call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } }), /other side closed|socket|ECONNRESET/i);
  await bmc.setFaults({});
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } })).status, 200);
  await bmc.stop();
  t.equal((await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } })).status, 401, 'nobody owns these credentials any more');
});

t.test('the logs never hold the password or a token', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const server = await started(t, pino({ level: 'trace' }, sink));
  system(server);
  const login = await call(server, 'POST', '/redfish/v1/SessionService/Sessions', { body: { UserName: USER, Password: PASSWORD } });
  const token = login.headers['x-auth-token'] as string;
  await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { 'x-auth-token': token } });
  await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic() } });
  await call(server, 'GET', '/redfish/v1/Systems/1', { headers: { authorization: basic(USER, 'wrong-password') } });
  const text = lines.join('');
  t.ok(lines.length >= 4, `${lines.length} log lines`);
  t.notMatch(text, PASSWORD);
  t.notMatch(text, 'wrong-password');
  t.notMatch(text, token);
  t.notMatch(text, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
});

t.test('the profile list is complete and unique', async (t) => {
  t.equal(new Set(QUIRK_PROFILES).size, QUIRK_PROFILES.length);
  t.ok(QUIRK_PROFILES.includes('generic'));
});
