import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildBareMetalAutoscalerCrd, toJsonSchema } from '../../api/crd.js';
import { structuralSchemaProblems } from '../../api/structural.js';
import { BareMetalAutoscalerSchema } from '../../api/v1alpha1/baremetalautoscaler.js';
import { generatedFiles } from '../../hack/generated-files.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

t.test('generated files are fresh (run make generate)', async (t) => {
  for (const [rel, content] of generatedFiles()) {
    t.equal(readFileSync(join(root, rel), 'utf8'), content, `${rel} matches api/`);
  }
});

t.test('the CRD YAML reads back unchanged as YAML 1.1 (what kubectl parses: Off is not false)', async (t) => {
  const text = readFileSync(join(root, 'config/crd/bases/autoscaling.bamel.io_baremetalautoscalers.yaml'), 'utf8');
  t.same(parse(text, { version: '1.1' }), buildBareMetalAutoscalerCrd());
});

t.test('the CRD schema is structural', async (t) => {
  const crd = buildBareMetalAutoscalerCrd() as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
  for (const v of crd.spec.versions) t.same(structuralSchemaProblems(v.schema.openAPIV3Schema), []);
});

t.test('fields with a default are not required in the CRD', async (t) => {
  const schema = toJsonSchema(BareMetalAutoscalerSchema) as { properties: { spec: { required?: string[] } } };
  // spec.inventory is optional in the schema: a CEL rule requires it or spec.inventories.
  t.same(schema.properties.spec.required ?? [], []);
});

t.test('the structural check refuses what Kubernetes refuses', async (t) => {
  const obj = (props: Record<string, unknown>) => ({ type: 'object', description: 'root', properties: props });
  const cases: [string, unknown, RegExp][] = [
    ['$ref', obj({ a: { $ref: '#/x', description: 'a' } }), /"\$ref" is not allowed/],
    ['enum without type (TypeBox Enum)', obj({ a: { enum: ['x', 'y'], description: 'a' } }), /missing "type"/],
    ['anyOf+const (literal union)', obj({ a: { anyOf: [{ const: 'x', type: 'string' }], description: 'a' } }), /"const" is not allowed/],
    ['patternProperties (Record)', obj({ a: { type: 'object', patternProperties: { '^.*$': { type: 'string' } }, description: 'a' } }), /"patternProperties" is not allowed/],
    ['uniqueItems', obj({ a: { type: 'array', uniqueItems: true, items: { type: 'string' }, description: 'a' } }), /uniqueItems/],
    ['additionalItems', obj({ a: { type: 'array', additionalItems: false, items: { type: 'string' }, description: 'a' } }), /"additionalItems"/],
    ['definitions', { ...obj({}), definitions: {} }, /"definitions"/],
    ['dependencies', obj({ a: { type: 'object', dependencies: {}, description: 'a' } }), /"dependencies"/],
    ['properties beside additionalProperties', obj({ a: { type: 'object', properties: {}, additionalProperties: { type: 'string' }, description: 'a' } }), /mutually exclusive/],
    ['missing type', obj({ a: { description: 'a' } }), /missing "type"/],
    ['bad type', obj({ a: { type: 'null', description: 'a' } }), /type must be one of/],
    ['type inside anyOf', obj({ a: { type: 'string', anyOf: [{ type: 'string', minLength: 1 }], description: 'a' } }), /inside anyOf/],
    ['default inside anyOf', obj({ a: { type: 'string', anyOf: [{ default: 'x' }], description: 'a' } }), /inside anyOf/],
    ['array without items', obj({ a: { type: 'array', description: 'a' } }), /need items/],
    ['missing description', obj({ a: { type: 'string' } }), /missing description/],
    ['metadata fields', obj({ metadata: { type: 'object', description: 'm', properties: { labels: { type: 'object', description: 'l' } } } }), /only type and name\/generateName restrictions/],
    ['list-type map key not required', obj({ a: { type: 'array', description: 'a', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: { k: { type: 'string', description: 'k' } } } } }), /map key "k" must be required/],
    ['CEL rule without message', obj({ a: { type: 'string', description: 'a', 'x-kubernetes-validations': [{ rule: 'self != ""' }] } }), /needs a message/],
    ['metadata description', obj({ metadata: { type: 'object', description: 'm' } }), /only type and name\/generateName restrictions/],
    ['unsupported format', obj({ a: { type: 'string', format: 'regex', description: 'a' } }), /format "regex"/],
    ['int-or-string with a type', obj({ a: { type: 'string', 'x-kubernetes-int-or-string': true, description: 'a' } }), /x-kubernetes-int-or-string needs/],
  ];
  for (const [what, schema, expect] of cases) {
    const problems = structuralSchemaProblems(schema);
    t.match(problems.join('\n'), expect, what);
  }
  t.same(structuralSchemaProblems(obj({ q: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], description: 'q' } })), [], 'int-or-string is fine');
});
