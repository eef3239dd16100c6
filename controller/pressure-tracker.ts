import type { V1Node } from '@kubernetes/client-node';
import type { ParsedMachine } from '../api/inventory.js';
import { parseQuantity } from '../api/quantity.js';
import type { BareMetalAutoscalerSpec } from '../api/v1alpha1/baremetalautoscaler.js';
import { judge, LevelSeries, type CategoryReading, type CategoryThresholds, type PressureCategory } from './pressure.js';
import type { ResourceVector } from './scoring.js';

const RESOURCE_CATEGORIES: { category: PressureCategory; resource: string; thresholds: (s: BareMetalAutoscalerSpec) => CategoryThresholds }[] = [
  { category: 'cpu', resource: 'cpu', thresholds: (s) => s.pressure.cpu },
  { category: 'memory', resource: 'memory', thresholds: (s) => s.pressure.memory },
  { category: 'ephemeral-storage', resource: 'ephemeral-storage', thresholds: (s) => s.pressure.ephemeralStorage },
];

/** Node conditions that put a category under pressure whatever the requests say. */
const CONDITION_CATEGORY: Record<string, PressureCategory> = {
  MemoryPressure: 'memory',
  DiskPressure: 'ephemeral-storage',
  PIDPressure: 'cpu',
};

export interface PressureObservation {
  readings: CategoryReading[];
  /**
   * The capacity the pressure asks for, per pressured resource: enough allocatable to bring
   * the level back to 90 % of its threshold, or, when only the rate is high, what the rate
   * would add over one window.
   */
  deficit?: ResourceVector;
}

/** Level series per autoscaler and category, fed at each reconcile. */
export class PressureTracker {
  private readonly series = new Map<string, LevelSeries>();

  observe(
    autoscaler: string,
    spec: BareMetalAutoscalerSpec,
    ready: ParsedMachine[],
    node: (name: string) => V1Node | undefined,
    requestedOn: (name: string) => ReadonlyMap<string, bigint>,
    now: number,
  ): PressureObservation {
    const windowMs = spec.pressure.windowSeconds * 1000;
    const allocatable: Record<string, bigint> = {};
    const requested: Record<string, bigint> = {};
    const conditionReasons = new Map<PressureCategory, string>();
    for (const m of ready) {
      const n = node(m.name);
      const alloc = n?.status?.allocatable ?? {};
      for (const { resource } of RESOURCE_CATEGORIES) {
        const fromNode = alloc[resource];
        const amount = fromNode !== undefined ? safeParse(fromNode) : (m.capacity[resource] ?? 0n);
        allocatable[resource] = (allocatable[resource] ?? 0n) + amount;
      }
      for (const [r, v] of requestedOn(m.name)) requested[r] = (requested[r] ?? 0n) + v;
      for (const c of n?.status?.conditions ?? []) {
        const cat = CONDITION_CATEGORY[c.type];
        if (cat && c.status === 'True') conditionReasons.set(cat, `node ${m.name} reports ${c.type}`);
      }
    }
    const readings: CategoryReading[] = [];
    const deficit: ResourceVector = {};
    for (const { category, resource, thresholds } of RESOURCE_CATEGORIES) {
      const a = allocatable[resource] ?? 0n;
      const r = requested[resource] ?? 0n;
      const level = a > 0n ? Number(r) / Number(a) : 0;
      const key = `${autoscaler}/${category}`;
      let s = this.series.get(key);
      if (!s) this.series.set(key, (s = new LevelSeries(windowMs)));
      s.setWindow(windowMs);
      if (ready.length > 0) s.add(now, level);
      const t = thresholds(spec);
      const reading = judge(category, level, ready.length > 0 ? s.ratePerMinute() : 0, t, conditionReasons.get(category));
      readings.push(reading);
      if (reading.pressured && a > 0n) {
        const target = Math.max(0.05, t.level * 0.9);
        let need = Number(r) / target - Number(a);
        if (need <= 0) need = Math.max(reading.ratePerMinute, 0.01) * (windowMs / 60_000) * Number(a);
        deficit[resource] = BigInt(Math.ceil(need));
      }
    }
    return { readings, ...(Object.keys(deficit).length > 0 ? { deficit } : {}) };
  }

  forget(autoscaler: string): void {
    for (const k of this.series.keys()) if (k.startsWith(`${autoscaler}/`)) this.series.delete(k);
  }
}

function safeParse(q: string): bigint {
  try {
    return parseQuantity(q);
  } catch {
    return 0n;
  }
}
