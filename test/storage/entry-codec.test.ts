// The byte formats behind the SQLite store: entries and configs round-trip, and the row checksum
// notices a change in any field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../src/raft/types.js';
import { nodeId } from '../../src/raft/types.js';
import {
  decodeConfig,
  decodeEntry,
  encodeConfig,
  encodeEntryPayload,
  entryTypeCode,
  entryTypeFromCode,
  rowChecksum,
} from '../../src/storage/entry-codec.js';

describe('entry codec', () => {
  it('every entry type round-trips, with absent fields staying absent', () => {
    const samples: Entry[] = [
      { index: 1, term: 1, type: 'noop' },
      {
        index: 2,
        term: 1,
        type: 'config',
        config: { voters: [nodeId('a'), nodeId('b')], learners: [nodeId('c')] },
      },
      { index: 3, term: 2, type: 'normal', data: new Uint8Array([0, 255, 7]), requestId: 'req' },
      { index: 2 ** 40, term: 2 ** 33, type: 'normal', data: new Uint8Array(0) },
    ];
    for (const entry of samples) {
      const payload = encodeEntryPayload(entry);
      assert.deepEqual(decodeEntry(entry.index, entry.term, entryTypeCode(entry.type), payload), entry);
    }
  });

  it('an unknown entry type code is an error, not a guess', () => {
    assert.throws(() => entryTypeFromCode(3), /unknown entry type code 3/);
  });

  it('a config round-trips and a malformed one is an error', () => {
    const config = { voters: [nodeId('a')], learners: [] };
    assert.deepEqual(decodeConfig(encodeConfig(config)), config);
    assert.throws(() => decodeConfig(encodeConfig({ voters: [1 as never], learners: [] })), /voters/);
  });

  it('the row checksum changes when any field changes, or a byte moves between fields', () => {
    const base = rowChecksum([5, 1, 0, new Uint8Array([1, 2, 3])]);
    assert.equal(rowChecksum([5, 1, 0, new Uint8Array([1, 2, 3])]), base);
    assert.notEqual(rowChecksum([6, 1, 0, new Uint8Array([1, 2, 3])]), base);
    assert.notEqual(rowChecksum([5, 2, 0, new Uint8Array([1, 2, 3])]), base);
    assert.notEqual(rowChecksum([5, 1, 0, new Uint8Array([1, 2, 4])]), base);
    assert.notEqual(rowChecksum(['ab', 'c']), rowChecksum(['a', 'bc']));
    assert.notEqual(rowChecksum([null]), rowChecksum(['']));
  });
});
