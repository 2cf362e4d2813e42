import { crc32 } from './crc32.js';
import { leaseTicksFor } from './lease.js';
import type { NodeId, Prng, RaftOptions } from './types.js';

/** Relative tick-rate drift assumed between any two nodes when deriving the default lease. */
export const DEFAULT_DRIFT_MARGIN_RATIO = 0.1;

export function defaultRaftOptions(
  id: NodeId,
  prng: Prng,
  overrides: Partial<RaftOptions> = {},
): RaftOptions {
  const electionTicks = overrides.electionTicks ?? 10;
  return {
    id,
    prng,
    electionTicks,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    leaseTicks: leaseTicksFor(electionTicks, DEFAULT_DRIFT_MARGIN_RATIO),
    entriesPerAppendMax: 64,
    appendBytesMax: 1024 * 1024,
    inflightMax: 32,
    snapshotChunkBytes: 1024 * 1024,
    crc32,
    uncommittedEntriesMax: 4096,
    uncommittedBytesMax: 64 * 1024 * 1024,
    pendingReadsMax: 1024,
    fastFailover: true,
    ...overrides,
  };
}
