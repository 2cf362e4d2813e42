// docs/errors.md and the errorTable in src/errors.ts must list the same codes with the same HTTP
// statuses: the doc is what operators read, the table is what the code does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { errorTable, HaError, isHaErrorCode } from '../src/errors.js';

// Tests run from dist/test/; the doc stays at the project root.
const docUrl = new URL('../../docs/errors.md', import.meta.url);

async function documentedCodes(): Promise<Map<string, number>> {
  const text = await readFile(docUrl, 'utf8');
  const rows = new Map<string, number>();
  const headerAt = text
    .split('\n')
    .findIndex((line) => /^\|\s*code\s*\|\s*HTTP status\s*\|\s*meaning\s*\|/.test(line));
  assert.ok(headerAt >= 0, 'docs/errors.md has no "| code | HTTP status | meaning |" table');
  for (const line of text.split('\n').slice(headerAt + 2)) {
    if (!line.startsWith('|')) break;
    const [code, status] = line
      .split('|')
      .slice(1, 3)
      .map((cell) => cell.trim().replace(/^`|`$/g, ''));
    assert.ok(!rows.has(code), `${code} is listed twice in docs/errors.md`);
    rows.set(code, Number(status));
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('lists exactly the codes of errorTable, each with the same HTTP status', async () => {
    const documented = await documentedCodes();
    const table = new Map(Object.entries(errorTable).map(([code, { status }]) => [code, status as number]));
    assert.deepEqual(documented, table);
  });
});

describe('HaError', () => {
  it('maps its code to the table status and serialises details beside code and message', () => {
    const e = new HaError('HA_ERR_VERSION_MISMATCH', 'stale', { currentVersion: 4 });
    assert.equal(e.httpStatus, 409);
    assert.deepEqual(e.toJSON(), {
      error: { code: 'HA_ERR_VERSION_MISMATCH', message: 'stale', currentVersion: 4 },
    });
    assert.ok(isHaErrorCode('HA_ERR_TIMEOUT'));
    assert.ok(!isHaErrorCode('toString'));
  });
});
