// The runtime's only source of time. Production uses the monotonic system clock; the simulator
// injects a simulated clock per node (with drift), which is what makes runs reproducible.

export interface TimerHandle {
  readonly __timer: true;
}

export interface Clock {
  /** Monotonic milliseconds; never goes backwards, unrelated to wall-clock time. */
  nowMs(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The system clock. A zero delay runs on the next turn of the event loop (setImmediate): a
 * setTimeout(0) waits at least 1 ms in Node, and the runtime schedules one per Ready round, so
 * that would add a millisecond to every hop of every write.
 */
export const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimeout: (fn, delayMs) => {
    if (delayMs <= 0) return { immediate: setImmediate(fn) } as unknown as TimerHandle;
    return { timeout: setTimeout(fn, delayMs) } as unknown as TimerHandle;
  },
  clearTimeout: (handle) => {
    const h = handle as unknown as { immediate?: NodeJS.Immediate; timeout?: NodeJS.Timeout };
    if (h.immediate) clearImmediate(h.immediate);
    if (h.timeout) clearTimeout(h.timeout);
  },
};
