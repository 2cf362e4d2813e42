// RaftCore: the public face of the pure consensus core. Inputs are tick(), step(), proposals and
// admin calls; output is a Ready, acknowledged with advance(). No I/O, clock or randomness of its
// own: same options (including the PRNG seed), same inputs, same outputs.

import { assert } from './assert.js';
import { startElection } from './candidate.js';
import { isVoter } from './config.js';
import { setLeader } from './follower.js';
import { tickLeader } from './leader.js';
import { leaseIsValid, leaseRemainingTicks } from './lease.js';
import { RaftNode } from './node.js';
import { NO_TICK } from './progress.js';
import { propose, proposeConfChange } from './proposals.js';
import { cancelRead, forwardRead, requestRead } from './read-index.js';
import { advance, hasReady, makeReady } from './ready.js';
import { step } from './step.js';
import { transferLeadership, type TransferResult } from './transfer.js';
import type {
  ConfChange,
  Index,
  Message,
  NodeId,
  ProposeResult,
  RaftInitialState,
  RaftOptions,
  RaftStatus,
  Ready,
} from './types.js';

export type ReadIndexResult =
  { ok: true } | { ok: false; code: 'HA_ERR_NOT_LEADER' | 'HA_ERR_BUSY'; leader: NodeId | null };

export type LeaseReadResult =
  { ok: true; index: Index } | { ok: false; code: 'HA_ERR_NOT_LEADER'; leader: NodeId | null };

/** Ticks between the fast-failover campaigns of successive followers (see peerDisconnected). */
export const fastFailoverStaggerTicks = 2;

export class RaftCore {
  private readonly r: RaftNode;

  constructor(options: RaftOptions, initial: RaftInitialState) {
    this.r = new RaftNode(options, initial);
  }

  /**
   * One logical tick: election timeout for followers and candidates, heartbeats and check-quorum
   * for the leader. A `catchUp` tick stands for time that passed while the process was frozen:
   * it advances the clock (so leases and timeouts count it) but decides nothing, because the
   * messages that arrived meanwhile have not been stepped yet. The next ordinary tick decides,
   * after they have been. A stalled event loop therefore neither deposes a healthy leader nor
   * starts a needless election.
   */
  tick(catchUp = false): void {
    const r = this.r;
    r.nowTicks++;
    if (r.role === 'leader') {
      tickLeader(r, catchUp);
      return;
    }
    r.electionElapsedTicks++;
    // Learners and non-members only follow: they never start an election (§4.2.1).
    if (!catchUp && r.isVoter() && r.electionElapsedTicks >= r.electionTimeoutTicks) startElection(r);
  }

  step(msg: Message): void {
    step(this.r, msg);
  }

  propose(data: Uint8Array, requestId: string): ProposeResult {
    return propose(this.r, data, requestId);
  }

  proposeConfChange(change: ConfChange, requestId: string): ProposeResult {
    return proposeConfChange(this.r, change, requestId);
  }

  /** Starts a ReadIndex read (§6.4); the answer comes in Ready.readStates or readFailures. */
  readIndex(ctx: string): ReadIndexResult {
    const r = this.r;
    if (r.role === 'leader') {
      return requestRead(r, ctx, r.id) ? { ok: true } : { ok: false, code: 'HA_ERR_BUSY', leader: r.id };
    }
    if (r.role === 'follower' && r.leader !== null) {
      return forwardRead(r, ctx, r.leader)
        ? { ok: true }
        : { ok: false, code: 'HA_ERR_BUSY', leader: r.leader };
    }
    return { ok: false, code: 'HA_ERR_NOT_LEADER', leader: r.leader };
  }

  /**
   * The runtime gave up on a read (its caller's deadline passed): forget it, so that lost
   * readIndex messages cannot fill the bounded queues for good.
   */
  cancelRead(ctx: string): void {
    cancelRead(this.r, ctx);
  }

  /** A read served under the leader lease (§6.4.1): valid at once, no messages. */
  leaseRead(): LeaseReadResult {
    const r = this.r;
    if (leaseIsValid(r)) return { ok: true, index: r.commit };
    return { ok: false, code: 'HA_ERR_NOT_LEADER', leader: r.leader };
  }

  /** §3.10; to = null picks the voter with the highest match index. */
  transferLeadership(to: NodeId | null): TransferResult {
    return transferLeadership(this.r, to);
  }

  /** Starts an election now (pre-vote first when enabled). Voters only; a leader ignores it. */
  campaign(): void {
    startElection(this.r);
  }

  /**
   * The runtime saw the connection to `peer` drop. A leader stops counting the peer's earlier
   * acknowledgements (a reset connection must not keep a lease alive) and re-probes it, since
   * pipelined messages were probably lost. A follower whose leader went away stops deferring to
   * it and pre-votes at once (fast failover, DESIGN §3): harmless if the leader is in fact alive,
   * because the other voters still hold its lease and refuse.
   */
  peerDisconnected(peer: NodeId): void {
    const r = this.r;
    if (r.role === 'leader') {
      const pr = r.progress.get(peer);
      if (!pr) return;
      if (!r.opts.mutations?.keepAckOnDisconnect) {
        pr.ackedTick = NO_TICK;
        pr.ackedSeq = 0;
      }
      if (pr.state !== 'probe' || pr.probeSent) pr.becomeProbe();
      return;
    }
    // Without fast failover a follower keeps its promise to the leader until its election
    // timeout: the lease counts on it (lease.ts), and a reset may be seen by this end alone.
    if (!r.opts.fastFailover || r.role !== 'follower' || r.leader !== peer) return;
    setLeader(r, null);
    r.leaderContactTick = Number.NEGATIVE_INFINITY;
    if (!r.opts.preVote || !r.isVoter()) return;
    // Every follower sees a crashed leader's connections close at the same moment; if all of
    // them campaigned at once they would split the vote (each voting for itself) and fall back
    // to the randomised timeout. So they go in id order: rank 0 at once, rank k after
    // k * fastFailoverStaggerTicks, by which time it has usually granted rank 0 its vote.
    const rank = r.config.voters
      .filter((v) => v !== peer)
      .sort()
      .indexOf(r.id);
    if (rank <= 0) {
      startElection(r);
      return;
    }
    const wait = rank * fastFailoverStaggerTicks;
    r.electionElapsedTicks = Math.max(r.electionElapsedTicks, r.electionTimeoutTicks - wait);
  }

  /** The state machine's snapshot at `index` (<= applied): compacts the log up to it. */
  compact(index: Index, data: Uint8Array): void {
    const r = this.r;
    if (index <= r.log.snapshotIndex) return;
    assert(index <= r.applied, `compact to ${index} beyond applied ${r.applied}`);
    const term = r.log.term(index);
    assert(term !== undefined, `compact to ${index}: entry not in log`);
    r.snapshot = { meta: { index, term, config: r.configAt(index) }, data };
    r.log.compactTo(index);
  }

  hasReady(): boolean {
    return hasReady(this.r);
  }

  ready(): Ready {
    return makeReady(this.r);
  }

  advance(ready: Ready): void {
    advance(this.r, ready);
  }

  status(): RaftStatus {
    const r = this.r;
    const leader = r.role === 'leader';
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      votedFor: r.votedFor,
      leader: r.leader,
      commit: r.commit,
      applied: r.applied,
      lastIndex: r.log.lastIndex,
      snapshotIndex: r.log.snapshotIndex,
      config: r.config,
      fencingToken: leader ? r.fencingToken : null,
      peers: leader
        ? [...r.progress].map(([id, pr]) => ({
            id,
            voter: isVoter(r.config, id),
            match: pr.match,
            next: pr.next,
            state: pr.state,
            lastContactTicks: r.nowTicks - pr.lastContactTick,
            snapshot:
              pr.state === 'snapshot' && pr.sending !== null
                ? { index: pr.sending.meta.index, sent: pr.snapshotOffset, total: pr.sending.data.length }
                : null,
            lostLogs: pr.lostLogs,
          }))
        : [],
      leaseValid: leaseIsValid(r),
      leaseRemainingTicks: leaseRemainingTicks(r),
      transferee: r.transferee,
    };
  }
}
