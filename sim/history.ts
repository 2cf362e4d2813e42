// A client history of the replicated KV store: what each client asked for, when, and what it was
// told. The simulator records one per run and the fault tests record one against real processes;
// sim/linearizability.ts decides whether some single order of the operations explains it.
//
// Times are milliseconds on one clock shared by every client (the simulated clock, or the test
// process's monotonic clock). Only their order matters.

/**
 * A request against one key.
 *
 * Semantics per key, which the checker's model reproduces exactly: the state is absent or
 * {value, version}.
 * - put without ifVersion: absent → version 1; present → version + 1, value replaced.
 * - put with ifVersion n: the current version (0 when absent) must equal n, else nothing changes
 *   and the output is {ok: false, currentVersion}; when it matches, as a plain put.
 * - delete: absent → {ok: false, reason: 'notFound'}, except that ifVersion n > 0 on an absent key
 *   is {reason: 'mismatch', currentVersion: 0} (the condition is checked first); present with ifVersion differing from the
 *   current version → {ok: false, reason: 'mismatch', currentVersion}; otherwise the key is removed
 *   and its version starts again from 0.
 * - get: reads the state and changes nothing.
 */
export type KvOp =
  | { kind: 'get' }
  /** ifVersion 0 = must not exist; n = current version must equal n. */
  | { kind: 'put'; value: string; ifVersion?: number }
  | { kind: 'delete'; ifVersion?: number };

export type KvOutput =
  | { kind: 'get'; found: false }
  | { kind: 'get'; found: true; value: string; version: number }
  | { kind: 'put'; ok: true; version: number }
  /** The compare failed and nothing changed; it still observed the state, so it is linearized too. */
  | { kind: 'put'; ok: false; currentVersion: number }
  | { kind: 'delete'; ok: true }
  | { kind: 'delete'; ok: false; reason: 'notFound' }
  | { kind: 'delete'; ok: false; reason: 'mismatch'; currentVersion: number };

export interface HistoryOp {
  /** Unique within a history; failure reports name operations by it. */
  readonly id: number;
  readonly clientId: number;
  readonly key: string;
  readonly op: KvOp;
  readonly invokeMs: number;
  /** null = indeterminate (timed out / connection lost): the op may or may not have taken effect, at any time after invokeMs. */
  readonly returnMs: number | null;
  /** null iff returnMs is null. */
  readonly output: KvOutput | null;
}
