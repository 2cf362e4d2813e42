// The state of one Raft server (thesis Figure 3.1) and the bookkeeping behind Ready. Role
// behaviour lives in follower.ts, candidate.ts and leader.ts; this file only holds state and the
// operations every role shares. Internal: the public surface is RaftCore (core.ts).

import { assert } from './assert.js';
import { isVoter } from './config.js';
import { RaftLog } from './log.js';
import type { Progress } from './progress.js';
import type {
  ClusterConfig,
  Entry,
  FencingToken,
  HardState,
  Index,
  Message,
  NodeId,
  RaftInitialState,
  RaftOptions,
  ProposalFailure,
  ReadFailure,
  ReadState,
  Role,
  Snapshot,
  SnapshotMeta,
  SoftState,
  Term,
} from './types.js';

/** A read request that waits for a quorum to confirm leadership at `seq` (thesis §6.4). */
export interface PendingRead {
  readonly ctx: string;
  /** This node for a local read, else the follower that forwarded it. */
  readonly from: NodeId;
  readonly index: Index;
  readonly seq: number;
}

/** A read that arrived before the leader committed an entry of its term (§6.4 step 1). */
export interface WaitingRead {
  readonly ctx: string;
  readonly from: NodeId;
}

/** A snapshot arriving in chunks: those received so far, in order, and their running CRC-32. */
export interface SnapshotReceive {
  readonly meta: SnapshotMeta;
  readonly total: number;
  readonly parts: Uint8Array[];
  received: number;
  crc: number;
}

export class RaftNode {
  readonly id: NodeId;
  readonly opts: RaftOptions;

  term: Term;
  votedFor: NodeId | null;
  commit: Index;
  applied: Index;
  readonly log: RaftLog;
  /** The latest configuration in the log (or the snapshot's), and the index that set it. */
  config: ClusterConfig;
  configIndex: Index;
  /** The latest snapshot, kept whole so that it can be sent to followers behind compaction. */
  snapshot: Snapshot;

  role: Role = 'follower';
  leader: NodeId | null = null;

  /** Logical time: ticks since this core was created. */
  nowTicks = 0;
  electionElapsedTicks = 0;
  /** Drawn from [electionTicks, 2 * electionTicks) on every role change (thesis §3.4). */
  electionTimeoutTicks = 0;
  heartbeatElapsedTicks = 0;
  /** Votes (or pre-votes) received in the current campaign: true for a grant. */
  readonly votes = new Map<NodeId, boolean>();

  // Leader state.
  readonly progress = new Map<NodeId, Progress>();
  fencingToken: FencingToken | null = null;
  transferee: NodeId | null = null;
  transferElapsedTicks = 0;
  timeoutNowSentThisTerm = false;
  readSeq = 0;
  readsWaitingForCommit: WaitingRead[] = [];
  readsPending: PendingRead[] = [];

  /**
   * Uncommitted entries of this leader's log, oldest first, with their data bytes and request
   * ids: the byte bound on proposals, and the duplicate check that keeps a resubmitted proposal
   * from entering the log twice.
   */
  uncommittedBytes = 0;
  readonly uncommitted: { index: Index; bytes: number; requestId: string | undefined }[] = [];
  readonly uncommittedRequestIds = new Set<string>();

  // Follower state: reads forwarded to the leader, answered by readIndexResp.
  readonly forwardedReads = new Set<string>();
  /**
   * The tick at which this node last heard from a leader of its term: leader stickiness
   * (§4.2.3) runs from here, whatever r.leader says, so that adopting a higher term does not
   * cancel the promise a lease counts on. A voter that may serve leases starts sticky: its last
   * life may have acknowledged a leader whose lease still runs (see lease.ts).
   */
  leaderContactTick: number;

  // Ready bookkeeping: what the runtime has not yet taken.
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readFailures: ReadFailure[] = [];
  proposalFailures: ProposalFailure[] = [];
  pendingSnapshot: Snapshot | null = null;
  /** Leader: reads registered for the next heartbeat round, which has not gone out yet. */
  readRoundPending = false;
  /** Follower: the leader's snapshot arriving in chunks, held in memory until it is whole. */
  snapshotRecv: SnapshotReceive | null = null;
  /** Entries up to here are durable on this node (for a leader: its own match index). */
  persistedIndex: Index;
  persistedHardState: HardState;
  reportedSoftState: SoftState = { role: 'follower', leader: null };

  constructor(opts: RaftOptions, initial: RaftInitialState) {
    assert(opts.electionTicks > 0, 'electionTicks > 0');
    assert(
      opts.heartbeatTicks > 0 && opts.heartbeatTicks < opts.electionTicks,
      '0 < heartbeatTicks < electionTicks',
    );
    assert(opts.leaseTicks < opts.electionTicks, 'leaseTicks < electionTicks');
    assert(opts.entriesPerAppendMax > 0 && opts.inflightMax > 0, 'append batch and inflight limits > 0');
    this.id = opts.id;
    this.opts = opts;
    const snap = initial.snapshot;
    this.snapshot = snap;
    this.log = new RaftLog(snap.meta.index, snap.meta.term, initial.entries);
    this.term = initial.hardState.term;
    this.votedFor = initial.hardState.votedFor;
    this.commit = Math.max(initial.hardState.commit, snap.meta.index);
    this.applied = Math.max(initial.applied, snap.meta.index);
    assert(
      this.commit <= this.log.lastIndex,
      `recovered commit ${this.commit} beyond log ${this.log.lastIndex}`,
    );
    assert(this.applied <= this.commit, `recovered applied ${this.applied} beyond commit ${this.commit}`);
    this.config = snap.meta.config;
    this.configIndex = snap.meta.index;
    this.refreshConfig();
    this.persistedIndex = this.log.lastIndex;
    this.persistedHardState = this.hardState();
    this.leaderContactTick =
      this.leasesServed() && !opts.mutations?.noBootStickiness ? 0 : Number.NEGATIVE_INFINITY;
    this.resetElectionTimer();
  }

  /**
   * Whether this node may serve lease reads when it leads. Fast failover lets a follower vote
   * as soon as its leader's connection drops, and a reset seen by the follower alone looks just
   * like a crash, so the lease's premise (every voter that acked refuses votes until it expires)
   * holds only without it.
   */
  leasesServed(): boolean {
    if (this.opts.leaseTicks <= 0) return false;
    return !this.opts.fastFailover || this.opts.mutations?.leaseWithFastFailover === true;
  }

  /** Leader stickiness (§4.2.3): heard from a leader within the minimum election timeout. */
  heardFromLeaderRecently(): boolean {
    return this.nowTicks - this.leaderContactTick < this.opts.electionTicks;
  }

  hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.commit };
  }

  softState(): SoftState {
    return { role: this.role, leader: this.leader };
  }

  send(msg: Message): void {
    this.msgs.push(msg);
  }

  resetElectionTimer(): void {
    this.electionElapsedTicks = 0;
    const e = this.opts.electionTicks;
    this.electionTimeoutTicks = e + Math.min(e - 1, Math.floor(this.opts.prng.next() * e));
  }

  isVoter(): boolean {
    return isVoter(this.config, this.id);
  }

  /** §6.4 / §4.1 fix: a new leader knows its commit index only after committing in its term. */
  committedInCurrentTerm(): boolean {
    return this.log.term(this.commit) === this.term;
  }

  /** §5.4.1 election restriction: the candidate's log is at least as up to date as ours. */
  logUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    const myTerm = this.log.lastTerm;
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.log.lastIndex);
  }

  advanceCommit(index: Index): void {
    if (index > this.commit) this.commit = index;
  }

  appendToLog(entries: readonly Entry[]): void {
    this.log.append(entries);
    for (const e of entries) {
      if (e.type === 'config' && e.config) {
        this.config = e.config;
        this.configIndex = e.index;
      }
    }
  }

  /** Drops entries from `index` on; committed entries are never dropped (§5.4.2). */
  truncateLog(index: Index): void {
    assert(
      index > this.commit,
      `truncate from ${index} would drop committed entries (commit ${this.commit})`,
    );
    this.log.truncateFrom(index);
    this.persistedIndex = Math.min(this.persistedIndex, index - 1);
    if (this.configIndex >= index) this.refreshConfig();
  }

  /** Installs a snapshot received from the leader: it replaces the whole log. */
  installSnapshot(snap: Snapshot): void {
    const meta = snap.meta;
    assert(meta.index > this.commit, `snapshot ${meta.index} at or below commit ${this.commit}`);
    this.log.reset(meta.index, meta.term);
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    this.commit = meta.index;
    this.applied = meta.index;
    this.persistedIndex = meta.index;
    this.config = meta.config;
    this.configIndex = meta.index;
  }

  /** The configuration in force at `index` (<= lastIndex): the last config entry at or before it. */
  configAt(index: Index): ClusterConfig {
    for (let i = index; i > this.log.snapshotIndex; i--) {
      const e = this.log.entry(i);
      if (e?.type === 'config' && e.config) return e.config;
    }
    return this.snapshot.meta.config;
  }

  private refreshConfig(): void {
    for (let i = this.log.lastIndex; i > this.log.snapshotIndex; i--) {
      const e = this.log.entry(i);
      if (e?.type === 'config' && e.config) {
        this.config = e.config;
        this.configIndex = i;
        return;
      }
    }
    this.config = this.snapshot.meta.config;
    this.configIndex = this.log.snapshotIndex;
  }
}
