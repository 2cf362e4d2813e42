// One suite, every RaftStorage: what the core relies on must hold for the simulator's store and
// the production store alike. SQLite "reopen" closes the file and opens it again; memory "reopen"
// reloads the same object, which is its disk.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ClusterConfig, Entry, HardState, Snapshot } from '../../src/raft/types.js';
import { nodeId } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { SqliteStorage } from '../../src/storage/sqlite.js';
import type { PersistBatch, RaftStorage } from '../../src/storage/types.js';

export interface StorageHarness {
  readonly storage: RaftStorage;
  /** Closes the store and returns one that reads the same durable state. */
  reopen(): RaftStorage;
  dispose(): void;
}

const bootstrap: ClusterConfig = { voters: [nodeId('n1'), nodeId('n2'), nodeId('n3')], learners: [] };
const laterConfig: ClusterConfig = { voters: [nodeId('n1'), nodeId('n2')], learners: [nodeId('n4')] };

function entry(index: number, term: number): Entry {
  return {
    index,
    term,
    type: 'normal',
    data: new Uint8Array([index & 0xff, term & 0xff]),
    requestId: `r${index}`,
  };
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function batch(parts: Partial<PersistBatch>): PersistBatch {
  return { snapshot: null, entries: [], hardState: null, ...parts };
}

function snapshotAt(index: number, term: number, config: ClusterConfig = laterConfig): Snapshot {
  return { meta: { index, term, config }, data: new Uint8Array([0xde, 0xad, index & 0xff]) };
}

const indices = (list: readonly Entry[]): number[] => list.map((e) => e.index);

export function describeStorageConformance(name: string, factory: () => StorageHarness): void {
  describe(`${name} conforms to RaftStorage`, () => {
    const withStore = (fn: (h: StorageHarness) => void) => () => {
      const harness = factory();
      try {
        fn(harness);
      } finally {
        harness.dispose();
      }
    };

    it(
      'a new store loads term 0, no vote, commit 0, the bootstrap config at snapshot index 0 and no entries',
      withStore(({ storage }) => {
        assert.deepEqual(storage.load(bootstrap), {
          hardState: { term: 0, votedFor: null, commit: 0 },
          snapshot: { meta: { index: 0, term: 0, config: bootstrap }, data: new Uint8Array(0) },
          entries: [],
          applied: 0,
        });
      }),
    );

    it(
      'hard state and entries of every type are returned unchanged after reopening',
      withStore((h) => {
        const hardState: HardState = { term: 3, votedFor: nodeId('n2'), commit: 2 };
        const log: Entry[] = [
          { index: 1, term: 1, type: 'noop' },
          { index: 2, term: 2, type: 'config', config: laterConfig },
          { index: 3, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3]), requestId: 'req-3' },
          { index: 4, term: 3, type: 'normal', data: new Uint8Array(0) },
        ];
        h.storage.persist(batch({ entries: log, hardState }));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.hardState, hardState);
        assert.deepEqual(loaded.entries, log);
        assert.equal(loaded.snapshot.meta.index, 0);
        assert.equal(loaded.applied, 0);
      }),
    );

    it(
      'a vote for nobody (votedFor null) survives reopening as null',
      withStore((h) => {
        h.storage.persist(batch({ hardState: { term: 7, votedFor: null, commit: 0 } }));
        assert.deepEqual(h.reopen().load(bootstrap).hardState, { term: 7, votedFor: null, commit: 0 });
      }),
    );

    it(
      'successive batches append to the log and the last hard state wins',
      withStore((h) => {
        h.storage.persist(
          batch({ entries: entries(1, 3, 1), hardState: { term: 1, votedFor: null, commit: 0 } }),
        );
        h.storage.persist(
          batch({ entries: entries(4, 4, 1), hardState: { term: 1, votedFor: null, commit: 3 } }),
        );
        h.storage.persist(batch({ entries: entries(5, 7, 2) }));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.entries, [...entries(1, 4, 1), ...entries(5, 7, 2)]);
        assert.deepEqual(loaded.hardState, { term: 1, votedFor: null, commit: 3 });
      }),
    );

    it(
      'a batch starting mid-log replaces that entry and every later one',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 6, 1) }));
        h.storage.persist(batch({ entries: entries(4, 5, 2) }));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.entries, [...entries(1, 3, 1), ...entries(4, 5, 2)]);
      }),
    );

    it(
      'a batch rewriting the first entry replaces the whole log',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 4, 1) }));
        h.storage.persist(batch({ entries: entries(1, 1, 2) }));
        assert.deepEqual(h.reopen().load(bootstrap).entries, entries(1, 1, 2));
      }),
    );

    it(
      'a snapshot in a batch replaces the whole log (later entries diverged) and sets applied',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 8, 1) }));
        const snapshot = snapshotAt(5, 2);
        h.storage.persist(batch({ snapshot }));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.snapshot, snapshot);
        assert.deepEqual(loaded.entries, []);
        assert.equal(loaded.applied, 5);
      }),
    );

    it(
      'a snapshot past the last entry empties the log, and entries in the same batch follow it',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 3, 1) }));
        const snapshot = snapshotAt(10, 2);
        const hardState: HardState = { term: 2, votedFor: null, commit: 10 };
        h.storage.persist(batch({ snapshot, entries: entries(11, 12, 2), hardState }));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.snapshot, snapshot);
        assert.deepEqual(loaded.entries, entries(11, 12, 2));
        assert.deepEqual(loaded.hardState, hardState);
      }),
    );

    it(
      'compact() stores the snapshot and drops only the entries it covers',
      withStore((h) => {
        h.storage.persist(
          batch({ entries: entries(1, 10, 1), hardState: { term: 1, votedFor: null, commit: 10 } }),
        );
        const snapshot = snapshotAt(7, 1, bootstrap);
        h.storage.compact(snapshot);
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.snapshot, snapshot);
        assert.deepEqual(indices(loaded.entries), [8, 9, 10]);
        assert.equal(loaded.applied, 7);
      }),
    );

    it(
      'compact() at the last index leaves an empty log that new entries follow without a gap',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 4, 1) }));
        h.storage.compact(snapshotAt(4, 1));
        h.storage.persist(batch({ entries: entries(5, 6, 2) }));
        h.storage.compact(snapshotAt(5, 2));
        h.storage.persist(batch({ entries: entries(7, 7, 2) }));
        const loaded = h.reopen().load(bootstrap);
        assert.equal(loaded.snapshot.meta.index, 5);
        assert.deepEqual(indices(loaded.entries), [6, 7]);
        assert.equal(loaded.entries[0].index, loaded.snapshot.meta.index + 1);
      }),
    );

    it(
      'a later snapshot replaces an earlier one',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 9, 1) }));
        h.storage.compact(snapshotAt(3, 1));
        h.storage.compact(snapshotAt(6, 1, bootstrap));
        const loaded = h.reopen().load(bootstrap);
        assert.deepEqual(loaded.snapshot, snapshotAt(6, 1, bootstrap));
        assert.deepEqual(indices(loaded.entries), [7, 8, 9]);
      }),
    );

    it(
      'an empty batch changes nothing',
      withStore((h) => {
        h.storage.persist(
          batch({ entries: entries(1, 2, 1), hardState: { term: 1, votedFor: null, commit: 1 } }),
        );
        const before = h.storage.load(bootstrap);
        h.storage.persist(batch({}));
        assert.deepEqual(h.reopen().load(bootstrap), before);
      }),
    );

    it(
      'a batch that would leave a gap in the log is refused and changes nothing',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 2, 1) }));
        assert.throws(() => h.storage.persist(batch({ entries: entries(5, 5, 1) })), /gap/);
        assert.throws(() => h.storage.persist(batch({ entries: [entry(3, 1), entry(5, 1)] })), /contiguous/);
        assert.deepEqual(indices(h.reopen().load(bootstrap).entries), [1, 2]);
      }),
    );

    it(
      'the log returned by load() is the caller’s own: changing it does not change the store',
      withStore((h) => {
        h.storage.persist(batch({ entries: entries(1, 3, 1) }));
        const first = h.storage.load(bootstrap);
        (first.entries as Entry[]).length = 0;
        assert.deepEqual(indices(h.storage.load(bootstrap).entries), [1, 2, 3]);
      }),
    );
  });
}

describeStorageConformance('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return { storage, reopen: () => storage, dispose: () => storage.close() };
});

describeStorageConformance('SqliteStorage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anya-'));
  const file = path.join(dir, 'raft.db');
  let current = SqliteStorage.open(file);
  return {
    get storage() {
      return current;
    },
    reopen: () => {
      current.close();
      current = SqliteStorage.open(file);
      return current;
    },
    dispose: () => {
      current.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
