import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import t from 'tap';
import { ControllerMetrics } from '../../controller/metrics.js';
import { ExtenderMetrics } from '../../extender/metrics.js';
import { WebhookMetrics } from '../../webhook/metrics.js';
import { CHART_DASHBOARD, DASHBOARD } from '../../hack/generated-files.js';

// The Grafana dashboard queries what the manager exports: every metric named in its
// expressions is registered on the manager's registry, with the labels the queries use;
// the Helm chart ships the same file behind grafana.dashboard.enabled.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string) => readFileSync(join(root, rel), 'utf8');

interface Panel {
  id: number;
  title: string;
  datasource?: { uid?: string };
  targets?: { expr: string; datasource?: { uid?: string } }[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown; definition?: string }[] };
}

const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
const registry = new Registry();
new ControllerMetrics(registry);
new ExtenderMetrics(registry);
new WebhookMetrics(registry);
const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

/** The registered metric behind a series name (a histogram's _bucket, _sum, _count included), with its labels. */
function registered(series: string): { name: string; labels: string[] } | undefined {
  for (const name of [series, series.replace(HISTOGRAM_SERIES, '')]) {
    const metric = registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined;
    if (metric) return { name, labels: [...(metric.labelNames ?? []), ...(name !== series && series.endsWith('_bucket') ? ['le'] : [])] };
  }
  return undefined;
}

const expressions = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ where: `panel "${p.title}"`, expr: target.expr }))),
  ...dashboard.templating.list.flatMap((v) => (v.definition ? [{ where: `variable ${v.name}`, expr: v.definition }] : [])),
];

t.test('every metric in the expressions is one the manager registers, with the labels used', async (t) => {
  t.ok(expressions.length >= 10, `${expressions.length} expressions`);
  for (const { where, expr } of expressions) {
    const names = expr.match(/\bbamel_[a-z0-9_]+/g) ?? [];
    t.ok(names.length > 0, `${where} queries a bamel metric: ${expr}`);
    for (const series of names) {
      const metric = registered(series);
      t.ok(metric, `${where}: ${series} is registered`);
      if (!metric) continue;
      // Label matchers right after the metric, and the labels grouped by.
      const matchers = new RegExp(`${series}\\{([^}]*)\\}`).exec(expr)?.[1] ?? '';
      const used = [...matchers.matchAll(/([a-z_]+)\s*=~?/g)].map((m) => m[1] ?? '');
      for (const label of used) t.ok(metric.labels.includes(label), `${where}: ${series} has the label ${label}`);
    }
    for (const by of expr.matchAll(/\bby \(([^)]*)\)/g)) {
      const labels = (by[1] ?? '').split(',').map((l) => l.trim());
      const all = new Set(names.flatMap((n) => registered(n)?.labels ?? []));
      for (const label of labels) t.ok(all.has(label), `${where}: grouped by ${label}, a label of ${names.join(', ')}`);
    }
  }
});

t.test('the panels the issue asks for', async (t) => {
  const all = expressions.map((e) => e.expr).join('\n');
  for (const metric of [
    'bamel_controller_machines', // machines by phase
    'bamel_machine_power_watts', // watts
    'bamel_energy_saved_joules_total', // energy saved
    'bamel_controller_decisions_total', // decisions
    'bamel_controller_decision_latency_seconds_bucket', // their latency
    'bamel_controller_unschedulable_pods', // pending pods
    'bamel_power_operations_total', // power operations by result
  ]) {
    t.ok(all.includes(metric), `a panel queries ${metric}`);
  }
  t.match(all, /sum by \(phase\) \(bamel_controller_machines/);
  t.match(all, /sum by \(action, result\) \(increase\(bamel_power_operations_total/);
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) t.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the data source variable`);
});

t.test('the chart ships the same dashboard behind grafana.dashboard.enabled', async (t) => {
  t.equal(read(CHART_DASHBOARD), read(DASHBOARD), 'the chart copy is current (make generate)');
  const template = read('helm/bamel-autoscaler/templates/grafana-dashboard.yaml');
  t.match(template, /^\{\{- if \.Values\.grafana\.dashboard\.enabled \}\}/);
  t.match(template, /grafana_dashboard: "1"/);
  t.match(template, /\.Files\.Get "dashboards\/bamel\.json"/);
  t.match(read('helm/bamel-autoscaler/values.yaml'), /grafana:\n {2}dashboard:\n(?: {4}#.*\n)* {4}enabled: false/);
});
