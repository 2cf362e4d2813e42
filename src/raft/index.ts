// Public API of the pure Raft core.
export { RaftCore, type LeaseReadResult, type ReadIndexResult } from './core.js';
export type { TransferResult } from './transfer.js';
export { defaultRaftOptions, DEFAULT_DRIFT_MARGIN_RATIO } from './options.js';
export { leaseTicksFor } from './lease.js';
export { compareFencingTokens } from './fencing.js';
export { mulberry32 } from './prng.js';
export * from './types.js';
