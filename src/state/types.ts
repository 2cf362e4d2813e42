// A replicated state machine: applies committed commands in log order. apply() must be
// deterministic (same entries, same state, same results on every node) and must not throw for
// any command a client can submit: a refused command returns a result that says so.
import type { Index } from '../raft/types.js';

export interface StateMachine<Result = unknown> {
  apply(index: Index, data: Uint8Array): Result;
  /** The complete state, to be restored by restore() on any node. */
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}
