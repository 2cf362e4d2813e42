// Elections (thesis §3.4), the election restriction (§5.4.1 / §3.6.1), pre-vote (§9.6) and leader
// stickiness (§4.2.3): both the campaigning side and the voting side.

import { assert } from './assert.js';
import { isVoter } from './config.js';
import { becomeFollower, setLeader } from './follower.js';
import { becomeLeader, quorumActive } from './leader.js';
import type { RaftNode } from './node.js';
import { quorumSize } from './quorum.js';
import type { PreVoteMsg, PreVoteRespMsg, VoteMsg, VoteRespMsg } from './types.js';

/** Election timeout (or fast failover): pre-vote first when enabled, so a node that cannot win
 * never inflates the term and disrupts a working leader (§9.6). */
export function startElection(r: RaftNode): void {
  if (!r.isVoter() || r.role === 'leader') return;
  if (r.opts.preVote) becomePreCandidate(r);
  else campaign(r, false);
}

function becomePreCandidate(r: RaftNode): void {
  r.role = 'preCandidate';
  setLeader(r, null);
  r.votes.clear();
  r.resetElectionTimer();
  r.votes.set(r.id, true);
  if (tally(r).granted >= quorumSize(r.config.voters.length)) {
    campaign(r, false);
    return;
  }
  for (const v of r.config.voters) {
    if (v === r.id) continue;
    r.send({
      type: 'preVote',
      from: r.id,
      to: v,
      term: r.term + 1,
      lastLogIndex: r.log.lastIndex,
      lastLogTerm: r.log.lastTerm,
    });
  }
}

/** Becomes a candidate in the next term and asks for votes; `transfer` marks a campaign ordered
 * by the leader (§3.10), which voters honour despite stickiness. */
export function campaign(r: RaftNode, transfer: boolean): void {
  assert(r.isVoter(), 'only voters campaign');
  r.term += 1;
  r.votedFor = r.id;
  r.role = 'candidate';
  setLeader(r, null);
  r.votes.clear();
  r.resetElectionTimer();
  r.votes.set(r.id, true);
  if (tally(r).granted >= quorumSize(r.config.voters.length)) {
    becomeLeader(r);
    return;
  }
  for (const v of r.config.voters) {
    if (v === r.id) continue;
    r.send({
      type: 'vote',
      from: r.id,
      to: v,
      term: r.term,
      lastLogIndex: r.log.lastIndex,
      lastLogTerm: r.log.lastTerm,
      transfer,
    });
  }
}

function tally(r: RaftNode): { granted: number; rejected: number } {
  let granted = 0;
  let rejected = 0;
  for (const v of r.config.voters) {
    const vote = r.votes.get(v);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  return { granted, rejected };
}

export function handleVoteResp(r: RaftNode, m: PreVoteRespMsg | VoteRespMsg): void {
  const expected = m.type === 'preVoteResp' ? 'preCandidate' : 'candidate';
  if (r.role !== expected || !isVoter(r.config, m.from)) return;
  r.votes.set(m.from, !m.reject);
  const { granted, rejected } = tally(r);
  const quorum = quorumSize(r.config.voters.length);
  if (granted >= quorum) {
    if (r.role === 'preCandidate') campaign(r, false);
    else becomeLeader(r);
  } else if (rejected >= quorum) {
    becomeFollower(r, r.term, null);
  }
}

/**
 * Leader stickiness (§4.2.3): a server that heard from a live leader within the minimum election
 * timeout refuses to help elect another. The leader lease (§6.4.1) relies on this.
 */
export function inLease(r: RaftNode): boolean {
  if (r.role === 'leader') return quorumActive(r);
  return r.heardFromLeaderRecently();
}

/** RequestVote / PreVote receiver. Term handling (and stickiness for votes) happened in step. */
export function handleVoteRequest(r: RaftNode, m: PreVoteMsg | VoteMsg): void {
  const upToDate = r.logUpToDate(m.lastLogIndex, m.lastLogTerm);
  if (m.type === 'preVote') {
    // Would we vote for m.from if it campaigned in m.term? Nothing is recorded (§9.6).
    const grant = m.term > r.term && (upToDate || r.opts.mutations?.voteIgnoresLog === true) && !inLease(r);
    r.send({ type: 'preVoteResp', from: r.id, to: m.from, term: grant ? m.term : r.term, reject: !grant });
    // Fast failover ranks the followers by id (core.ts peerDisconnected). One that is waiting its
    // turn or pre-campaigning steps aside when a voter ranked before it asks first with a log at
    // least as good: campaigning too would only split the vote (each voting for itself) and cost
    // a randomized election timeout. If that voter cannot win, this one campaigns after its own
    // full timeout, as after granting a vote.
    if (grant && r.opts.fastFailover && m.from < r.id && !r.opts.mutations?.noFailoverYield) {
      if (r.role === 'preCandidate') becomeFollower(r, r.term, null);
      else if (r.role === 'follower') r.resetElectionTimer();
    }
    return;
  }
  const doubleVote = r.opts.mutations?.doubleVote === true;
  const canVote = r.votedFor === m.from || (r.votedFor === null && r.leader === null) || doubleVote;
  // Stickiness again for a vote of our own term: this node may have adopted the term from some
  // other message, which did not cancel its promise to the leader it last heard from.
  const sticky = !m.transfer && r.votedFor !== m.from && inLease(r);
  const grant =
    m.term === r.term && canVote && (upToDate || r.opts.mutations?.voteIgnoresLog === true) && !sticky;
  if (grant) {
    assert(r.votedFor === null || r.votedFor === m.from || doubleVote, `second vote in term ${r.term}`);
    r.votedFor = m.from;
    r.electionElapsedTicks = 0;
  }
  r.send({ type: 'voteResp', from: r.id, to: m.from, term: r.term, reject: !grant });
}
