// RaftStorage in memory, for unit tests and the deterministic simulator. Pure TypeScript (no
// node:* imports) because the simulator runs it. The object itself is the "disk": a simulated
// crash discards the node's core and runtime and keeps this object, and the restarted node calls
// load() on it again. close() therefore releases nothing.
//
// Entries and snapshots are immutable values, so they are stored by reference; only the
// containers are copied, so that a node's in-memory log never aliases what is durable.
import type { ClusterConfig, Entry, HardState, Index, RaftInitialState, Snapshot } from '../raft/types.js';
import type { PersistBatch, RaftStorage } from './types.js';

export interface MemoryStorageStats {
  /** Every call to persist(), including empty batches and the ones failNextPersist() broke. */
  readonly persistCalls: number;
  /** Entries in batches that became durable. */
  readonly entriesWritten: number;
}

export class MemoryStorage implements RaftStorage {
  private hardState: HardState | null = null;
  private snapshot: Snapshot | null = null;
  /** Entries after the snapshot index, contiguous. */
  private entries: Entry[] = [];
  private failNext = false;
  private persistCalls = 0;
  private entriesWritten = 0;

  get stats(): MemoryStorageStats {
    return { persistCalls: this.persistCalls, entriesWritten: this.entriesWritten };
  }

  /**
   * The next persist() throws and stores nothing of its batch: a crash during fsync, where the
   * atomic transaction is lost as a whole.
   */
  failNextPersist(fail = true): void {
    this.failNext = fail;
  }

  load(bootstrap: ClusterConfig): RaftInitialState {
    const snapshot = this.snapshot ?? {
      meta: { index: 0, term: 0, config: bootstrap },
      data: new Uint8Array(0),
    };
    return {
      hardState: this.hardState ?? { term: 0, votedFor: null, commit: 0 },
      snapshot,
      entries: this.entries.slice(),
      applied: snapshot.meta.index,
    };
  }

  persist(batch: PersistBatch): void {
    this.persistCalls += 1;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('simulated power loss during fsync');
    }
    // Checked before anything changes, so that a rejected batch leaves the store as it was.
    const snapshotIndex = Math.max(batch.snapshot?.meta.index ?? 0, this.snapshotIndex());
    check(
      batch.snapshot === null || batch.snapshot.meta.index >= this.snapshotIndex(),
      'a snapshot must not be older than the stored one',
    );
    checkEntries(batch.entries, snapshotIndex, batch.snapshot !== null ? snapshotIndex : this.lastIndex());

    if (batch.snapshot !== null) {
      // A received snapshot replaces the whole log: entries after it came from another history.
      this.entries = [];
      this.installSnapshot(batch.snapshot);
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      this.entries.length = first.index - this.snapshotIndex() - 1;
      this.entries.push(...batch.entries);
      this.entriesWritten += batch.entries.length;
    }
    if (batch.hardState !== null) this.hardState = batch.hardState;
  }

  compact(snapshot: Snapshot): void {
    check(snapshot.meta.index >= this.snapshotIndex(), 'a snapshot must not be older than the stored one');
    check(snapshot.meta.index <= this.lastIndex(), 'compaction cannot go past the last stored entry');
    this.installSnapshot(snapshot);
  }

  close(): void {}

  private installSnapshot(snapshot: Snapshot): void {
    this.entries = this.entries.filter((entry) => entry.index > snapshot.meta.index);
    this.snapshot = snapshot;
  }

  private snapshotIndex(): Index {
    return this.snapshot?.meta.index ?? 0;
  }

  private lastIndex(): Index {
    return this.entries.at(-1)?.index ?? this.snapshotIndex();
  }
}

/** The rules a batch's entries follow; breaking one is a bug in the caller. */
function checkEntries(entries: readonly Entry[], snapshotIndex: Index, lastIndex: Index): void {
  const first = entries[0];
  if (first === undefined) return;
  check(first.index > snapshotIndex, `entry ${first.index} is covered by the snapshot at ${snapshotIndex}`);
  check(first.index <= lastIndex + 1, `entry ${first.index} would leave a gap after ${lastIndex}`);
  for (let i = 1; i < entries.length; i++) {
    check(entries[i].index === first.index + i, `batch entries are not contiguous at ${entries[i].index}`);
    check(entries[i].term >= entries[i - 1].term, `batch entry terms decrease at ${entries[i].index}`);
  }
}

// node:assert is off limits here (the simulator runs this file); a plain Error serves the same
// purpose: the caller broke the storage contract and must crash.
function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`MemoryStorage: ${message}`);
}
