// Majority arithmetic over the voters of one configuration (thesis §3.6, §4.1). Learners never
// appear here: callers pass one value per voter.

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest value v such that a quorum of the given per-voter values are >= v: the quorum-th
 * highest. With no voters nothing can be agreed, so the answer is -Infinity.
 */
export function quorumValue(valuesPerVoter: readonly number[]): number {
  if (valuesPerVoter.length === 0) return Number.NEGATIVE_INFINITY;
  const sorted = [...valuesPerVoter].sort((a, b) => b - a);
  return sorted[quorumSize(sorted.length) - 1];
}
