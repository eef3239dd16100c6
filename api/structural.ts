/**
 * Checks a JSON schema against Kubernetes' structural-schema rules for CRDs, so a schema
 * the API server would refuse fails here, with the path, before it is applied.
 * (apiextensions-apiserver: pkg/apiserver/schema/validation.go and the CRD validation.)
 */

const FORBIDDEN_KEYWORDS = ['$ref', 'definitions', '$defs', 'dependencies', 'additionalItems', 'patternProperties', 'const', '$schema', '$id'];
const ALLOWED_FORMATS = new Set([
  'bsonobjectid', 'uri', 'email', 'hostname', 'ipv4', 'ipv6', 'cidr', 'mac', 'uuid', 'uuid3', 'uuid4', 'uuid5',
  'isbn', 'isbn10', 'isbn13', 'creditcard', 'ssn', 'hexcolor', 'rgbcolor', 'byte', 'password', 'date', 'duration',
  'datetime', 'date-time', 'int32', 'int64', 'float', 'double',
]);
const VALID_TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function structuralSchemaProblems(schema: unknown): string[] {
  const problems: string[] = [];
  walk(schema, '', problems, { root: true, inJunctor: false });
  return problems;
}

interface Ctx {
  root: boolean;
  inJunctor: boolean;
}

function walk(node: unknown, path: string, out: string[], ctx: Ctx): void {
  const at = path === '' ? '<root>' : path;
  if (!isObject(node)) {
    out.push(`${at}: schema must be an object`);
    return;
  }
  for (const kw of FORBIDDEN_KEYWORDS) {
    if (kw in node) out.push(`${at}: "${kw}" is not allowed in a structural schema`);
  }
  if (node.uniqueItems === true) out.push(`${at}: uniqueItems: true is not allowed; use x-kubernetes-list-type: set`);
  if ('properties' in node && 'additionalProperties' in node) {
    out.push(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  const type = node.type;
  if (ctx.inJunctor) {
    // Inside anyOf/allOf/oneOf/not only value validations are allowed.
    for (const kw of ['type', 'default', 'description', 'nullable', 'additionalProperties', 'x-kubernetes-preserve-unknown-fields']) {
      if (kw in node && !(kw === 'type' && intOrString === false && isIntOrStringBranch(node))) {
        out.push(`${at}: "${kw}" is not allowed inside anyOf/allOf/oneOf/not`);
      }
    }
  } else if (type === undefined) {
    if (!intOrString && !preserve) out.push(`${at}: missing "type" (only x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields may omit it)`);
  } else if (typeof type !== 'string' || !VALID_TYPES.has(type)) {
    out.push(`${at}: type must be one of ${[...VALID_TYPES].join(', ')}, not ${JSON.stringify(type)}`);
  }
  if (intOrString) {
    const any = node.anyOf;
    const ok =
      type === undefined &&
      Array.isArray(any) &&
      any.length === 2 &&
      any.some((b) => isObject(b) && b.type === 'integer') &&
      any.some((b) => isObject(b) && b.type === 'string');
    if (!ok) out.push(`${at}: x-kubernetes-int-or-string needs no type and anyOf: [{type: integer}, {type: string}]`);
  } else {
    for (const j of ['anyOf', 'allOf', 'oneOf']) {
      const branches = node[j];
      if (Array.isArray(branches)) {
        branches.forEach((b, i) => walk(b, `${path}.${j}[${i}]`, out, { root: false, inJunctor: true }));
      }
    }
  }
  if (typeof node.format === 'string' && !ALLOWED_FORMATS.has(node.format)) {
    out.push(`${at}: format "${node.format}" is not supported by the API server`);
  }
  if (Array.isArray(node.enum) && type === undefined && !ctx.inJunctor) {
    out.push(`${at}: enum without a type`);
  }
  if (!ctx.inJunctor && typeof node.description !== 'string' && !ctx.root && !path.endsWith('.items') && !path.includes('additionalProperties')) {
    out.push(`${at}: missing description (kubectl explain shows it)`);
  }
  if ('default' in node && ctx.root) out.push(`${at}: the root may not have a default`);
  if (type === 'object') {
    const props = node.properties;
    if (isObject(props)) {
      for (const [k, v] of Object.entries(props)) {
        if (ctx.root && k === 'metadata' && isObject(v)) {
          // The API server owns metadata's schema: only name/generateName restrictions are allowed.
          const extraProps = isObject(v.properties) ? Object.keys(v.properties).filter((p) => p !== 'name' && p !== 'generateName') : [];
          const extraKeys = Object.keys(v).filter((key) => key !== 'type' && key !== 'properties');
          if (extraProps.length > 0 || extraKeys.length > 0) out.push(`${at}.metadata: only type and name/generateName restrictions may be specified`);
          continue;
        }
        walk(v, `${path}.${k}`, out, { root: false, inJunctor: false });
      }
      const required = node.required;
      if (Array.isArray(required)) {
        for (const r of required) if (typeof r !== 'string' || !(r in props)) out.push(`${at}: required "${String(r)}" is not a property`);
      }
    }
    const ap = node.additionalProperties;
    if (isObject(ap)) walk(ap, `${path}.additionalProperties`, out, { root: false, inJunctor: false });
    if (node['x-kubernetes-list-type'] !== undefined) out.push(`${at}: x-kubernetes-list-type is only for arrays`);
  }
  if (type === 'array') {
    if (!isObject(node.items)) out.push(`${at}: arrays need items with a schema`);
    else walk(node.items, `${path}.items`, out, { root: false, inJunctor: false });
    const listType = node['x-kubernetes-list-type'];
    if (listType === 'map') {
      const keys = node['x-kubernetes-list-map-keys'];
      const items = node.items;
      if (!Array.isArray(keys) || keys.length === 0) out.push(`${at}: list-type map needs x-kubernetes-list-map-keys`);
      else if (isObject(items)) {
        const req = Array.isArray(items.required) ? items.required : [];
        for (const k of keys) {
          const hasDefault = isObject(items.properties) && isObject(items.properties[k as string]) && 'default' in (items.properties[k as string] as Json);
          if (!req.includes(k) && !hasDefault) out.push(`${at}: map key "${String(k)}" must be required or defaulted`);
        }
      }
    }
  }
  const rules = node['x-kubernetes-validations'];
  if (rules !== undefined) {
    if (!Array.isArray(rules)) out.push(`${at}: x-kubernetes-validations must be a list`);
    else rules.forEach((r, i) => {
      if (!isObject(r) || typeof r.rule !== 'string' || r.rule === '') out.push(`${at}: x-kubernetes-validations[${i}] needs a rule`);
      else if (typeof r.message !== 'string' || r.message === '') out.push(`${at}: x-kubernetes-validations[${i}] needs a message that says what is wrong`);
    });
  }
}

/** The two branches of an int-or-string anyOf carry a type; that is what Kubernetes expects there. */
function isIntOrStringBranch(node: Json): boolean {
  return (node.type === 'integer' || node.type === 'string') && Object.keys(node).length === 1;
}
