import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HaError } from '../../src/errors.js';
import type { KvCommand } from '../../src/state/kv-types.js';
import { decodeKvSnapshot, encodeKvSnapshot } from '../../src/state/kv-snapshot.js';
import { KvStore } from '../../src/state/kv.js';
import { allReads, KvDriver } from './kv-test-helpers.js';

const keys = ['a', 'b', 'c', 'cfg/x', 'gone'];

function populated(options = {}): KvDriver {
  const kv = new KvDriver(options);
  kv.put('b', '1');
  kv.put('a', '1');
  kv.put('a', '2');
  kv.put('gone', 'x');
  kv.del('gone');
  kv.run({
    op: 'txn',
    compares: [{ key: 'c', version: 0 }],
    ops: [
      { op: 'put', key: 'c', value: 'ç' },
      { op: 'put', key: 'cfg/x', value: 'line1\nline2' },
      { op: 'delete', key: 'b' },
    ],
  });
  kv.put('b', 'again');
  return kv;
}

const nextCommands: KvCommand[] = [
  { op: 'put', key: 'a', value: '3', ifVersion: 2 },
  { op: 'put', key: 'gone', value: 'back', ifVersion: 0 },
  { op: 'delete', key: 'c', ifVersion: 1 },
  { op: 'txn', compares: [{ key: 'b', version: 1 }], ops: [{ op: 'delete', key: 'cfg/x' }] },
  { op: 'delete', key: 'zzz' },
];

describe('KvStore snapshot and restore', () => {
  it('restore into a new store gives identical reads and identical results for the next commands', () => {
    const original = populated();
    const copy = new KvDriver({}, new KvStore());
    copy.store.restore(original.store.snapshot());
    assert.deepEqual(allReads(copy.store, keys), allReads(original.store, keys));
    for (const cmd of nextCommands) assert.deepEqual(copy.run(cmd), original.run(cmd), JSON.stringify(cmd));
    assert.deepEqual(allReads(copy.store, keys), allReads(original.store, keys));
    assert.deepEqual(copy.store.snapshot(), original.store.snapshot());
  });

  it('restored history evicts in the same order as the original under historyKeysMax', () => {
    const options = { historyKeysMax: 3, historyPerKeyMax: 3 };
    const original = populated(options);
    const copy = new KvDriver(options, new KvStore(options));
    copy.store.restore(original.store.snapshot());
    for (const key of ['p', 'q', 'r']) {
      original.put(key, '1');
      original.del(key);
      copy.put(key, '1');
      copy.del(key);
      assert.deepEqual(
        allReads(copy.store, [...keys, 'p', 'q', 'r']),
        allReads(original.store, [...keys, 'p', 'q', 'r']),
      );
    }
  });

  it('the same state gives the same bytes, whatever order it was built in', () => {
    const one = new KvDriver();
    one.run({
      op: 'txn',
      compares: [],
      ops: [
        { op: 'put', key: 'x', value: '1' },
        { op: 'put', key: 'y', value: '2' },
      ],
    });
    const two = new KvDriver();
    two.run({
      op: 'txn',
      compares: [],
      ops: [
        { op: 'put', key: 'y', value: '2' },
        { op: 'put', key: 'x', value: '1' },
      ],
    });
    assert.deepEqual(one.store.snapshot(), two.store.snapshot());
    assert.deepEqual(populated().store.snapshot(), populated().store.snapshot());
  });

  it('restore replaces the whole state, including keys the snapshot does not have', () => {
    const source = new KvDriver();
    source.put('only-in-source', '1');
    const target = populated();
    target.store.restore(source.store.snapshot());
    assert.deepEqual(
      allReads(target.store, [...keys, 'only-in-source']),
      allReads(source.store, [...keys, 'only-in-source']),
    );
  });

  it('corrupt snapshots are refused with HA_ERR_STORAGE_CORRUPT and leave the state unchanged', () => {
    const good = populated().store.snapshot();
    const target = populated();
    const before = allReads(target.store, keys);
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)] ^= 0x01;
    const wrongVersion = Buffer.from(good);
    wrongVersion[4] = 99;
    const cases = [
      new Uint8Array([]),
      Buffer.from('akvs'),
      good.subarray(0, good.length - 1),
      flipped,
      wrongVersion,
      Buffer.from('garbage!garbage!'),
    ];
    for (const data of cases) {
      assert.throws(
        () => target.store.restore(data),
        (err: unknown) => err instanceof HaError && err.code === 'HA_ERR_STORAGE_CORRUPT',
      );
    }
    assert.deepEqual(allReads(target.store, keys), before);
  });
});

describe('KvSnapshot codec', () => {
  const entry = (version: number, value: string, revision: number, deleted = false) => ({
    version,
    value,
    revision,
    deleted,
  });

  it('refuses well-checksummed snapshots that break the store invariants', () => {
    const bad = [
      // version gap
      {
        revision: 5,
        appliedIndex: 5,
        records: [{ key: 'a', createRevision: 1, entries: [entry(1, 'x', 1), entry(3, 'y', 2)] }],
      },
      // entry revision beyond the global revision
      {
        revision: 1,
        appliedIndex: 1,
        records: [{ key: 'a', createRevision: 2, entries: [entry(1, 'x', 2)] }],
      },
      // keys out of order
      {
        revision: 2,
        appliedIndex: 2,
        records: [
          { key: 'b', createRevision: 1, entries: [entry(1, 'x', 1)] },
          { key: 'a', createRevision: 2, entries: [entry(1, 'x', 2)] },
        ],
      },
      // tombstone carrying a value
      {
        revision: 2,
        appliedIndex: 2,
        records: [{ key: 'a', createRevision: 0, entries: [entry(1, 'x', 1), entry(0, 'x', 2, true)] }],
      },
      // createRevision disagrees with the creating entry
      {
        revision: 2,
        appliedIndex: 2,
        records: [{ key: 'a', createRevision: 2, entries: [entry(1, 'x', 1), entry(2, 'y', 2)] }],
      },
      // a key with no entries
      { revision: 2, appliedIndex: 2, records: [{ key: 'a', createRevision: 1, entries: [] }] },
      // an invalid key
      {
        revision: 1,
        appliedIndex: 1,
        records: [{ key: 'a\u0000', createRevision: 1, entries: [entry(1, 'x', 1)] }],
      },
    ];
    for (const state of bad) {
      assert.throws(
        () => decodeKvSnapshot(encodeKvSnapshot(state)),
        { code: 'HA_ERR_STORAGE_CORRUPT' },
        JSON.stringify(state),
      );
    }
  });

  it('a snapshot from a node keeping more history restores trimmed to the local bounds', () => {
    const wide = new KvDriver({ historyPerKeyMax: 10 });
    for (let i = 0; i < 6; i++) wide.put('a', `${i}`);
    const narrow = new KvStore({ historyPerKeyMax: 2 });
    narrow.restore(wide.store.snapshot());
    assert.deepEqual(
      narrow.history('a').map((e) => e.value),
      ['4', '5'],
    );
    assert.deepEqual(narrow.get('a'), wide.store.get('a'));
  });
});
