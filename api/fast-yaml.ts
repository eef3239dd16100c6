import jsyaml from 'js-yaml';
import { isPlainObject } from './schema-check.js';

/**
 * A fast first reading of a YAML document, for the common case of a plain, valid
 * inventory. The `yaml` library (which keeps every node's position, so that errors can
 * name their line) takes about 0.3 ms a machine; js-yaml reads the same document more than
 * ten times faster. Both must give the same value, so:
 * - the scalars resolve by YAML 1.2's core schema exactly as `yaml` resolves them (js-yaml's
 *   own schemas also read `0b101`, and not `+.5`, as numbers);
 * - a document with anything where the two libraries are known to part ways (tags,
 *   anchors and aliases, merge keys, directives, complex or null keys) is left to `yaml`;
 * - any error (syntax, duplicate keys, several documents) is left to `yaml`, whose message
 *   names the line.
 * `undefined` means "read it with `yaml`"; the result is never a different answer.
 * test/api/fast-yaml.test.ts holds the two readings equal over generated documents.
 */

const nullType = new jsyaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (s: string) => s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL',
  construct: () => null,
});

const boolType = new jsyaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (s: string) => /^(?:true|True|TRUE|false|False|FALSE)$/.test(s),
  construct: (s: string) => s[0] === 't' || s[0] === 'T',
});

const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const intType = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (s: string) => INT.test(s),
  construct: (s: string) => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
});

const FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/;
const SPECIAL_FLOAT = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const floatType = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (s: string) => FLOAT.test(s) || SPECIAL_FLOAT.test(s),
  construct: (s: string) => {
    if (!SPECIAL_FLOAT.test(s)) return parseFloat(s);
    if (s.endsWith('nan') || s.endsWith('NaN') || s.endsWith('NAN')) return NaN;
    return s.startsWith('-') ? -Infinity : Infinity;
  },
});

const CORE_1_2 = jsyaml.FAILSAFE_SCHEMA.extend({ implicit: [nullType, boolType, intType, floatType] });

/** What starts a tag, an anchor, an alias, a directive, a complex key or a merge key. */
const SPECIAL = /[!&*%?]|<</;

/** A flow collection used as a key (`[a, b]: x`): js-yaml and `yaml` spell such a key differently. */
const COLLECTION_KEY = /[\]}][ \t]*:(?:[ \t]|$)/m;

export function fastYaml(text: string): { value: unknown } | undefined {
  if (SPECIAL.test(text) || COLLECTION_KEY.test(text) || spansLines(text)) return undefined;
  let value: unknown;
  try {
    value = jsyaml.load(text, { schema: CORE_1_2 });
  } catch {
    return undefined;
  }
  // An empty document is `yaml`'s to describe; a key js-yaml spelled "null" may have been `~:` or `:`.
  if (value === undefined || value === null || hasAmbiguousKey(value, 0)) return undefined;
  return { value };
}

function hasAmbiguousKey(value: unknown, depth: number): boolean {
  if (depth > 64) return true;
  if (Array.isArray(value)) return value.some((v) => hasAmbiguousKey(v, depth + 1));
  if (!isPlainObject(value)) return false;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'null' || k === '' || hasAmbiguousKey(v, depth + 1)) return true;
  }
  return false;
}

/**
 * Whether a quoted scalar or a flow collection (`[...]`, `{...}`) runs past its line, or a
 * flow mapping has a collection for a key. Their
 * continuation lines must be indented, and js-yaml does not insist (it reads on where
 * `yaml` reports an error). A quote opens a scalar only at the start of a token: after
 * the indentation, `:`, `-`, `[`, `{` or `,` (tags, anchors and explicit keys never get
 * here). Misjudging a quote inside a plain scalar as an opening one only sends the
 * document to `yaml`.
 */
function spansLines(text: string): boolean {
  let lineStart = true;
  let previous = ''; // the last character that was not a space on this line
  const open: string[] = []; // the flow collections open here, innermost last
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '\n') {
      if (open.length > 0) return true;
      lineStart = true;
      previous = '';
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') continue;
    if (c === '#' && (lineStart || /[ \t]/.test(text[i - 1] ?? ' '))) {
      const end = text.indexOf('\n', i);
      if (end === -1) return false;
      i = end - 1;
      continue;
    }
    if ((c === "'" || c === '"') && (lineStart || ':-[{,'.includes(previous))) {
      const end = closingQuote(text, i + 1, c);
      if (end === -1) return true;
      i = end;
      previous = c;
      lineStart = false;
      continue;
    }
    const tokenStart = lineStart || ':-[{,'.includes(previous);
    if ((c === '[' || c === '{') && tokenStart) {
      // An entry of a flow mapping that is itself a collection is a key (`{a, {}, b}`).
      if (open.at(-1) === '{' && (previous === '{' || previous === ',')) return true;
      open.push(c);
    } else if ((c === ']' || c === '}') && open.length > 0) open.pop();
    previous = c;
    lineStart = false;
  }
  return open.length > 0;
}

/** Where the quoted scalar opened before `from` closes on its line; -1 when it does not. */
function closingQuote(text: string, from: number, quote: string): number {
  for (let j = from; j < text.length; j++) {
    const c = text.charAt(j);
    if (c === '\n') return -1;
    if (quote === '"' && c === '\\') j++;
    else if (c === quote) {
      // '' inside single quotes is an escaped quote, not the end.
      if (quote === "'" && text[j + 1] === "'") j++;
      else return j;
    }
  }
  return -1;
}
