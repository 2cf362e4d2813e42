// The core cannot import node:assert (it stays free of node:*), so it carries its own. A broken
// invariant is a bug: crash with a clear message rather than give a silently wrong answer.

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`raft invariant: ${message}`);
}
