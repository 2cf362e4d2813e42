// A replicated state machine: applies committed commands in log order. apply() must be
// deterministic (same entries, same state, same results on every node) and must not throw for
// any command a client can submit: a refused command returns a result that says so.
import type { Index } from '../raft/types.js';

export interface StateMachine<Result = unknown> {
  apply(index: Index, data: Uint8Array): Result;
  /** The complete state, to be restored by restore() on any node. */
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  /**
   * Optional: the same snapshot made a slice at a time while apply() goes on, so that a large
   * state never holds the event loop for long. The chunks concatenated equal what snapshot()
   * returned at the moment the stream was opened. restore() closes an open stream.
   */
  snapshotStream?(): SnapshotStream;
}

export interface SnapshotStream {
  /** The next chunk, about maxBytes long (one record may make it longer); null after the last. */
  next(maxBytes: number): Uint8Array | null;
  /** Gives up on the stream; what the store saved for it is dropped. */
  close(): void;
}
