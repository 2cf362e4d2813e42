// Types of the pure Raft core: what goes in (tick, step, propose, admin calls), what comes out
// (Ready), and the wire messages. Nothing here does I/O; the runtime (src/runtime) performs the
// Ready and calls advance().
//
// References are to Diego Ongaro's thesis "Consensus: Bridging Theory and Practice" (2014).

/** A node's identity. Branded so that a node id is never confused with an address or a key. */
export type NodeId = string & { readonly __brand: 'NodeId' };
export const nodeId = (s: string): NodeId => s as NodeId;

export type Term = number;
/** Log index; the first entry has index 1, 0 means "none". */
export type Index = number;

/** Cluster membership. Voters elect and count for commit; learners only receive the log. */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * A membership change. anya-ha changes one server at a time (thesis §4.1): any two majorities of
 * configurations that differ by one voter overlap, so no change can create two disjoint quorums.
 * A new change is refused while an earlier one is uncommitted, and until the leader has
 * committed an entry of its own term (the fix to §4.1 published on raft-dev in 2015).
 */
export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'addVoter'; readonly node: NodeId } // learner -> voter, or a new voter
  | { readonly type: 'demote'; readonly node: NodeId } // voter -> learner
  | { readonly type: 'remove'; readonly node: NodeId };

export type EntryType = 'normal' | 'noop' | 'config';

export interface Entry {
  readonly index: Index;
  readonly term: Term;
  readonly type: EntryType;
  /** The state-machine command, opaque to the core (type 'normal' only). */
  readonly data?: Uint8Array;
  /** Set by the proposer so that it can match the applied entry to the waiting client. */
  readonly requestId?: string;
  /** The complete configuration that this entry establishes (type 'config' only). */
  readonly config?: ClusterConfig;
}

/** Durable per-node state (thesis Figure 3.1 "persistent state on all servers", plus commit). */
export interface HardState {
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly commit: Index;
}

export interface SnapshotMeta {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: Index;
  readonly term: Term;
  /** Membership as of `index`. */
  readonly config: ClusterConfig;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's serialised state at meta.index. */
  readonly data: Uint8Array;
}

/**
 * A fencing token: the (term, index) of the entry that established a leadership, compared
 * lexicographically. Every side-effecting action carries it; resources refuse lower tokens.
 */
export interface FencingToken {
  readonly term: Term;
  readonly index: Index;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

// ---------------------------------------------------------------------------------------------
// Wire messages. Every message carries the sender's term. `seq` and `tick` on append/heartbeat
// are echoed by the responses: `seq` confirms ReadIndex requests (thesis §6.4), `tick` (leader
// logical time at send) renews the leader lease (§6.4.1).
// ---------------------------------------------------------------------------------------------

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

export interface PreVoteMsg extends MessageBase {
  readonly type: 'preVote'; // term = the term the sender would campaign in (its term + 1)
  readonly lastLogIndex: Index;
  readonly lastLogTerm: Term;
}
export interface PreVoteRespMsg extends MessageBase {
  readonly type: 'preVoteResp';
  readonly reject: boolean;
}
export interface VoteMsg extends MessageBase {
  readonly type: 'vote';
  readonly lastLogIndex: Index;
  readonly lastLogTerm: Term;
  /** Set when the election follows a leadership transfer: voters skip the leader-lease check. */
  readonly transfer: boolean;
}
export interface VoteRespMsg extends MessageBase {
  readonly type: 'voteResp';
  readonly reject: boolean;
}
export interface AppendMsg extends MessageBase {
  readonly type: 'append';
  readonly prevLogIndex: Index;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: Index;
  readonly seq: number;
  readonly tick: number;
}
export interface AppendRespMsg extends MessageBase {
  readonly type: 'appendResp';
  readonly reject: boolean;
  /** On success: the highest index known to match the leader. */
  readonly matchIndex: Index;
  /** On reject: the highest index that may still match, so the leader retries with
   * prevLogIndex = hintIndex (the follower's last index, or the index just before the
   * follower's run of entries with the conflicting term). */
  readonly hintIndex: Index;
  readonly seq: number;
  readonly tick: number;
}
export interface HeartbeatMsg extends MessageBase {
  readonly type: 'heartbeat';
  /** min(leader commit, follower match): a follower never commits entries it might not hold. */
  readonly commit: Index;
  readonly seq: number;
  readonly tick: number;
}
export interface HeartbeatRespMsg extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly seq: number;
  readonly tick: number;
}
export interface SnapshotMsg extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
  readonly seq: number;
  readonly tick: number;
}
/**
 * One chunk of the leader's snapshot (thesis §5.3 sends it in pieces, its "offset" and "done"
 * fields): bytes [offset, offset + data.length) of a snapshot of `total` bytes; `crc` is the
 * CRC-32 of bytes [0, offset + data.length), so each chunk checks the whole prefix. The follower
 * keeps the chunks in order and installs the snapshot only when all of it arrived intact.
 */
export interface SnapshotChunkMsg extends MessageBase {
  readonly type: 'snapshotChunk';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly total: number;
  readonly crc: number;
  readonly data: Uint8Array;
  readonly seq: number;
  readonly tick: number;
}
/**
 * The follower holds the first `received` bytes of the snapshot at (index, snapshotTerm). With
 * `rewind`, the chunk it answers did not follow on (lost, reordered, or the follower restarted):
 * the leader resumes at `received`.
 */
export interface SnapshotChunkRespMsg extends MessageBase {
  readonly type: 'snapshotChunkResp';
  readonly index: Index;
  readonly snapshotTerm: Term;
  readonly received: number;
  readonly rewind: boolean;
  readonly seq: number;
  readonly tick: number;
}
export interface TimeoutNowMsg extends MessageBase {
  readonly type: 'timeoutNow';
}
/** A follower forwards a client proposal to the leader. */
export interface ProposeMsg extends MessageBase {
  readonly type: 'propose';
  readonly data: Uint8Array;
  readonly requestId: string;
}
/**
 * The leader refused a forwarded proposal (it is transferring leadership, over a bound, or no
 * longer leads): nothing was appended, and the follower tells its client at once instead of
 * letting it wait out its deadline.
 */
export interface ProposeRespMsg extends MessageBase {
  readonly type: 'proposeResp';
  readonly requestId: string;
  readonly code: ProposeErrorCode;
}
/** A follower asks the leader for a read index on behalf of a client (§6.4). */
export interface ReadIndexMsg extends MessageBase {
  readonly type: 'readIndex';
  readonly ctx: string;
}
export interface ReadIndexRespMsg extends MessageBase {
  readonly type: 'readIndexResp';
  readonly ctx: string;
  /** The read index, or -1 when the leader could not serve it (it will not answer twice). */
  readonly index: Index;
}

export type Message =
  | PreVoteMsg
  | PreVoteRespMsg
  | VoteMsg
  | VoteRespMsg
  | AppendMsg
  | AppendRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | SnapshotMsg
  | SnapshotChunkMsg
  | SnapshotChunkRespMsg
  | TimeoutNowMsg
  | ProposeMsg
  | ProposeRespMsg
  | ReadIndexMsg
  | ReadIndexRespMsg;

export type MessageType = Message['type'];

/** A confirmed read index: once applied >= index, a read may be served (ctx from readIndex()). */
export interface ReadState {
  readonly ctx: string;
  readonly index: Index;
}

/** A read index that could not be served (leadership lost, or the leader refused). */
export interface ReadFailure {
  readonly ctx: string;
  readonly code: 'HA_ERR_NOT_LEADER' | 'HA_ERR_NO_QUORUM';
}

/** A forwarded proposal the leader refused (ProposeRespMsg), for the runtime to answer. */
export interface ProposalFailure {
  readonly requestId: string;
  readonly code: ProposeErrorCode;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
}

/**
 * Output of the core: the work the runtime must perform, in this order.
 *
 * ORDERING CONTRACT (the runtime must follow it; the simulator checks the outcome):
 *  1. Persist `snapshot` (if any), then `entries`, then `hardState`, as one durable write. A
 *     batch whose first entry has index i replaces every stored entry with index >= i.
 *  2. Only then send `messages`. A vote grant, an append acknowledgement and everything else a
 *     message promises depend on state that step 1 made durable. (The leader's own log write is
 *     in the same batch; the leader counts itself towards commit only from advance(), i.e. once
 *     its entries are durable.)
 *  3. Install `snapshot` into the state machine, then apply `committedEntries` in order. They
 *     never exceed what step 1 made durable on this node.
 *  4. Serve `readStates` once the applied index reaches their index; fail `readFailures`.
 *  5. Call advance(ready) with this same object.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
  /** Forwarded proposals the leader refused: fail their callers with `code`. */
  readonly proposalFailures: readonly ProposalFailure[];
  readonly softState: SoftState | null;
}

/** A seeded pseudo-random source, injected so that the core stays deterministic. */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
}

export interface RaftOptions {
  readonly id: NodeId;
  /** Follower election timeout in ticks; the randomised timeout is drawn from [min, 2*min). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /**
   * Leader lease in ticks. Must be shorter than electionTicks by the clock-drift margin:
   * leaseTicks <= floor(electionTicks * (1 - driftMargin)) - 1 (see lease.ts). 0 disables lease
   * reads.
   */
  readonly leaseTicks: number;
  /** Entries per append message (batching). */
  readonly entriesPerAppendMax: number;
  /** Bytes of entry data per append message. */
  readonly appendBytesMax: number;
  /** Append messages in flight to one follower before the leader waits for acknowledgements. */
  readonly inflightMax: number;
  /**
   * Bytes of snapshot per snapshotChunk message (well below the transport's frame limit). One
   * chunk is in flight per follower; the next leaves when it is answered.
   */
  readonly snapshotChunkBytes: number;
  /** CRC-32 (IEEE) continuing from `previous`; the core's own (crc32.ts) unless a faster one is given. */
  readonly crc32: (data: Uint8Array, previous: number) => number;
  /** Uncommitted entries a leader accepts before refusing proposals (HA_ERR_BUSY). */
  readonly uncommittedEntriesMax: number;
  /**
   * Bytes of entry data in uncommitted entries a leader accepts before refusing proposals
   * (HA_ERR_BUSY). One entry is always admitted when nothing is uncommitted, so a single
   * entry larger than this (up to the frame limit) can still be written.
   */
  readonly uncommittedBytesMax: number;
  /** Pending ReadIndex requests before refusing more (HA_ERR_BUSY). */
  readonly pendingReadsMax: number;
  /**
   * A follower whose connection to its leader drops campaigns at once instead of waiting out
   * its election timeout (DESIGN §3 "Failover is the product"). It breaks the promise a lease
   * relies on (a reset seen by the follower alone looks exactly like a crash), so lease reads
   * are never served while this is on: they fall back to ReadIndex (see lease.ts).
   */
  readonly fastFailover: boolean;
  readonly prng: Prng;
  /** Test-only deliberate faults, used to prove that the simulator catches broken cores. */
  readonly mutations?: Mutations;
}

/** Deliberately broken behaviours, off in production. Each must be caught by the simulator. */
export interface Mutations {
  /** Grant a vote even after voting for someone else in this term. */
  readonly doubleVote?: boolean;
  /** Commit entries from earlier terms by counting replicas (drops the §5.4.2 / §3.6.2 rule). */
  readonly commitOldTerms?: boolean;
  /** Accept appends without checking the previous entry (drops the log-matching check). */
  readonly skipPrevCheck?: boolean;
  /** Multiply the lease by this factor (a lease longer than the election timeout is unsafe). */
  readonly leaseFactor?: number;
  /** Runtime: every message leaves before the Ready's write is durable. */
  readonly sendBeforePersist?: boolean;
  /** Lease reads are served although fast failover lets followers break their promise. */
  readonly leaseWithFastFailover?: boolean;
  /** A freshly started voter grants votes at once, though its last life may have acked a lease. */
  readonly noBootStickiness?: boolean;
  /** The lease stays valid while a leadership transfer is under way (timeoutNow sent). */
  readonly leaseIgnoresTransfer?: boolean;
  /** Membership changes are accepted before the leader committed an entry of its term (§4.1). */
  readonly confChangeBeforeTermCommit?: boolean;
  /** A leader keeps counting a peer's acknowledgements after that peer's connection dropped. */
  readonly keepAckOnDisconnect?: boolean;
  /** A follower ranked after a pre-voting peer campaigns anyway during fast failover. */
  readonly noFailoverYield?: boolean;
  /** The leader keeps a follower's match after the follower shows it lost its log (a wipe). */
  readonly keepLostMatch?: boolean;
  /** Runtime: a read that times out stays in the core's forwarded-read set (a leak). */
  readonly leakForwardedReads?: boolean;
  /** Runtime: every tick taken while handling a message is a catch-up tick (decides nothing). */
  readonly catchUpOnMessages?: boolean;
  /** The leader counts itself towards commit with entries not yet durable on its own disk. */
  readonly commitBeforeDurable?: boolean;
  /** Votes are granted without the §5.4.1 up-to-date check of the candidate's log. */
  readonly voteIgnoresLog?: boolean;
  /** ReadIndex serves at once, without a quorum confirming leadership (§6.4 step 3 dropped). */
  readonly readSkipsQuorum?: boolean;
  /** ReadIndex does not wait for an entry of the leader's term to commit (§6.4 step 1 dropped). */
  readonly readBeforeTermCommit?: boolean;
  /** A leader never steps down on check-quorum (§6.2 dropped). */
  readonly ignoreCheckQuorum?: boolean;
  /** A leader refusing a forwarded proposal says nothing: the client waits out its deadline. */
  readonly silentProposeRefusal?: boolean;
  /** Runtime: a read whose leader changed before confirming fails instead of asking the next one. */
  readonly noReadRetry?: boolean;
}

/** What the core starts from: empty for a new node, or what storage recovered. */
export interface RaftInitialState {
  readonly hardState: HardState;
  /** The latest snapshot; for a new node, index 0 with the bootstrap configuration. */
  readonly snapshot: Snapshot;
  /** Entries after snapshot.meta.index, in order, without gaps. */
  readonly entries: readonly Entry[];
  /** Index up to which the state machine has already applied (>= snapshot index). */
  readonly applied: Index;
}

export type ProposeResult =
  | { readonly ok: true; readonly index: Index; readonly term: Term; readonly forwarded: false }
  | { readonly ok: true; readonly forwarded: true }
  | { readonly ok: false; readonly code: ProposeErrorCode; readonly leader: NodeId | null };

export type ProposeErrorCode =
  | 'HA_ERR_NOT_LEADER'
  | 'HA_ERR_TRANSFER_IN_PROGRESS'
  | 'HA_ERR_BUSY'
  | 'HA_ERR_CONFIG_CHANGE_PENDING'
  | 'HA_ERR_BAD_REQUEST';

export interface PeerStatus {
  readonly id: NodeId;
  readonly voter: boolean;
  readonly match: Index;
  readonly next: Index;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  /** Ticks since the leader last heard from this peer. */
  readonly lastContactTicks: number;
  /** In snapshot state: which snapshot, and the bytes the follower confirmed holding. */
  readonly snapshot: { readonly index: Index; readonly sent: number; readonly total: number } | null;
  /** Times the peer was found to have lost entries it had acknowledged (a wiped data dir). */
  readonly lostLogs: number;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: Index;
  readonly applied: Index;
  readonly lastIndex: Index;
  readonly snapshotIndex: Index;
  readonly config: ClusterConfig;
  /** Set while this node is leader. */
  readonly fencingToken: FencingToken | null;
  /** Leader only: progress of every other member. */
  readonly peers: readonly PeerStatus[];
  readonly leaseValid: boolean;
  /** Ticks from now for which the lease stays valid (0 when it is not valid). */
  readonly leaseRemainingTicks: number;
  readonly transferee: NodeId | null;
}
