// Deliberately broken cores, selected by name. Each must make the simulator report a violation;
// test/sim/mutations.test.ts proves it, and keeps them out of production code paths (they are
// only reachable through RaftOptions.mutations, which nothing outside the simulator sets).
import type { Mutations } from '../src/raft/types.js';

export const mutationsByName = {
  doubleVote: { doubleVote: true },
  commitOldTerms: { commitOldTerms: true },
  skipPrevCheck: { skipPrevCheck: true },
  longLease: { leaseFactor: 3 },
} as const satisfies Record<string, Mutations>;

export type MutationName = keyof typeof mutationsByName;
