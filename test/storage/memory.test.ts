// MemoryStorage's simulator hooks: a crash during fsync, and the counters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterConfig, Entry } from '../../src/raft/types.js';
import { nodeId } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/storage/memory.js';

const bootstrap: ClusterConfig = { voters: [nodeId('n1')], learners: [] };

function noops(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= to; index++) out.push({ index, term, type: 'noop' });
  return out;
}

describe('MemoryStorage', () => {
  it('failNextPersist loses exactly the next batch: earlier and later batches are durable', () => {
    const storage = new MemoryStorage();
    storage.persist({
      snapshot: null,
      entries: noops(1, 2, 1),
      hardState: { term: 1, votedFor: null, commit: 1 },
    });

    storage.failNextPersist();
    assert.throws(
      () =>
        storage.persist({
          snapshot: { meta: { index: 2, term: 1, config: bootstrap }, data: new Uint8Array([1]) },
          entries: noops(3, 4, 2),
          hardState: { term: 2, votedFor: nodeId('n1'), commit: 2 },
        }),
      { message: 'simulated power loss during fsync' },
    );
    const afterCrash = storage.load(bootstrap);
    assert.deepEqual(afterCrash.entries, noops(1, 2, 1));
    assert.deepEqual(afterCrash.hardState, { term: 1, votedFor: null, commit: 1 });
    assert.equal(afterCrash.snapshot.meta.index, 0);

    storage.persist({ snapshot: null, entries: noops(3, 3, 3), hardState: null });
    assert.deepEqual(storage.load(bootstrap).entries, [...noops(1, 2, 1), ...noops(3, 3, 3)]);
  });

  it('stats count every persist call and only the entries that became durable', () => {
    const storage = new MemoryStorage();
    storage.persist({ snapshot: null, entries: noops(1, 3, 1), hardState: null });
    storage.failNextPersist();
    assert.throws(() => storage.persist({ snapshot: null, entries: noops(4, 5, 1), hardState: null }));
    storage.persist({ snapshot: null, entries: [], hardState: null });
    storage.persist({ snapshot: null, entries: noops(3, 4, 2), hardState: null });
    assert.deepEqual(storage.stats, { persistCalls: 4, entriesWritten: 5 });
  });

  it('a restarted node reloads what was durable, not what its previous core held in memory', () => {
    const storage = new MemoryStorage();
    storage.persist({ snapshot: null, entries: noops(1, 2, 1), hardState: null });
    const crashedNode = storage.load(bootstrap);
    (crashedNode.entries as Entry[]).push({ index: 3, term: 1, type: 'noop' });
    assert.deepEqual(storage.load(bootstrap).entries, noops(1, 2, 1));
  });
});
