import t from 'tap';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { PodTraffic, TrafficReport } from '../../api/v1alpha1/trafficreport.js';
import { TrafficReportWriter, type ReportContent } from '../../bpf/report-writer.js';
import { KubeAccess } from '../../kube/kubeconfig.js';

/**
 * The agent's API calls without client-node: the requests as the API server sees them (a
 * server-side apply by the field manager bamel-agent, forced, with the bearer token), the
 * Node's UID read once as the owner, and API errors that say what was being done.
 */

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function apiServer(t: { teardown(fn: () => unknown): void }, answer: (s: Seen) => [number, unknown]) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      const [code, out] = answer(s);
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kc = new KubeAccess({ server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 'agent-token', source: 'test' });
  return { kc, seen };
}

const pod: PodTraffic = { uid: 'u1', namespace: 'ns', name: 'web-1', requestsPerSecond: 2, http2RequestsPerSecond: 0, bytesPerSecond: 300, rxBytesPerSecond: 200, connectionsPerSecond: 1, packetsPerSecond: 4 };
const content: ReportContent = { pods: [pod], omittedPods: 0, observedAt: Date.UTC(2026, 0, 1), intervalSeconds: 5 };

t.test('a server-side apply of the node report, owned by the Node whose UID is read once', async (t) => {
  let nodeExists = false;
  const { kc, seen } = await apiServer(t, (s) => {
    if (s.method === 'GET') return nodeExists ? [200, { kind: 'Node', metadata: { name: 'n1', uid: 'node-uid' } }] : [404, { kind: 'Status', code: 404, message: 'nodes "n1" not found' }];
    return [200, JSON.parse(s.body)];
  });
  const writer = new TrafficReportWriter(kc, 'n1');

  const first = await writer.write({ ...content, pods: [...content.pods] });
  t.notOk(first.metadata?.ownerReferences, 'no Node yet: no owner');
  nodeExists = true;
  await writer.write({ ...content, pods: [...content.pods], omittedPods: 3 });
  await writer.write({ ...content, pods: [] });

  t.same(
    seen.map((s) => `${s.method} ${s.url}`),
    [
      'GET /api/v1/nodes/n1',
      'PATCH /apis/autoscaling.bamel.io/v1alpha1/trafficreports/n1?fieldManager=bamel-agent&force=true',
      'GET /api/v1/nodes/n1',
      'PATCH /apis/autoscaling.bamel.io/v1alpha1/trafficreports/n1?fieldManager=bamel-agent&force=true',
      'PATCH /apis/autoscaling.bamel.io/v1alpha1/trafficreports/n1?fieldManager=bamel-agent&force=true',
    ],
    'the Node is read until it is found, then never again',
  );
  const patch = seen[3] as Seen;
  t.equal(patch.headers['content-type'], 'application/apply-patch+yaml');
  t.equal(patch.headers.authorization, 'Bearer agent-token');
  const body = JSON.parse(patch.body) as TrafficReport;
  t.same(body.metadata, { name: 'n1', labels: { 'app.kubernetes.io/managed-by': 'bamel-agent' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid' }] });
  t.equal(body.apiVersion, 'autoscaling.bamel.io/v1alpha1');
  t.equal(body.kind, 'TrafficReport');
  t.match(body.spec, { nodeName: 'n1', observedAt: '2026-01-01T00:00:00.000Z', intervalSeconds: 5, omittedPods: 3, pods: content.pods });
  t.match(body.spec.agent, /^bamel-agent \S+ on /);
  t.notOk('omittedPods' in (JSON.parse((seen[4] as Seen).body) as TrafficReport).spec, 'no omittedPods when none were left out');
});

t.test('an API error says what was being done, with the Status message', async (t) => {
  const { kc } = await apiServer(t, (s) => (s.method === 'GET' ? [200, { metadata: { uid: 'x' } }] : [422, { kind: 'Status', code: 422, reason: 'Invalid', message: 'spec.pods: Too many' }]));
  await t.rejects(new TrafficReportWriter(kc, 'n1').write(content), { name: 'KubeApiError', statusCode: 422, message: 'applying TrafficReport n1: 422 spec.pods: Too many' });
});

t.test('a request that gets no answer ends at the deadline', async (t) => {
  const server = createServer(() => {
    // never answers
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const kc = new KubeAccess({ server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, source: 'test' });
  const started = Date.now();
  await t.rejects(new TrafficReportWriter(kc, 'n1', 300).write(content), /applying TrafficReport n1: .*(aborted|timeout)/i);
  t.ok(Date.now() - started < 5000, 'within the deadline (the Node read and the apply each have 300 ms)');
});
