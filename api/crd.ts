import type { TSchema } from '@sinclair/typebox';
import {
  BareMetalAutoscalerSchema,
  GROUP,
  KIND,
  LIST_KIND,
  PLURAL,
  PRINTER_COLUMNS,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './v1alpha1/baremetalautoscaler.js';
import {
  TRAFFIC_KIND,
  TRAFFIC_LIST_KIND,
  TRAFFIC_PLURAL,
  TRAFFIC_PRINTER_COLUMNS,
  TRAFFIC_SHORT_NAMES,
  TRAFFIC_SINGULAR,
  TrafficReportSchema,
} from './v1alpha1/trafficreport.js';

/**
 * JSON form of a TypeBox schema as the API server should see it: TypeBox's symbol keys
 * are dropped, and a property with a default is not required (the API server fills it
 * in). The TypeScript types keep such properties required: they describe the object as
 * the controller reads it, after defaulting.
 */
export function toJsonSchema(schema: TSchema): Record<string, unknown> {
  const json = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  relaxDefaulted(json);
  materializeDefaults(json);
  return json;
}

/**
 * Object defaults are written `{}` in the source; the API server validates a default as it
 * stands (CEL rules included), without the nested defaults, so spell each one out.
 */
function materializeDefaults(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    node.forEach(materializeDefaults);
    return;
  }
  const obj = node as Record<string, unknown>;
  for (const v of Object.values(obj)) materializeDefaults(v);
  if (obj.type === 'object' && isEmptyObject(obj.default) && obj.properties) {
    obj.default = defaultsOf(obj);
  }
}

function defaultsOf(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [k, p] of Object.entries(props)) {
    if ('default' in p) out[k] = structuredClone(p.default);
  }
  return out;
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

function relaxDefaulted(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    node.forEach(relaxDefaulted);
    return;
  }
  const obj = node as Record<string, unknown>;
  const props = obj.properties as Record<string, Record<string, unknown>> | undefined;
  if (props && Array.isArray(obj.required)) {
    const required = (obj.required as string[]).filter((k) => !(props[k] && 'default' in props[k]));
    if (required.length > 0) obj.required = required;
    else delete obj.required;
  }
  for (const v of Object.values(obj)) relaxDefaulted(v);
}

export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** The CustomResourceDefinition for BareMetalAutoscaler, generated from the TypeBox schema. */
export function buildBareMetalAutoscalerCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'bamel-autoscaler', 'app.kubernetes.io/part-of': 'bamel-autoscaler' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: ['bamel'],
      },
      scope: 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: toJsonSchema(BareMetalAutoscalerSchema) },
        },
      ],
    },
  };
}

export const TRAFFIC_CRD_NAME = `${TRAFFIC_PLURAL}.${GROUP}`;

/** The CustomResourceDefinition for TrafficReport (one per node, written by the eBPF agent). */
export function buildTrafficReportCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: TRAFFIC_CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'bamel-autoscaler', 'app.kubernetes.io/part-of': 'bamel-autoscaler' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: TRAFFIC_KIND,
        listKind: TRAFFIC_LIST_KIND,
        plural: TRAFFIC_PLURAL,
        singular: TRAFFIC_SINGULAR,
        shortNames: [...TRAFFIC_SHORT_NAMES],
        categories: ['bamel'],
      },
      scope: 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          additionalPrinterColumns: TRAFFIC_PRINTER_COLUMNS.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: toJsonSchema(TrafficReportSchema) },
        },
      ],
    },
  };
}
