import t from 'tap';
import * as k8s from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { TrafficReport } from '../../api/v1alpha1/trafficreport.js';
import { AgentMetrics, TrafficAgent, type TrafficSource } from '../../bpf/agent.js';
import { cgroupId } from '../../bpf/cgroups.js';
import { zeroCounters, type TrafficCounters } from '../../bpf/counters.js';

/**
 * What the agent writes when a node has more pods with traffic than a report holds: the
 * busiest within the cap, `omittedPods`, one warning, a metric; and back to the full list
 * (without `omittedPods`) when the pods quiet down. Against a small HTTP server that answers
 * as the API server does for the two calls the agent makes (no cluster needed), and pod
 * cgroups made as plain directories (a cgroup id is the directory's inode number).
 */

async function fakeApiServer(t: { teardown(fn: () => unknown): void }) {
  const applied: TrafficReport[] = [];
  const body = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (d: Buffer) => (s += d.toString()));
      req.on('end', () => resolve(s));
    });
  const server = createServer((req, res) => {
    void (async () => {
      const text = await body(req);
      if (req.method === 'GET' && req.url?.startsWith('/api/v1/nodes/')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', uid: 'node-uid-1' } }));
        return;
      }
      if (req.method === 'PATCH' && req.url?.startsWith('/apis/autoscaling.bamel.io/v1alpha1/trafficreports/n1')) {
        applied.push(JSON.parse(text) as TrafficReport);
        res.writeHead(200, { 'content-type': 'application/json' }).end(text);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    // client-node takes plain HTTP only with skipTLSVerify.
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'agent' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'agent' }],
    currentContext: 'fake',
  });
  return { kc, applied };
}

t.test('more pods with traffic than the cap: the busiest, omittedPods, one warning; then the full list again', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bamel-cgroups-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pods = Array.from({ length: 30 }, (_, i) => {
    const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const dir = join(root, 'kubepods', 'burstable', `pod${uid}`, 'c');
    mkdirSync(dir, { recursive: true });
    return { uid, id: cgroupId(dir) };
  });
  // Pod i receives i + 1 requests per second; `active` pods have traffic.
  let active = pods.length;
  let seconds = 0;
  const totals = (): Map<bigint, TrafficCounters> =>
    new Map(
      pods.map((p, i) => {
        const c = zeroCounters();
        const busy = i < active ? seconds : 0;
        c.httpRequests = (i + 1) * busy;
        c.rxPackets = c.rxBytes = c.txPackets = c.txBytes = (i + 1) * busy;
        return [p.id, c];
      }),
    );
  let frozen = totals();
  const source: TrafficSource = { read: () => frozen, overflow: () => ({ countersFull: 0, h2Resync: 0 }), forget: () => 0 };

  const { kc, applied } = await fakeApiServer(t);
  const lines: { level: number; msg: string; omittedPods?: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
  const metrics = new AgentMetrics(new Registry(), { defaultMetrics: false });
  let now = 1_000_000;
  const agent = new TrafficAgent({ source, cgroupRoot: root, nodeName: 'n1', pollIntervalMs: 1000, reportIntervalMs: 1000, kc, metrics, logger, now: () => now, reportLimits: { maxPods: 10, maxBytes: 1024 * 1024 } });

  await agent.poll(); // the baseline
  seconds = 1;
  frozen = totals();
  now += 1000;
  await agent.poll();
  t.equal(applied.length, 1, `a report written (${JSON.stringify(lines)})`);
  const first = applied[0]?.spec;
  t.equal(first?.pods.length, 10, 'at most maxPods pods');
  t.equal(first?.omittedPods, 20, 'and how many were left out');
  t.same(first?.pods.map((p) => p.requestsPerSecond).sort((a, b) => a - b), [21, 22, 23, 24, 25, 26, 27, 28, 29, 30], 'the busiest ten');
  t.equal((await metrics.registry.getSingleMetric('bamel_agent_report_omitted_pods')?.get())?.values[0]?.value, 20, 'bamel_agent_report_omitted_pods');
  const warnings = lines.filter((l) => l.level === 40);
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0]?.msg, /^TrafficReport capped: 20 of 30 pods with traffic left out \(the ones with the fewest requests, then bytes, per second\), to keep the report within 10 pods and 1048576 bytes; spec\.omittedPods says how many/);

  // Still capped: written again when rates change, without another warning.
  seconds = 3;
  frozen = totals();
  now += 1000;
  await agent.poll();
  t.equal(applied.length, 2);
  t.equal(applied[1]?.spec.omittedPods, 20);
  t.equal(lines.filter((l) => l.level === 40).length, 1, 'no second warning while it stays capped');

  // Most pods go quiet: every pod with traffic fits, and omittedPods is gone.
  active = 4;
  seconds = 5;
  const before = frozen;
  frozen = new Map([...totals()].map(([id, c], i) => [id, i < active ? c : (before.get(id) as TrafficCounters)]));
  now += 1000;
  await agent.poll();
  t.equal(applied.length, 3);
  t.equal(applied[2]?.spec.pods.length, 4);
  t.notOk('omittedPods' in (applied[2]?.spec ?? {}), 'no omittedPods (server-side apply drops the field)');
  t.ok(lines.some((l) => l.msg === 'TrafficReport no longer capped: every pod with traffic is in it'));
  t.equal((await metrics.registry.getSingleMetric('bamel_agent_report_omitted_pods')?.get())?.values[0]?.value, 0);
  await agent.stop();
});
