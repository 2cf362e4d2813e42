// Leader lease (thesis §6.4.1). A follower that heard from its leader refuses to vote for anyone
// else for electionTicks of its own ticks (leader stickiness, §4.2.3). The leader stamps every
// append/heartbeat with its own tick counter at send time and followers echo it. Once a quorum of
// voters has echoed a tick >= S, none of them can help elect another leader until electionTicks
// of *their* ticks have passed since they received it, which is after S. So the leader may serve
// reads locally while its own tick counter is below S + leaseTicks, provided leaseTicks of its
// ticks surely take less real time than electionTicks of any follower's ticks.

import type { RaftNode } from './node.js';
import { quorumValue } from './quorum.js';

/**
 * The longest safe lease, in leader ticks.
 *
 * Let d (driftMarginRatio) bound how much slower one node's tick rate can be than another's: over
 * any real interval in which a follower counts F ticks, the leader counts at least (1 - d) * F
 * (a slow leader clock and a fast follower clock is the dangerous pairing: the lease lasts longer
 * in real time while the follower's refusal runs out sooner). A follower may vote again after
 * electionTicks (E) of its ticks, and its count starts at a tick boundary after receipt, so only
 * E - 1 whole follower ticks are guaranteed to separate receipt and vote; the leader has then
 * counted at least (1 - d)(E - 1) = E(1 - d) - 1 + d ticks. A lease L <= floor(E(1 - d)) - 1 is
 * strictly shorter for any d > 0. If each clock may deviate from real time by +-r, pass the
 * relative bound d = 2r / (1 + r).
 */
export function leaseTicksFor(electionTicks: number, driftMarginRatio: number): number {
  return Math.max(0, Math.floor(electionTicks * (1 - driftMarginRatio)) - 1);
}

/** The leader tick from which the current lease runs: the quorum-th highest acknowledged tick. */
export function leaseStartTick(r: RaftNode): number {
  const ticks = r.config.voters.map((v) =>
    v === r.id ? r.nowTicks : (r.progress.get(v)?.ackedTick ?? Number.NEGATIVE_INFINITY),
  );
  return quorumValue(ticks);
}

/** Ticks from now for which the lease stays valid: 0 when it is not valid. */
export function leaseRemainingTicks(r: RaftNode): number {
  if (!leaseIsValid(r)) return 0;
  const leaseTicks = r.opts.leaseTicks * (r.opts.mutations?.leaseFactor ?? 1);
  return leaseStartTick(r) + leaseTicks - r.nowTicks;
}

export function leaseIsValid(r: RaftNode): boolean {
  if (r.role !== 'leader' || !r.leasesServed()) return false;
  // A timeoutNow lets the target win votes despite stickiness, and it may arrive late, even after
  // the transfer was abandoned: no lease for the rest of this term once one has been sent.
  const transferring = r.transferee !== null || r.timeoutNowSentThisTerm;
  if (transferring && !r.opts.mutations?.leaseIgnoresTransfer) return false;
  if (!r.committedInCurrentTerm()) return false;
  const leaseTicks = r.opts.leaseTicks * (r.opts.mutations?.leaseFactor ?? 1);
  return leaseStartTick(r) + leaseTicks > r.nowTicks;
}
