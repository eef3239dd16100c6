import { Type, type SchemaOptions, type TSchema, type TUnsafe } from '@sinclair/typebox';

/**
 * Schema builders whose JSON form is a valid Kubernetes structural schema. TypeBox's own
 * Enum, literal unions and Record emit `anyOf`/`const`/`patternProperties`, which the
 * API server refuses, so these wrap the shapes Kubernetes accepts.
 */

export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

export function StringMap(options: SchemaOptions = {}): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({ ...options, type: 'object', additionalProperties: { type: 'string' } });
}

/** A resource.Quantity: a string like "64Gi" or a plain number. */
export function Quantity(options: SchemaOptions = {}): TUnsafe<string | number> {
  return Type.Unsafe<string | number>({
    ...options,
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
  });
}

export function QuantityMap(options: SchemaOptions = {}): TUnsafe<Record<string, string | number>> {
  return Type.Unsafe<Record<string, string | number>>({
    ...options,
    type: 'object',
    additionalProperties: {
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
    },
  });
}

/** Free-form JSON kept as-is by the API server (no pruning below this point). */
export function PreservedObject(options: SchemaOptions = {}): TUnsafe<Record<string, unknown>> {
  return Type.Unsafe<Record<string, unknown>>({ ...options, type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
}

export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attaches CEL validation rules (x-kubernetes-validations) to a schema. */
export function withRules<T extends TSchema>(schema: T, rules: CelRule[]): T {
  return { ...schema, 'x-kubernetes-validations': rules };
}
