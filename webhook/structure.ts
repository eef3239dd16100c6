import { FormatRegistry, TypeRegistry, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { BareMetalAutoscalerSchema, type BareMetalAutoscaler } from '../api/v1alpha1/baremetalautoscaler.js';
import { closestMatch } from '../api/schema-check.js';
import type { Issue } from './verdict.js';

/**
 * The BareMetalAutoscaler's structure, checked with the very schema the CRD is generated
 * from (api/v1alpha1/baremetalautoscaler.ts). Defaults are applied first, as the API server
 * does before validating, so a field the user left out is judged by its default.
 *
 * Behind the API server this mostly agrees with what it already checked; it matters for a
 * caller that is not the API server (a direct POST, a future version served by
 * conversion) and it guarantees the semantic checks below only ever see a well-typed spec.
 */

// The API's Kubernetes-shaped schemas (StringEnum, StringMap, QuantityMap, ObjectMeta) are
// TypeBox "Unsafe" schemas: plain JSON Schema that TypeBox's checker does not interpret by
// itself. This teaches it the subset those helpers emit.
if (!TypeRegistry.Has('Unsafe')) TypeRegistry.Set('Unsafe', (schema: Record<string, unknown>, value: unknown) => jsonSchemaProblem(schema, value) === undefined);
// RFC 3339 as the API server's date-time format accepts it.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (value) => RFC3339.test(value) && !Number.isNaN(Date.parse(value)));

export interface StructureResult {
  /** The object with the CRD's defaults applied (a copy; the input is not changed). */
  defaulted: BareMetalAutoscaler;
  /** Every problem, as field path and message with the fix. */
  issues: Issue[];
}

export function checkAutoscalerStructure(object: unknown): StructureResult {
  const defaulted = Value.Default(BareMetalAutoscalerSchema, structuredClone(object)) as BareMetalAutoscaler;
  const issues: Issue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(BareMetalAutoscalerSchema, defaulted)) {
    const field = fieldOf(error.path);
    // A union or an object that fails reports once per branch; one line per field is enough.
    if (seen.has(field)) continue;
    seen.add(field);
    issues.push({ field, message: describe(error) });
    if (issues.length >= 20) break;
  }
  return { defaulted, issues };
}

/** `/spec/scaleUp/joinTimeoutSeconds` → `spec.scaleUp.joinTimeoutSeconds`; `/status/machines/0` → `status.machines[0]`. */
export function fieldOf(pointer: string): string {
  if (pointer === '') return '<root>';
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function describe(error: ValueError): string {
  const schema = error.schema as TSchema & Record<string, unknown>;
  const value = error.value;
  const got = describeValue(value);
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `missing; it is required${typeof schema.description === 'string' ? ` (${lowerFirst(schema.description)})` : ''}`;
    case ValueErrorType.Integer:
      return `must be a whole number, got ${got}${numericStringHint(value)}`;
    case ValueErrorType.Number:
      return `must be a number, got ${got}${numericStringHint(value)}`;
    case ValueErrorType.Boolean:
      return `must be true or false, got ${got}${value === 'true' || value === 'false' ? '; remove the quotes' : ''}`;
    case ValueErrorType.String:
      return `must be a string, got ${got}${typeof value === 'number' || typeof value === 'boolean' ? '; put the value in quotes' : ''}`;
    case ValueErrorType.Object:
      return `must be a mapping of fields, got ${got}`;
    case ValueErrorType.Array:
      return `must be a list, got ${got}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `${got} is below the minimum ${String(schema.minimum)}; use ${rangeWords(schema)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `${got} is above the maximum ${String(schema.maximum)}; use ${rangeWords(schema)}`;
    case ValueErrorType.StringMinLength:
      return 'must not be empty';
    case ValueErrorType.StringMaxLength:
      return `is ${typeof value === 'string' ? value.length : '?'} characters long; the limit is ${String(schema.maxLength)}`;
    case ValueErrorType.StringPattern:
      return `${got} is not a valid name: use lowercase letters, digits and "-" (and "." between parts), starting and ending with a letter or digit`;
    case ValueErrorType.StringFormat:
      return `${got} is not a ${String(schema.format)} (RFC 3339, e.g. 2024-05-01T12:00:00Z)`;
    case ValueErrorType.ArrayMaxItems:
      return `has ${Array.isArray(value) ? value.length : '?'} items; the limit is ${String(schema.maxItems)}`;
    case ValueErrorType.Kind:
      return jsonSchemaProblem(schema, value) ?? error.message;
    default:
      return error.message;
  }
}

/**
 * Checks a value against the plain JSON Schema the API's Unsafe helpers emit (type, enum,
 * additionalProperties, int-or-string); the problem in words, or undefined.
 */
function jsonSchemaProblem(schema: Record<string, unknown>, value: unknown): string | undefined {
  if (schema['x-kubernetes-int-or-string'] === true) {
    return (typeof value === 'number' && Number.isInteger(value)) || typeof value === 'string' ? undefined : `must be a whole number or a string, got ${describeValue(value)}`;
  }
  const type = schema.type;
  if (type === 'string') {
    if (typeof value !== 'string') return `must be a string, got ${describeValue(value)}`;
    const allowed = Array.isArray(schema.enum) ? (schema.enum as unknown[]).filter((v): v is string => typeof v === 'string') : undefined;
    if (allowed !== undefined && !allowed.includes(value)) {
      const suggestion = closestMatch(value, allowed);
      return `${JSON.stringify(value)} is not allowed; use one of ${allowed.join(', ')}${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`;
    }
    return undefined;
  }
  if (type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return `must be a mapping of fields, got ${describeValue(value)}`;
    const items = schema.additionalProperties;
    if (typeof items !== 'object' || items === null) return undefined;
    for (const [key, item] of Object.entries(value)) {
      const problem = jsonSchemaProblem(items as Record<string, unknown>, item);
      if (problem !== undefined) return `[${JSON.stringify(key)}] ${problem}`;
    }
    return undefined;
  }
  if (type === 'integer') return typeof value === 'number' && Number.isInteger(value) ? undefined : `must be a whole number, got ${describeValue(value)}`;
  if (type === 'number') return typeof value === 'number' && Number.isFinite(value) ? undefined : `must be a number, got ${describeValue(value)}`;
  if (type === 'boolean') return typeof value === 'boolean' ? undefined : `must be true or false, got ${describeValue(value)}`;
  return undefined;
}

function rangeWords(schema: Record<string, unknown>): string {
  const { minimum, maximum } = schema;
  if (typeof minimum === 'number' && typeof maximum === 'number') return `a value from ${minimum} to ${maximum}`;
  if (typeof minimum === 'number') return `${minimum} or more`;
  if (typeof maximum === 'number') return `${maximum} or less`;
  return 'a value in range';
}

function numericStringHint(value: unknown): string {
  return typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)) ? '; remove the quotes' : '';
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

function lowerFirst(text: string): string {
  const trimmed = text.replace(/\.$/, '');
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}
