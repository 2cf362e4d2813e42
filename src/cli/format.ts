// Human output of the client commands: aligned columns, one view per API answer. Machine output
// (--json) bypasses this file and prints the API's JSON as received.
import type { KvEntryView, KvHistoryItem, NodeStatusView } from '../api/backend.js';

/** Values longer than this are cut in tables, so that one large value cannot swamp a listing. */
export const tableValueCharsMax = 60;

const columnGap = '  ';

/** Rows under a header, each column as wide as its widest cell; the last column is not padded. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, col) => (col === cells.length - 1 ? cell : cell.padEnd(widths[col])))
      .join(columnGap)
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Label/value pairs, labels padded to one width. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([label]) => label.length));
  return (
    fields.map(([label, value]) => `${(label + ':').padEnd(width + 1)}${columnGap}${value}`).join('\n') + '\n'
  );
}

/**
 * A value made safe for one table cell: control characters escaped (a newline in a value must not
 * break the table), and cut to charsMax with an ellipsis.
 */
export function displayValue(value: string, charsMax = tableValueCharsMax): string {
  const escaped = value.replace(/\p{Cc}/gu, (c) => {
    const json = JSON.stringify(c).slice(1, -1); // \n, \t, \u0001 ...; C1 controls come back raw
    return json.length > 1 ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return escaped.length <= charsMax ? escaped : escaped.slice(0, charsMax - 1) + '…';
}

const orDash = (v: string | number | null | undefined): string =>
  v === null || v === undefined ? '-' : String(v);

export function formatStatus(s: NodeStatusView): string {
  const head = formatFields([
    ['node', s.nodeId],
    ['role', s.role],
    ['term', String(s.term)],
    ['leader', orDash(s.leaderId)],
    ['commit', String(s.commitIndex)],
    ['applied', String(s.appliedIndex)],
    [
      'fencing token',
      s.fencingToken === null ? '-' : `term ${s.fencingToken.term}, index ${s.fencingToken.index}`,
    ],
  ]);
  if (s.members.length === 0) return head;
  const members = formatTable(
    ['NODE', 'ADDRESS', 'ROLE', 'REACHABLE', 'LAST CONTACT', 'MATCH INDEX'],
    s.members.map((m) => [
      m.nodeId,
      m.address,
      m.role,
      m.reachable ? 'yes' : 'no',
      m.lastContactMs === null ? '-' : `${m.lastContactMs} ms`,
      orDash(m.matchIndex),
    ]),
  );
  return `${head}\n${members}`;
}

export function formatEntry(e: KvEntryView): string {
  return formatFields([
    ['key', e.key],
    ['version', String(e.version)],
    ['revision', String(e.revision)],
    ['value', displayValue(e.value, Number.POSITIVE_INFINITY)],
  ]);
}

export function formatEntries(items: readonly KvEntryView[]): string {
  if (items.length === 0) return '(no keys)\n';
  return formatTable(
    ['KEY', 'VERSION', 'REVISION', 'VALUE'],
    items.map((e) => [displayValue(e.key), String(e.version), String(e.revision), displayValue(e.value)]),
  );
}

export function formatHistory(items: readonly KvHistoryItem[]): string {
  if (items.length === 0) return '(no history)\n';
  return formatTable(
    ['VERSION', 'REVISION', 'VALUE'],
    items.map((h) => [
      String(h.version),
      String(h.revision),
      h.deleted || h.value === null ? '(deleted)' : displayValue(h.value),
    ]),
  );
}
