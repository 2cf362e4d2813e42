import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { encodeKvCommand } from '../../src/state/kv-commands.js';
import { kvKeyBytesMax, kvValueBytesMax } from '../../src/state/kv-types.js';
import { KvStore } from '../../src/state/kv.js';
import { allReads, KvDriver } from './kv-test-helpers.js';

describe('KvStore put and get', () => {
  it('creates a key at version 1 and bumps version and revision by one per put', () => {
    const kv = new KvDriver();
    assert.equal(kv.store.revision, 0);
    assert.equal(kv.store.get('a'), null);
    assert.deepEqual(kv.put('a', 'x'), { ok: true, key: 'a', version: 1, revision: 1 });
    assert.deepEqual(kv.put('b', 'y'), { ok: true, key: 'b', version: 1, revision: 2 });
    assert.deepEqual(kv.put('a', 'z'), { ok: true, key: 'a', version: 2, revision: 3 });
    assert.deepEqual(kv.store.get('a'), { key: 'a', value: 'z', version: 2, revision: 3, createRevision: 1 });
    assert.equal(kv.store.revision, 3);
    assert.equal(kv.store.appliedIndex, 3);
  });

  it('put with ifVersion 0 on an existing key is a mismatch naming the current version and changes nothing', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    kv.put('a', 'y');
    assert.deepEqual(kv.put('a', 'z', 0), {
      ok: false,
      code: 'HA_ERR_VERSION_MISMATCH',
      key: 'a',
      currentVersion: 2,
    });
    assert.equal(kv.store.revision, 2);
    assert.equal(kv.store.get('a')?.value, 'y');
  });

  it('put with ifVersion equal to the current version succeeds, and ifVersion 0 creates an absent key', () => {
    const kv = new KvDriver();
    assert.deepEqual(kv.put('a', 'x', 0), { ok: true, key: 'a', version: 1, revision: 1 });
    assert.deepEqual(kv.put('a', 'y', 1), { ok: true, key: 'a', version: 2, revision: 2 });
    assert.deepEqual(kv.put('a', 'z', 1), {
      ok: false,
      code: 'HA_ERR_VERSION_MISMATCH',
      key: 'a',
      currentVersion: 2,
    });
    assert.deepEqual(kv.put('b', 'z', 3), {
      ok: false,
      code: 'HA_ERR_VERSION_MISMATCH',
      key: 'b',
      currentVersion: 0,
    });
  });
});

describe('KvStore delete', () => {
  it('delete then put restarts the version at 1 with a new createRevision', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    kv.put('a', 'y');
    assert.deepEqual(kv.del('a'), { ok: true, key: 'a', revision: 3 });
    assert.equal(kv.store.get('a'), null);
    assert.deepEqual(kv.put('a', 'z'), { ok: true, key: 'a', version: 1, revision: 4 });
    assert.deepEqual(kv.store.get('a'), { key: 'a', value: 'z', version: 1, revision: 4, createRevision: 4 });
  });

  it('delete of an absent key is NOT_FOUND and leaves the revision', () => {
    const kv = new KvDriver();
    kv.put('b', 'x');
    assert.deepEqual(kv.del('a'), { ok: false, code: 'HA_ERR_NOT_FOUND', key: 'a' });
    assert.deepEqual(kv.del('a', 0), { ok: false, code: 'HA_ERR_NOT_FOUND', key: 'a' });
    assert.equal(kv.store.revision, 1);
  });

  it('delete with a wrong ifVersion is a mismatch and keeps the key', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    assert.deepEqual(kv.del('a', 2), {
      ok: false,
      code: 'HA_ERR_VERSION_MISMATCH',
      key: 'a',
      currentVersion: 1,
    });
    assert.deepEqual(kv.del('b', 2), {
      ok: false,
      code: 'HA_ERR_VERSION_MISMATCH',
      key: 'b',
      currentVersion: 0,
    });
    assert.equal(kv.store.get('a')?.value, 'x');
    assert.deepEqual(kv.del('a', 1), { ok: true, key: 'a', revision: 2 });
  });
});

describe('KvStore txn', () => {
  it('a txn whose one compare fails changes nothing and leaves the revision', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    kv.put('b', 'y');
    const before = allReads(kv.store, ['a', 'b', 'c']);
    const result = kv.run({
      op: 'txn',
      compares: [
        { key: 'a', version: 1 },
        { key: 'b', version: 2 },
      ],
      ops: [
        { op: 'put', key: 'a', value: 'x2' },
        { op: 'delete', key: 'b' },
        { op: 'put', key: 'c', value: 'z' },
      ],
    });
    assert.deepEqual(result, { ok: true, revision: 2, succeeded: false });
    assert.deepEqual(allReads(kv.store, ['a', 'b', 'c']), { ...(before as object), appliedIndex: 3 });
  });

  it('a successful txn applies every op at one new revision', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    kv.put('b', 'y');
    const result = kv.run({
      op: 'txn',
      compares: [
        { key: 'a', version: 1 },
        { key: 'c', version: 0 },
      ],
      ops: [
        { op: 'put', key: 'a', value: 'x2' },
        { op: 'delete', key: 'b' },
        { op: 'put', key: 'c', value: 'z' },
      ],
    });
    assert.deepEqual(result, { ok: true, revision: 3, succeeded: true });
    assert.equal(kv.store.revision, 3);
    assert.deepEqual(kv.store.get('a'), {
      key: 'a',
      value: 'x2',
      version: 2,
      revision: 3,
      createRevision: 1,
    });
    assert.equal(kv.store.get('b'), null);
    assert.deepEqual(kv.store.get('c'), { key: 'c', value: 'z', version: 1, revision: 3, createRevision: 3 });
  });

  it('a txn that changes nothing (only deletes of absent keys) succeeds without a new revision', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    assert.deepEqual(kv.run({ op: 'txn', compares: [], ops: [{ op: 'delete', key: 'nope' }] }), {
      ok: true,
      revision: 1,
      succeeded: true,
    });
    assert.deepEqual(kv.run({ op: 'txn', compares: [], ops: [] }), {
      ok: true,
      revision: 1,
      succeeded: true,
    });
    assert.equal(kv.store.revision, 1);
  });

  it('a txn writing one key twice is refused as a bad request', () => {
    const kv = new KvDriver();
    const data = encodeRaw({
      op: 'txn',
      compares: [],
      ops: [
        { op: 'put', key: 'a', value: '1' },
        { op: 'put', key: 'a', value: '2' },
      ],
    });
    const result = kv.raw(data);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.code, 'HA_ERR_BAD_REQUEST');
    assert.equal(kv.store.revision, 0);
    assert.equal(kv.store.get('a'), null);
  });
});

describe('KvStore history', () => {
  it('keeps the newest historyPerKeyMax writes of a key oldest first, tombstones included', () => {
    const kv = new KvDriver({ historyPerKeyMax: 4 });
    kv.put('a', 'v1');
    kv.put('a', 'v2');
    kv.del('a');
    kv.put('a', 'w1');
    kv.put('a', 'w2');
    assert.deepEqual(kv.store.history('a'), [
      { version: 2, value: 'v2', revision: 2, deleted: false },
      { version: 0, value: '', revision: 3, deleted: true },
      { version: 1, value: 'w1', revision: 4, deleted: false },
      { version: 2, value: 'w2', revision: 5, deleted: false },
    ]);
    kv.del('a');
    const history = kv.store.history('a');
    assert.equal(history.length, 4);
    assert.deepEqual(history.at(-1), { version: 0, value: '', revision: 6, deleted: true });
    assert.deepEqual(
      history.map((e) => e.revision),
      [3, 4, 5, 6],
    );
  });

  it('past historyKeysMax drops the history of the least recently deleted keys first', () => {
    const kv = new KvDriver({ historyKeysMax: 2 });
    kv.put('live', '1');
    kv.put('live', '2'); // live with a past: counts
    kv.put('d1', 'x');
    kv.put('d2', 'x');
    kv.del('d1'); // 2 keys with a past
    assert.equal(kv.store.history('d1').length, 2);
    kv.del('d2'); // 3: d1 is the least recently modified deleted key
    assert.deepEqual(kv.store.history('d1'), []);
    assert.equal(kv.store.history('d2').length, 2);
    assert.equal(kv.store.history('live').length, 2);
  });

  it('with no deleted key left, a live key loses its past but keeps its current value', () => {
    const kv = new KvDriver({ historyKeysMax: 1 });
    kv.put('a', '1');
    kv.put('a', '2');
    kv.put('b', '1');
    kv.put('b', '2');
    assert.deepEqual(kv.store.history('a'), [{ version: 2, value: '2', revision: 2, deleted: false }]);
    assert.equal(kv.store.history('b').length, 2);
  });

  it('history returns copies: mutating them does not change the store', () => {
    const kv = new KvDriver();
    kv.put('a', '1');
    const history = kv.store.history('a') as Array<{ value: string }>;
    history[0].value = 'changed';
    assert.equal(kv.store.history('a')[0].value, '1');
  });
});

describe('KvStore list', () => {
  it('lists live keys with the prefix in key order, bounded by limit and paged by startAfterKey', () => {
    const kv = new KvDriver();
    for (const key of ['cfg/b', 'other', 'cfg/a', 'cfg/c', 'cfg/d']) kv.put(key, key);
    kv.del('cfg/d');
    assert.deepEqual(
      kv.store.list('cfg/', 2).map((e) => e.key),
      ['cfg/a', 'cfg/b'],
    );
    assert.deepEqual(
      kv.store.list('cfg/', 10, 'cfg/b').map((e) => e.key),
      ['cfg/c'],
    );
    assert.throws(() => kv.store.list('', 0), { code: 'HA_ERR_BAD_REQUEST' });
  });

  it('paging with the last key as cursor returns every live key exactly once, in order', () => {
    const kv = new KvDriver();
    const keys = Array.from({ length: 2500 }, (_, i) => `page/${String((i * 7) % 2500).padStart(4, '0')}`);
    for (const key of keys) kv.put(key, 'v');
    kv.put('pagf', 'outside the prefix');
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = kv.store.listPage('page/', 300, after);
      assert.equal(page.revision, kv.store.revision);
      seen.push(...page.entries.map((e) => e.key));
      if (!page.more) break;
      after = page.entries[page.entries.length - 1].key;
    }
    assert.deepEqual(seen, [...keys].sort());
  });

  it('listPage says whether more keys follow, and keys deleted or restored keep the order', () => {
    const kv = new KvDriver();
    for (const key of ['a/1', 'a/2', 'a/3', 'b']) kv.put(key, key);
    assert.deepEqual(
      { ...kv.store.listPage('a/', 2), entries: undefined },
      { entries: undefined, more: true, revision: 4 },
    );
    assert.equal(kv.store.listPage('a/', 3).more, false);
    kv.del('a/2');
    kv.put('a/0', 'new');
    assert.deepEqual(
      kv.store.listPage('a/', 10).entries.map((e) => e.key),
      ['a/0', 'a/1', 'a/3'],
    );
    const restored = new KvStore();
    restored.restore(kv.store.snapshot());
    assert.deepEqual(restored.listPage('', 10), kv.store.listPage('', 10));
    restored.apply(restored.appliedIndex + 1, encodeKvCommand({ op: 'put', key: 'a/2', value: 'back' }));
    assert.deepEqual(
      restored.listPage('a/', 10, 'a/0').entries.map((e) => e.key),
      ['a/1', 'a/2', 'a/3'],
    );
  });
});

describe('KvStore refuses bad input', () => {
  it('garbage command bytes give a BAD_REQUEST result and change no state', () => {
    const kv = new KvDriver();
    kv.put('a', 'x');
    const before = allReads(kv.store, ['a']);
    const garbage = [
      new Uint8Array([]),
      new Uint8Array([0xc1]),
      new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]),
      new Uint8Array([0x81, 0xa2, 0x6f, 0x70]), // truncated map
      Buffer.from('{"op":"put"}'),
      encodeRaw(42),
      encodeRaw({ op: 'put', key: 'a', value: 'y', extra: 1 }),
      encodeRaw({ op: 'put', key: 'a', value: 7 }),
      encodeRaw({ op: 'put', key: 'a', value: 'y', ifVersion: -1 }),
      encodeRaw({ op: 'put', key: 'a', value: 'y', ifVersion: 1.5 }),
      encodeRaw({ op: 'txn', compares: {}, ops: [] }),
      encodeRaw({ op: 'txn', compares: [], ops: [{ op: 'put', key: 'a', value: 'y', ifVersion: 1 }] }),
      encodeRaw({
        op: 'txn',
        compares: [],
        ops: Array.from({ length: 129 }, (_, i) => ({ op: 'delete', key: `k${i}` })),
      }),
      encodeRaw({ op: 'drop', key: 'a' }),
      encodeRaw(['put', 'a', 'y']),
      encodeRaw({ op: 'put', key: 'a', value: 'x'.repeat(kvValueBytesMax + 1) }),
    ];
    for (const data of garbage) {
      const result = kv.raw(data);
      assert.equal(result.ok, false, `accepted ${Buffer.from(data.subarray(0, 40)).toString('hex')}`);
      assert.equal(!result.ok && result.code, 'HA_ERR_BAD_REQUEST');
      assert.equal(typeof (result as { message: unknown }).message, 'string');
    }
    assert.deepEqual(allReads(kv.store, ['a']), { ...(before as object), appliedIndex: 1 + garbage.length });
  });

  it('bad keys are refused with BAD_REQUEST: empty, too long, control characters', () => {
    const kv = new KvDriver();
    for (const key of [
      '',
      'k'.repeat(kvKeyBytesMax + 1),
      'é'.repeat(kvKeyBytesMax / 2 + 1),
      'a\nb',
      'a\u0000',
      'a\u007f',
      'a\u0085',
    ]) {
      const result = kv.raw(encodeRaw({ op: 'put', key, value: 'v' }));
      assert.equal(!result.ok && result.code, 'HA_ERR_BAD_REQUEST', JSON.stringify(key));
    }
    assert.equal(kv.store.revision, 0);
    assert.equal(kv.store.size, 0);
    assert.deepEqual(kv.put('k'.repeat(kvKeyBytesMax), 'v'), {
      ok: true,
      key: 'k'.repeat(kvKeyBytesMax),
      version: 1,
      revision: 1,
    });
  });

  it('encodeKvCommand refuses a malformed command before it reaches the log', () => {
    assert.throws(() => encodeKvCommand({ op: 'put', key: '', value: 'v' }), { code: 'HA_ERR_BAD_REQUEST' });
  });

  it('apply asserts that indexes grow', () => {
    const store = new KvStore();
    store.apply(5, encodeKvCommand({ op: 'put', key: 'a', value: '1' }));
    assert.throws(
      () => store.apply(5, encodeKvCommand({ op: 'put', key: 'a', value: '1' })),
      assert.AssertionError,
    );
  });
});

const rawPackr = new Packr({ useRecords: false });

/** Encodes anything, bypassing validation, to play a client or peer that sends bad commands. */
function encodeRaw(value: unknown): Uint8Array {
  return rawPackr.pack(value);
}
