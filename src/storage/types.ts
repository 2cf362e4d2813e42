// Durable storage of the Raft log, hard state and snapshots. Implementations: memory.ts (tests and
// the simulator) and sqlite.ts (production). test/storage/conformance.test.ts runs one suite
// against both.
//
// persist() is synchronous: better-sqlite3 is synchronous, and a synchronous persist() means
// nothing that depends on the batch can be sent between "written" and "durable" (Ready ordering
// contract, src/raft/types.ts). Each call is atomic: after a crash either all of it is durable or
// none. A store may also offer persistAsync(): the runtime then keeps one Ready in flight while
// the write completes, sending only the messages that do not depend on it (the simulator's
// store does, so that writes overlap sends as they will once writes leave the event loop).
import type { ClusterConfig, Entry, HardState, RaftInitialState, Snapshot } from '../raft/types.js';

export interface PersistBatch {
  /**
   * A snapshot received from the leader. Installed first: it replaces the stored snapshot AND the
   * whole log (entries after it belong to a history that diverged at or before its index).
   */
  readonly snapshot: Snapshot | null;
  /** Replaces every stored entry whose index >= entries[0].index, then appends these. */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

export interface RaftStorage {
  /**
   * What the core starts from. A new store returns term 0, no vote, commit 0, a snapshot at
   * index 0 holding `bootstrap` and empty data, and no entries. `applied` is the snapshot index:
   * the state machine is rebuilt from the snapshot plus the committed log.
   */
  load(bootstrap: ClusterConfig): RaftInitialState;
  /** One durable, atomic write (one transaction, one fsync) per Ready. */
  persist(batch: PersistBatch): void;
  /**
   * Optional asynchronous form of persist(): the same atomic write, with `done` called once it
   * is durable. At most one call is outstanding at a time (the runtime waits for `done` before
   * it takes the next Ready). A crash before `done` may lose the batch whole, never part of it.
   */
  persistAsync?(batch: PersistBatch, done: () => void): void;
  /**
   * Log compaction: store a snapshot the local state machine made at snapshot.meta.index (which
   * is <= the applied index) and drop the entries it covers. Atomic.
   */
  compact(snapshot: Snapshot): void;
  /**
   * Optional asynchronous form of compact(): `done(null)` once the snapshot is durable and the
   * covered entries are dropped, `done(err)` if nothing changed. Meanwhile persist() goes on. A
   * snapshot no newer than the stored one when it is ready to be recorded (one received from
   * the leader arrived meanwhile) is dropped and reported as an error.
   */
  compactAsync?(snapshot: Snapshot, done: (err: Error | null) => void): void;
  close(): void;
}
