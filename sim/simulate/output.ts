import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { parse as parseVega, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { TimelineSample } from './accounting.js';
import { SIMULATION_START, type SimulateResult } from './index.js';

/**
 * `bamel simulate --out DIR`: summary.json (what stdout shows), timeline.csv (one row a
 * minute) and the chart, a Vega-Lite spec rendered headless by Vega to SVG and by resvg to
 * PNG. Top: machines on and the oracle (left axis) and the demand in cores (right axis);
 * below: pending pods. A long run is drawn in buckets of several minutes (at most 2,000
 * points a series): the most machines on, the most pending pods, the oracle's most and the
 * mean demand in each bucket, so that no peak is smoothed away.
 */

export const TIMELINE_COLUMNS = ['minute', 'demand', 'machinesOn', 'oracleMachines', 'pendingPods', 'watts'] as const;

export function timelineCsv(timeline: readonly TimelineSample[]): string {
  const rows = timeline.map((s) => TIMELINE_COLUMNS.map((c) => String(s[c])).join(','));
  return `${[TIMELINE_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

interface Point {
  time: number;
  demand: number;
  machinesOn: number;
  oracleMachines: number;
  pendingPods: number;
}

export function chartPoints(timeline: readonly TimelineSample[], maxPoints = 2000): Point[] {
  const size = Math.max(1, Math.ceil(timeline.length / maxPoints));
  const out: Point[] = [];
  for (let i = 0; i < timeline.length; i += size) {
    const b = timeline.slice(i, i + size);
    out.push({
      time: SIMULATION_START + (b[0] as TimelineSample).minute * 60_000,
      demand: Math.round((b.reduce((s, x) => s + x.demand, 0) / b.length) * 10) / 10,
      machinesOn: Math.max(...b.map((x) => x.machinesOn)),
      oracleMachines: Math.max(...b.map((x) => x.oracleMachines)),
      pendingPods: Math.max(...b.map((x) => x.pendingPods)),
    });
  }
  return out;
}

export function chartSpec(points: readonly Point[], title: string): TopLevelSpec {
  const x = { field: 'time', type: 'temporal', title: null, axis: { format: '%a %H:%M', labelAngle: 0, tickCount: 'day' } } as const;
  const series = points.flatMap((p) => [
    { time: p.time, series: 'machines on', value: p.machinesOn },
    { time: p.time, series: 'oracle (lower bound)', value: p.oracleMachines },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: { font: 'DejaVu Sans', view: { stroke: null } },
    vconcat: [
      {
        width: 900,
        height: 260,
        layer: [
          {
            data: { values: points as unknown as Record<string, unknown>[] },
            mark: { type: 'area', color: '#c6dbef', opacity: 0.7, interpolate: 'step-after' },
            encoding: { x, y: { field: 'demand', type: 'quantitative', title: 'demand (cores requested)', axis: { orient: 'right', titleColor: '#4a7fb5' } } },
          },
          {
            data: { values: series },
            mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.4 },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'machines' },
              color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['machines on', 'oracle (lower bound)'], range: ['#d62728', '#2ca02c'] }, legend: { orient: 'top-left', labelLimit: 300, fillColor: 'white' } },
            },
          },
        ],
        resolve: { scale: { y: 'independent' } },
      },
      {
        width: 900,
        height: 90,
        data: { values: points as unknown as Record<string, unknown>[] },
        mark: { type: 'area', color: '#ff7f0e', interpolate: 'step-after' },
        encoding: { x, y: { field: 'pendingPods', type: 'quantitative', title: 'pending pods' } },
      },
    ],
  };
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parseVega(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}

export async function writeOutputs(dir: string, result: SimulateResult, title = 'bamel simulate'): Promise<void> {
  await mkdir(dir, { recursive: true });
  const svg = await renderSvg(chartSpec(chartPoints(result.timeline), title));
  await Promise.all([
    writeFile(join(dir, 'summary.json'), `${JSON.stringify(result.summary, null, 2)}\n`),
    writeFile(join(dir, 'timeline.csv'), timelineCsv(result.timeline)),
    writeFile(join(dir, 'timeline.svg'), svg),
    writeFile(join(dir, 'timeline.png'), svgToPng(svg)),
  ]);
}
