import { KindGuard, type TObject, type TSchema } from '@sinclair/typebox';

/**
 * Checks a value against a TypeBox schema and says what is wrong the way a person editing
 * YAML needs to hear it ("unknown field "lables"; did you mean "labels"?", "put it in
 * quotes"), reporting every problem rather than the first. TypeBox's own errors are
 * written for programs; this covers the schema subset our documents use (objects,
 * records, arrays, strings, numbers, integers, booleans, unions of those and literals).
 */

export type PathSegment = string | number;

export interface SchemaIssue {
  path: PathSegment[];
  message: string;
}

export interface SchemaCheckOptions {
  /** A message for a field the schema does not know, or undefined for the usual one. */
  unknownField?: (objectSchema: TObject, key: string) => string | undefined;
}

export function checkSchema(schema: TSchema, value: unknown, options: SchemaCheckOptions = {}): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  check(schema, value, [], issues, options);
  return issues;
}

function check(schema: TSchema, value: unknown, path: PathSegment[], issues: SchemaIssue[], options: SchemaCheckOptions): void {
  const report = (message: string, at: PathSegment[] = path): void => {
    issues.push({ path: at, message });
  };

  if (KindGuard.IsObject(schema)) {
    if (!isPlainObject(value)) return report(typeMismatch(schema, value));
    for (const key of schema.required ?? []) {
      const property = schema.properties[key];
      if (!(key in value) && property !== undefined) report(`missing required field: ${describeField(property)}`, [...path, key]);
    }
    for (const [key, item] of Object.entries(value)) {
      const property = schema.properties[key];
      if (property !== undefined) check(property, item, [...path, key], issues, options);
      else if (KindGuard.IsSchema(schema.additionalProperties)) check(schema.additionalProperties, item, [...path, key], issues, options);
      else if (schema.additionalProperties === false) report(options.unknownField?.(schema, key) ?? unknownField(schema, key), [...path, key]);
    }
    return;
  }
  if (KindGuard.IsRecord(schema)) {
    if (!isPlainObject(value)) return report(typeMismatch(schema, value));
    const valueSchema = Object.values(schema.patternProperties)[0];
    if (valueSchema === undefined) return;
    for (const [key, item] of Object.entries(value)) check(valueSchema, item, [...path, key], issues, options);
    return;
  }
  if (KindGuard.IsArray(schema)) {
    if (!Array.isArray(value)) return report(typeMismatch(schema, value));
    value.forEach((item, index) => {
      check(schema.items, item, [...path, index], issues, options);
    });
    return;
  }
  if (!matches(schema, value)) report(typeMismatch(schema, value));
}

/** Whether a scalar value fits a scalar schema (string, number, integer, boolean, literal, union). */
function matches(schema: TSchema, value: unknown): boolean {
  if (KindGuard.IsUnion(schema)) return schema.anyOf.some((member) => matches(member, value));
  if (KindGuard.IsLiteral(schema)) return value === schema.const;
  if (KindGuard.IsString(schema)) return typeof value === 'string';
  if (KindGuard.IsBoolean(schema)) return typeof value === 'boolean';
  if (KindGuard.IsNumber(schema) || KindGuard.IsInteger(schema)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return false;
    if (KindGuard.IsInteger(schema) && !Number.isInteger(value)) return false;
    if (schema.minimum !== undefined && value < schema.minimum) return false;
    if (schema.maximum !== undefined && value > schema.maximum) return false;
    return true;
  }
  return true;
}

function typeMismatch(schema: TSchema, value: unknown): string {
  return `must be ${describeType(schema)}, got ${describeValue(value)}${mismatchHint(schema, value)}`;
}

function mismatchHint(schema: TSchema, value: unknown): string {
  const wantsString = KindGuard.IsString(schema) || (KindGuard.IsUnion(schema) && schema.anyOf.some((member) => KindGuard.IsString(member)));
  if (wantsString && (typeof value === 'number' || typeof value === 'boolean')) return '; put the value in quotes so YAML reads it as text';
  if (typeof value !== 'string') return '';
  if ((KindGuard.IsNumber(schema) || KindGuard.IsInteger(schema)) && value.trim() !== '' && Number.isFinite(Number(value))) {
    return '; remove the quotes';
  }
  if (KindGuard.IsBoolean(schema) && (value === 'true' || value === 'false')) return '; remove the quotes';
  const literals = literalValues(schema);
  if (literals.length > 0) {
    const suggestion = closestMatch(value, literals);
    return suggestion === undefined ? '' : `; did you mean ${JSON.stringify(suggestion)}?`;
  }
  return '';
}

function literalValues(schema: TSchema): string[] {
  if (!KindGuard.IsUnion(schema)) return [];
  return schema.anyOf.flatMap((member) => (KindGuard.IsLiteralString(member) ? [member.const] : []));
}

function describeType(schema: TSchema): string {
  if (KindGuard.IsObject(schema) || KindGuard.IsRecord(schema)) return 'a mapping of keys to values';
  if (KindGuard.IsArray(schema)) return 'a list';
  if (KindGuard.IsString(schema)) return 'a string';
  if (KindGuard.IsBoolean(schema)) return 'true or false';
  if (KindGuard.IsLiteral(schema)) return JSON.stringify(schema.const);
  if (KindGuard.IsNumber(schema) || KindGuard.IsInteger(schema)) {
    const noun = KindGuard.IsInteger(schema) ? 'a whole number' : 'a number';
    const { minimum, maximum } = schema;
    if (minimum !== undefined && maximum !== undefined) return `${noun} from ${minimum} to ${maximum}`;
    if (minimum !== undefined) return `${noun} of at least ${minimum}`;
    if (maximum !== undefined) return `${noun} of at most ${maximum}`;
    return noun;
  }
  if (KindGuard.IsUnion(schema)) {
    const literals = literalValues(schema);
    if (literals.length === schema.anyOf.length) return `one of ${joinOr(literals)}`;
    return joinOr(schema.anyOf.map((member) => describeType(member)));
  }
  return 'a valid value';
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

function describeField(schema: TSchema): string {
  const description = typeof schema.description === 'string' ? schema.description.replace(/\.$/, '') : describeType(schema);
  return description.charAt(0).toLowerCase() + description.slice(1);
}

function unknownField(schema: TObject, key: string): string {
  const known = Object.keys(schema.properties);
  const suggestion = closestMatch(key, known);
  if (suggestion !== undefined) return `unknown field ${JSON.stringify(key)}; did you mean ${JSON.stringify(suggestion)}?`;
  return `unknown field ${JSON.stringify(key)}; the fields here are ${known.join(', ')}`;
}

function joinOr(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items.at(-1) ?? ''}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The candidate a typo most likely meant: same letters ignoring case, "-" and "_", or
 * within a small edit distance (transpositions count as one edit, "lables" → "labels").
 * Short words need a closer match, so "gpu" does not suggest "cpu".
 */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  const normalize = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const exact = candidates.find((candidate) => normalize(candidate) === normalize(input));
  if (exact !== undefined) return exact;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance > 2 || distance * 3 >= candidate.length) continue;
    if (best === undefined || distance < best.distance) best = { candidate, distance };
  }
  return best?.candidate;
}

/** Optimal string alignment distance. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i];
    if (row === undefined) continue;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      row[j] = distance;
    }
  }
  return at(a.length, b.length);
}
