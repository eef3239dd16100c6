import { isScalar, type Document, type LineCounter } from 'yaml';
import type { PathSegment } from './schema-check.js';

/**
 * Positions in an inventory's YAML, for messages that point at the line the user edits: a
 * line of a `machines.yaml: |` block as a line of its manifest, and the line a field of the
 * machines document is written on.
 */

export type LineMapper = (line: number, col: number) => { line: number; col: number };

/**
 * Maps lines of a `machines.yaml: |` block back to the manifest, so that a syntax error
 * in the embedded document points at the line the user sees in their editor.
 */
export function embeddedLineMapper(document: Document.Parsed, text: string, lineCounter: LineCounter, dataKey: string): LineMapper | undefined {
  const node = document.getIn(['data', dataKey], true);
  if (!isScalar(node) || node.type !== 'BLOCK_LITERAL' || node.range === undefined || node.range === null) return undefined;
  const headerStart = node.range[0];
  const headerEnd = text.indexOf('\n', headerStart);
  // an explicit indentation indicator (|2) shifts columns in ways not worth modelling
  if (headerEnd === -1 || /^\|[-+]?[1-9]|^\|[1-9]/.test(text.slice(headerStart, headerEnd))) return undefined;
  const indent = /^(?:[ \t]*\n)*( *)\S/.exec(text.slice(headerEnd + 1))?.[1]?.length ?? 0;
  const headerLine = lineCounter.linePos(headerStart).line;
  return (line, col) => ({ line: headerLine + line, col: col + indent });
}

/**
 * Where a field of the machines document is written: "line 7" (of the file or manifest the
 * user has), or "line 7 of machines.yaml" when the document came out of a ConfigMap's data.
 */
export function lineLocator(document: Document.Parsed | undefined, lineCounter: LineCounter, toOuterLines: LineMapper | undefined, suffix: string): (path: PathSegment[]) => string | undefined {
  return (path) => {
    const node = document?.getIn(path, true) as { range?: [number, number, number] | null } | undefined;
    const start = node?.range?.[0];
    if (start === undefined) return undefined;
    const inner = lineCounter.linePos(start);
    return `line ${(toOuterLines?.(inner.line, inner.col) ?? inner).line}${suffix}`;
  };
}
