import t from 'tap';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { serveAgentMetrics } from '../../cmd/agent-metrics.js';

/** The agent's /metrics and /healthz on node:http: the routes, answers and content types fastify gave them. */

t.test('/metrics, /healthz, and 404 for anything else', async (t) => {
  const registry = new Registry();
  new Counter({ name: 'bamel_agent_test_total', help: 'a counter', registers: [registry] }).inc(3);
  const server = await serveAgentMetrics('127.0.0.1:0', registry, pino({ level: 'silent' }));
  if (!server) throw new Error('no server');
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}`;

  const metrics = await fetch(`${base}/metrics`);
  t.equal(metrics.status, 200);
  t.equal(metrics.headers.get('content-type'), registry.contentType);
  t.match(await metrics.text(), /^bamel_agent_test_total 3$/m);

  const health = await fetch(`${base}/healthz?verbose=1`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  t.equal((await fetch(`${base}/healthz`, { method: 'HEAD' })).status, 200);

  const missing = await fetch(`${base}/nope`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { message: 'Route GET:/nope not found', error: 'Not Found', statusCode: 404 });
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 404);
});

t.test('"0" turns the listener off; a taken port is an error', async (t) => {
  const registry = new Registry();
  t.equal(await serveAgentMetrics('0', registry, pino({ level: 'silent' })), undefined);
  const first = await serveAgentMetrics('127.0.0.1:0', registry, pino({ level: 'silent' }));
  if (!first) throw new Error('no server');
  t.teardown(() => first.close());
  await t.rejects(serveAgentMetrics(`127.0.0.1:${first.address().port}`, registry, pino({ level: 'silent' })), /EADDRINUSE/);
});
