import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { displayValue, formatFields, formatStatus, formatTable } from '../../src/cli/format.js';

describe('CLI formatting', () => {
  it('formatTable pads each column to its widest cell and leaves no trailing spaces', () => {
    const text = formatTable(
      ['A', 'LONG HEADER', 'C'],
      [
        ['wide cell', 'x', ''],
        ['b', 'y', 'z'],
      ],
    );
    assert.equal(text, 'A          LONG HEADER  C\nwide cell  x\nb          y            z\n');
  });

  it('formatFields aligns values after the labels', () => {
    assert.equal(
      formatFields([
        ['a', '1'],
        ['long', '2'],
      ]),
      'a:     1\nlong:  2\n',
    );
  });

  it('displayValue escapes control characters and cuts long values with an ellipsis', () => {
    assert.equal(displayValue('a\nb\tc\u0001\u0085'), 'a\\nb\\tc\\u0001\\u0085');
    const cut = displayValue('x'.repeat(100), 10);
    assert.equal(cut, 'x'.repeat(9) + '…');
    assert.equal(cut.length, 10);
  });

  it('formatStatus shows a dash for an unknown leader and fencing token, and no table without members', () => {
    const text = formatStatus({
      nodeId: 'n1',
      role: 'candidate',
      term: 4,
      leaderId: null,
      commitIndex: 0,
      appliedIndex: 0,
      fencingToken: null,
      members: [],
    });
    assert.match(text, /^leader:\s+-$/m);
    assert.match(text, /^fencing token:\s+-$/m);
    assert.doesNotMatch(text, /NODE/);
  });
});
