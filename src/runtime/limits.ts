// Bounds of the runtime's queues (STYLE.md: every queue has a named bound).
export const runtimeLimits = {
  /** Client proposals waiting for their entry to be applied on this node. */
  proposalsPendingMax: 8192,
  /** Bytes of command data in those proposals (one is always admitted when none is pending). */
  proposalsPendingBytesMax: 64 * 1024 * 1024,
  /** Reads waiting for a read index or for the applied index to catch up. */
  readsPendingMax: 8192,
  /** Ready rounds processed in one turn; the core settles in two or three. */
  readyRoundsMax: 64,
  /** Ticks given at once to a process that was frozen; beyond every timeout and lease. */
  catchUpTicksMax: 1000,
} as const;
