// Drives the pure core: turns time into ticks, peer frames into step(), client calls into
// propose()/readIndex(), and performs each Ready in the order its contract demands:
//   persist (one atomic write) -> send -> install snapshot / apply -> serve reads -> advance.
//
// Every input (tick, message, proposal) only marks the node dirty; the Ready is processed once
// per event-loop turn (a zero-delay timer), so that a burst of proposals or messages costs one
// storage write, not one per input. Results reach clients when their entry is applied on THIS
// node: a follower forwards the proposal to the leader and resolves its caller when the entry,
// identified by its request id, comes back through the log.
import assert from 'node:assert/strict';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { HaError } from '../errors.js';
import { RaftCore, defaultRaftOptions } from '../raft/index.js';
import type {
  ClusterConfig,
  ConfChange,
  Entry,
  HardState,
  Index,
  Message,
  Mutations,
  NodeId,
  Prng,
  RaftOptions,
  RaftStatus,
  Ready,
  Role,
  Snapshot,
  Term,
} from '../raft/types.js';
import type { SnapshotStream, StateMachine } from '../state/types.js';
import type { PersistBatch, RaftStorage } from '../storage/types.js';
import type { Transport } from '../transport/types.js';
import type { Clock, TimerHandle } from './clock.js';
import { runtimeLimits } from './limits.js';
import { AppliedRequests } from './applied-requests.js';

export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

export interface RuntimeHooks {
  /** After each durable write, with its duration (for the fsync histogram and the simulator). */
  onPersist?(batch: PersistBatch, durationMs: number): void;
  /** After an entry (of any type) is applied on this node. */
  onApply?(entry: Entry): void;
  onRoleChange?(role: Role, leader: NodeId | null, term: Term): void;
  /** A lease read was granted at `index` (the simulator checks it is not stale). */
  onLeaseRead?(index: Index): void;
  onProposalDone?(durationMs: number, result: 'committed' | 'timeout' | 'rejected' | 'not_leader'): void;
  /** Round trip of a heartbeat to `peer` and its answer (leader only). */
  onPeerRtt?(peer: NodeId, rttMs: number): void;
  /** A snapshot for log compaction is durable: its index, size and the time its store took. */
  onCompacted?(index: Index, bytes: number, storeMs: number): void;
  /** Storing a compaction snapshot failed; the log stays as it was and a later one is tried. */
  onCompactionFailed?(err: Error): void;
}

export interface RaftNodeOptions<R> {
  readonly id: NodeId;
  /** Membership a new, empty store starts with (ignored when storage holds state). */
  readonly bootstrap: ClusterConfig;
  readonly tickMs: number;
  /** Core options; id and prng come from this object. */
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'prng'>>;
  readonly storage: RaftStorage;
  readonly transport: Transport;
  readonly stateMachine: StateMachine<R>;
  readonly clock: Clock;
  readonly prng: Prng;
  /** Unique per process start, so request ids never repeat across restarts. */
  readonly bootId: string;
  /**
   * Compact the log once at least this many entries were applied after the last snapshot (plus
   * a random 0-25% per snapshot, so that the nodes of a cluster do not all snapshot at once) and
   * the entries applied since then add up to snapshotLogRatio times the last snapshot's size, or
   * once they add up to 64 MiB whatever their count (the log is held in memory).
   */
  readonly snapshotEntries: number;
  /**
   * Default 0.5: the log since the last snapshot must be at least half the snapshot's size in
   * bytes before the next one (thesis §5.1.3), so that a large state is not rewritten every
   * snapshotEntries small writes. 0 compacts on the entry count alone (the simulator).
   */
  readonly snapshotLogRatio?: number;
  readonly hooks?: RuntimeHooks;
  readonly mutations?: Mutations;
}

/**
 * Bytes of snapshot a compaction encodes per turn of the event loop (about 2 ms at the measured
 * 200 MB/s); between turns the node handles messages, ticks and clients as usual.
 */
const compactionSliceBytes = 512 * 1024;
/** Bytes of a finished snapshot's chunks copied into one buffer per turn. */
const compactionCopyBytes = 8 * 1024 * 1024;

/** Past this many bytes of log since the last snapshot, compact whatever the entry count or the snapshot's size. */
const compactionLogBytesMax = 64 * 1024 * 1024;
/** What an applied entry counts for beyond its data (index, term, request id, row). */
const entryOverheadBytes = 48;
const snapshotLogRatioDefault = 0.5;

/** More missed ticks than this at one timer firing means the process was frozen. */
const stallTicksMin = 2;

type Callback<T> = (err: HaError | null, value?: T) => void;

interface PendingProposal<R> {
  readonly startedMs: number;
  readonly timer: TimerHandle;
  readonly cb: Callback<R | ClusterConfig>;
  /** The command, kept to propose it again to a new leader; null for membership changes. */
  readonly data: Uint8Array | null;
  /** The leadership it was last submitted to (see leadershipKey); resubmitted when it changes. */
  submittedTo: string;
}

/** A snapshot being made (copy-on-write, a slice per turn) and then stored, for log compaction. */
interface CompactionJob {
  readonly meta: Snapshot['meta'];
  /** logBytesSinceSnapshot when it began: what the snapshot covers. */
  readonly logBytes: number;
  readonly stream: SnapshotStream;
  /** The envelope head (applied requests as of meta.index), then the state machine's chunks. */
  readonly parts: Uint8Array[];
  timer: TimerHandle | null;
}

interface PendingRead {
  readonly timer: TimerHandle;
  readonly cb: Callback<Index>;
  /** Set once the read index is confirmed; the read is served when applied reaches it. */
  index: Index | null;
  /** The leader could not serve it (leadership changed): ask the next leader, within the deadline. */
  awaitingLeader: boolean;
}

export class RaftNode<R> {
  private readonly core: RaftCore;
  private readonly opts: RaftNodeOptions<R>;
  private readonly proposals = new Map<string, PendingProposal<R>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly roleWaiters = new Set<() => void>();
  private readonly appliedRequests = new AppliedRequests();
  /** The last heartbeat sent to each peer, to time its answer (one entry per peer). */
  private readonly heartbeatsSent = new Map<NodeId, { seq: number; atMs: number }>();
  private requestSeq = 0;
  /** Bytes of command data in `proposals` (runtimeLimits.proposalsPendingBytesMax). */
  private proposalsPendingBytes = 0;
  /** Counts drops of the connection to the leader: what was sent before may be lost. */
  private leaderConnectionDrops = 0;
  private tickTimer: TimerHandle | null = null;
  private readyTimer: TimerHandle | null = null;
  private stopped = false;
  /** A Ready whose durable write (persistAsync) has not completed: no other Ready is taken. */
  private writeInFlight: Ready | null = null;
  private applied: Index;
  private appliedTerm: Term;
  private appliedConfig: ClusterConfig;
  private snapshotIndex: Index;
  /** The compaction under way, if any; at most one. */
  private compaction: CompactionJob | null = null;
  /** Bytes of the entries applied since the last snapshot (approximate: data plus overhead). */
  private logBytesSinceSnapshot = 0;
  private lastSnapshotBytes: number;
  /** Entries past snapshotEntries before the next compaction (random per snapshot). */
  private compactionJitter = 0;
  private lastRole: Role = 'follower';
  private lastLeader: NodeId | null = null;
  private lastTickAtMs = 0;
  /** What storage holds, and the newest hard state from the core (may differ in commit only). */
  private durableHardState: HardState;
  private latestHardState: HardState;

  constructor(opts: RaftNodeOptions<R>) {
    this.opts = opts;
    const initial = opts.storage.load(opts.bootstrap);
    this.durableHardState = initial.hardState;
    this.latestHardState = initial.hardState;
    const snap = initial.snapshot;
    if (snap.meta.index > 0) opts.stateMachine.restore(this.appliedRequests.unwrapSnapshot(snap.data));
    this.applied = snap.meta.index;
    this.appliedTerm = snap.meta.term;
    this.appliedConfig = snap.meta.config;
    this.snapshotIndex = snap.meta.index;
    this.lastSnapshotBytes = snap.data.length;
    this.compactionJitter = this.drawCompactionJitter();
    const raftOptions = defaultRaftOptions(opts.id, opts.prng, {
      crc32: zlibCrc32,
      ...opts.raft,
      mutations: opts.mutations,
    });
    this.core = new RaftCore(raftOptions, { ...initial, applied: snap.meta.index });
  }

  get id(): NodeId {
    return this.opts.id;
  }

  /** Starts the transport and the tick timer. */
  start(): Promise<void> {
    // Timers start synchronously (the simulator cannot wait for a promise); messages sent before
    // the transport is up are dropped like any other, and Raft retries them.
    this.lastTickAtMs = this.opts.clock.nowMs();
    this.scheduleTick();
    this.markDirty();
    return this.opts.transport.start({
      onMessage: (msg) => this.onMessage(msg),
      onPeerDown: (peer) => this.onPeerDown(peer),
    });
  }

  /** Stops timers and fails everything pending. The transport and storage are closed too. */
  async stop(): Promise<void> {
    // Record the newest commit index, so that a restart re-applies as much as possible at once,
    // and the core's term and vote even if no Ready has carried them yet: a stop that lands
    // between a message that raised the term and the Ready for it would otherwise restart in
    // the older term (found by the 30-minute fault test: a SIGTERM 2 ms after a vote request).
    // Nothing was sent on the newer term, so either is safe; keeping it is monotonic. The commit
    // stays the last Ready's, which never exceeds the durable log.
    if (!this.stopped) {
      const st = this.core.status();
      const durable = this.durableHardState;
      const hs: HardState = { term: st.term, votedFor: st.votedFor, commit: this.latestHardState.commit };
      if (hs.term !== durable.term || hs.votedFor !== durable.votedFor || hs.commit !== durable.commit) {
        this.opts.storage.persist({ snapshot: null, entries: [], hardState: hs });
        this.durableHardState = hs;
      }
    }
    this.halt();
    await this.opts.transport.close();
    this.opts.storage.close();
  }

  /**
   * Stops all activity at once without closing storage or transport: what the simulator calls
   * when it crashes a node (its callbacks never fire again).
   */
  halt(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) this.opts.clock.clearTimeout(this.tickTimer);
    if (this.readyTimer) this.opts.clock.clearTimeout(this.readyTimer);
    this.abortCompaction();
    const err = new HaError('HA_ERR_SHUTTING_DOWN', `node ${this.opts.id} is stopping`);
    for (const [id, p] of this.proposals) {
      this.finishProposal(id, p);
      p.cb(err);
    }
    for (const [ctx, r] of this.reads) {
      this.opts.clock.clearTimeout(r.timer);
      this.reads.delete(ctx);
      r.cb(err);
    }
  }

  status(): RaftStatus {
    return this.core.status();
  }

  /**
   * Until when (on this node's clock) a lease read would be granted, or null if not now. Pure:
   * it does not give the core the ticks it is owed, it computes from the last one given.
   */
  leaseExpiresAtMs(): number | null {
    const remaining = this.core.status().leaseRemainingTicks;
    if (remaining <= 0) return null;
    return this.lastTickAtMs + remaining * this.opts.tickMs;
  }

  get appliedIndex(): Index {
    return this.applied;
  }

  get tickMs(): number {
    return this.opts.tickMs;
  }

  // ---- client operations (callback form: the simulator drives these synchronously) ----------

  /** Replicates `data`; the callback gets the state machine's result once applied here. */
  proposeCb(data: Uint8Array, timeoutMs: number, cb: Callback<R>): void {
    if (this.refuseIfStopped(cb)) return;
    if (this.proposals.size >= runtimeLimits.proposalsPendingMax) {
      cb(new HaError('HA_ERR_BUSY', `more than ${runtimeLimits.proposalsPendingMax} proposals pending`));
      return;
    }
    if (
      this.proposalsPendingBytes > 0 &&
      this.proposalsPendingBytes + data.byteLength > runtimeLimits.proposalsPendingBytesMax
    ) {
      cb(
        new HaError(
          'HA_ERR_BUSY',
          `more than ${runtimeLimits.proposalsPendingBytesMax} bytes of proposals pending`,
        ),
      );
      return;
    }
    const requestId = this.nextRequestId();
    const result = this.core.propose(data, requestId);
    if (!result.ok) {
      this.opts.hooks?.onProposalDone?.(0, result.code === 'HA_ERR_NOT_LEADER' ? 'not_leader' : 'rejected');
      cb(this.proposeError(result.code, result.leader));
      return;
    }
    this.track(requestId, data, timeoutMs, cb as Callback<R | ClusterConfig>);
    this.markDirty();
  }

  /** Changes membership one server at a time; the callback gets the new configuration. */
  changeMembershipCb(change: ConfChange, timeoutMs: number, cb: Callback<ClusterConfig>): void {
    if (this.refuseIfStopped(cb)) return;
    const requestId = this.nextRequestId();
    const result = this.core.proposeConfChange(change, requestId);
    if (!result.ok) {
      cb(this.proposeError(result.code, result.leader));
      return;
    }
    this.track(requestId, null, timeoutMs, cb as Callback<R | ClusterConfig>);
    this.markDirty();
  }

  /**
   * Waits until the local state machine may serve a read of the given consistency, then calls
   * back with the index it reflects. 'linearizable' confirms leadership with a quorum (ReadIndex,
   * thesis §6.4), also from followers; 'lease' uses the leader lease when it is valid and falls
   * back to ReadIndex otherwise; 'stale' reads local state at once.
   */
  readCb(consistency: ReadConsistency, timeoutMs: number, cb: Callback<Index>): void {
    if (this.refuseIfStopped(cb)) return;
    if (consistency === 'stale') {
      cb(null, this.applied);
      return;
    }
    if (consistency === 'lease') {
      this.syncTicks();
      const lease = this.core.leaseRead();
      if (lease.ok) {
        this.opts.hooks?.onLeaseRead?.(lease.index);
        this.waitApplied(lease.index, timeoutMs, cb);
        return;
      }
    }
    if (this.reads.size >= runtimeLimits.readsPendingMax) {
      cb(new HaError('HA_ERR_BUSY', `more than ${runtimeLimits.readsPendingMax} reads pending`));
      return;
    }
    const ctx = this.nextRequestId();
    const r = this.core.readIndex(ctx);
    if (!r.ok) {
      cb(this.proposeError(r.code, r.leader));
      return;
    }
    this.trackRead(ctx, null, timeoutMs, cb);
    this.markDirty();
  }

  /** Hands leadership to `to` (or the best voter); resolves once another node leads. */
  transferLeadershipCb(to: NodeId | null, timeoutMs: number, cb: Callback<NodeId>): void {
    if (this.refuseIfStopped(cb)) return;
    const r = this.core.transferLeadership(to);
    if (!r.ok) {
      const err =
        r.code === 'HA_ERR_BAD_REQUEST'
          ? new HaError(
              'HA_ERR_BAD_REQUEST',
              `cannot transfer leadership to ${String(to)}: not another voter`,
            )
          : this.proposeError(r.code, r.leader);
      cb(err);
      return;
    }
    this.markDirty();
    const deadline = this.opts.clock.nowMs() + timeoutMs;
    const check = (expired: boolean): boolean => {
      const st = this.core.status();
      if (st.leader !== null && st.leader !== this.opts.id) {
        cb(null, st.leader);
        return true;
      }
      if (expired || this.opts.clock.nowMs() >= deadline) {
        cb(
          new HaError('HA_ERR_TIMEOUT', `leadership transfer to ${r.to} did not complete in ${timeoutMs} ms`),
        );
        return true;
      }
      return false;
    };
    const waiter = (): void => {
      if (check(false)) this.roleWaiters.delete(waiter);
    };
    this.roleWaiters.add(waiter);
    // Also settle at the deadline, in case no role change happens at all. The timer decides on
    // its own: a timer may fire a fraction of a millisecond before nowMs() reaches `deadline`
    // (the event loop's cached, whole-millisecond time), and re-checking the clock here would
    // then leave the caller waiting for a role change that may never come.
    this.opts.clock.setTimeout(() => {
      if (!this.roleWaiters.delete(waiter)) return;
      check(true);
    }, timeoutMs);
  }

  // ---- promise forms (library and HTTP API) ---------------------------------------------------

  propose(data: Uint8Array, timeoutMs: number): Promise<R> {
    return new Promise((resolve, reject) =>
      this.proposeCb(data, timeoutMs, (err, v) => (err ? reject(err) : resolve(v as R))),
    );
  }

  read(consistency: ReadConsistency, timeoutMs: number): Promise<Index> {
    return new Promise((resolve, reject) =>
      this.readCb(consistency, timeoutMs, (err, v) => (err ? reject(err) : resolve(v as Index))),
    );
  }

  changeMembership(change: ConfChange, timeoutMs: number): Promise<ClusterConfig> {
    return new Promise((resolve, reject) =>
      this.changeMembershipCb(change, timeoutMs, (err, v) =>
        err ? reject(err) : resolve(v as ClusterConfig),
      ),
    );
  }

  transferLeadership(to: NodeId | null, timeoutMs: number): Promise<NodeId> {
    return new Promise((resolve, reject) =>
      this.transferLeadershipCb(to, timeoutMs, (err, v) => (err ? reject(err) : resolve(v as NodeId))),
    );
  }

  /** Starts an election now (tests, and operators forcing a campaign). */
  campaign(): void {
    if (this.stopped) return;
    this.core.campaign();
    this.markDirty();
  }

  // ---- inputs -----------------------------------------------------------------------------

  private onMessage(msg: Message): void {
    if (this.stopped || msg.to !== this.opts.id) return;
    if (msg.type === 'heartbeatResp') {
      const sent = this.heartbeatsSent.get(msg.from);
      if (sent && sent.seq === msg.seq) {
        this.heartbeatsSent.delete(msg.from);
        this.opts.hooks?.onPeerRtt?.(msg.from, this.opts.clock.nowMs() - sent.atMs);
      }
    }
    this.syncTicks();
    this.core.step(msg);
    this.markDirty();
  }

  private onPeerDown(peer: NodeId): void {
    if (this.stopped) return;
    if (peer === this.core.status().leader) this.leaderConnectionDrops++;
    this.core.peerDisconnected(peer);
    this.markDirty();
  }

  private scheduleTick(): void {
    this.tickTimer = this.opts.clock.setTimeout(() => {
      if (this.stopped) return;
      this.syncTicks(true);
      this.scheduleTick();
      this.processReady();
    }, this.opts.tickMs);
  }

  /**
   * Gives the core one tick per tickMs of clock time that passed, however late the timer fired.
   * A frozen process (SIGSTOP, a stalled event loop, a paused VM) gets every tick it missed, so
   * its lease and timeouts see real elapsed time: a leader frozen past its lease cannot wake up
   * believing the lease still holds. Missed ticks are catch-up ticks that decide nothing (see
   * RaftCore.tick); only a timer that fired on time gives an ordinary tick, and the first
   * ordinary tick after a freeze comes after the messages that queued up have been stepped.
   */
  private syncTicks(fromTimer = false): void {
    const now = this.opts.clock.nowMs();
    const catchUpOnMessages = this.opts.mutations?.catchUpOnMessages === true;
    let owed = Math.floor((now - this.lastTickAtMs) / this.opts.tickMs);
    if (owed <= 0) return;
    if (owed > runtimeLimits.catchUpTicksMax) {
      // Far past every timeout already; more ticks would change nothing.
      owed = runtimeLimits.catchUpTicksMax;
      this.lastTickAtMs = now;
    } else {
      this.lastTickAtMs += owed * this.opts.tickMs;
    }
    // A timer a little early or late (owed 0, then 2) is not a freeze; more than two ticks is.
    // The same holds when a message comes first: under steady traffic most ticks are taken
    // here, and treating them all as catch-up would starve heartbeats and check-quorum.
    const catchUp = owed > stallTicksMin || (catchUpOnMessages && !fromTimer);
    for (let i = 0; i < owed; i++) this.core.tick(catchUp);
    this.markDirty();
  }

  private markDirty(): void {
    if (this.readyTimer !== null || this.stopped) return;
    this.readyTimer = this.opts.clock.setTimeout(() => {
      this.readyTimer = null;
      this.processReady();
    }, 0);
  }

  // ---- the Ready loop -------------------------------------------------------------------------

  private processReady(): void {
    // Each advance() can produce more work (a leader's own durable write advances commit);
    // the bound only guards against a core that never settles, which would be a bug.
    for (let round = 0; round < runtimeLimits.readyRoundsMax && !this.stopped; round++) {
      if (this.writeInFlight !== null || !this.core.hasReady()) break;
      this.handleReady(this.core.ready());
    }
    this.maybeCompact();
  }

  private send(m: Message): void {
    if (m.type === 'heartbeat' && this.opts.hooks?.onPeerRtt) {
      this.heartbeatsSent.set(m.to, { seq: m.seq, atMs: this.opts.clock.nowMs() });
    }
    this.opts.transport.send(m);
  }

  private handleReady(rd: Ready): void {
    if (rd.hardState) this.latestHardState = rd.hardState;
    const durable = this.durableHardState;
    const latest = this.latestHardState;
    const termOrVoteChanged = latest.term !== durable.term || latest.votedFor !== durable.votedFor;
    // A leader's replication messages depend only on its term, which is already durable unless
    // this very Ready changes it; so they leave before the leader's own write and the follower
    // fsyncs run in parallel with it (DESIGN §3: the leader counts itself for commit only once
    // durable, which the core does from advance()).
    const role = rd.softState?.role ?? this.lastRole;
    const early = role === 'leader' && !termOrVoteChanged;
    const sendAllEarly = this.opts.mutations?.sendBeforePersist === true;
    if (sendAllEarly) for (const m of rd.messages) this.send(m);
    else if (early) for (const m of rd.messages) if (isReplication(m)) this.send(m);
    // 1. Persist: one atomic, durable write. A change of the commit index alone is not worth an
    // fsync (commit is volatile state in Raft; a restarted node relearns it from the leader), so
    // it rides along with the next write that must be durable anyway.
    if (rd.snapshot || rd.entries.length > 0 || termOrVoteChanged) {
      const batch: PersistBatch = {
        snapshot: rd.snapshot,
        entries: rd.entries,
        hardState: latest === durable ? null : latest,
      };
      const storage = this.opts.storage;
      const t0 = this.opts.clock.nowMs();
      if (storage.persistAsync) {
        // The Ready stays in flight until the write is durable: inputs keep stepping the core,
        // but nothing that depends on this batch (acks, votes, applies) happens before `done`.
        this.writeInFlight = rd;
        storage.persistAsync(batch, () => {
          if (this.stopped || this.writeInFlight !== rd) return;
          this.writeInFlight = null;
          this.persisted(batch, this.opts.clock.nowMs() - t0);
          this.afterPersist(rd, early);
          this.processReady();
        });
        return;
      }
      storage.persist(batch);
      this.persisted(batch, this.opts.clock.nowMs() - t0);
    }
    this.afterPersist(rd, early);
  }

  /** Steps 2-5 of the Ready contract, once the batch is durable. */
  private afterPersist(rd: Ready, sentEarly: boolean): void {
    // 2. Send: only now, since these messages may promise what step 1 made durable.
    if (this.opts.mutations?.sendBeforePersist !== true) {
      for (const m of rd.messages) if (!sentEarly || !isReplication(m)) this.send(m);
    }
    // 3. Install the snapshot, then apply committed entries in order.
    if (rd.snapshot) this.installSnapshot(rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(e);
    // 4. Reads.
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.ctx);
      if (r) r.index = rs.index;
    }
    for (const rf of rd.readFailures) {
      const r = this.reads.get(rf.ctx);
      if (!r) continue;
      if (rf.code === 'HA_ERR_NOT_LEADER' && !this.opts.mutations?.noReadRetry) {
        // Leadership moved before the read was confirmed: a read index from any leader elected
        // after the read began is valid, so ask the next one while the deadline allows.
        r.awaitingLeader = true;
        continue;
      }
      this.reads.delete(rf.ctx);
      this.opts.clock.clearTimeout(r.timer);
      r.cb(this.proposeError(rf.code, this.core.status().leader));
    }
    for (const pf of rd.proposalFailures) {
      const p = this.proposals.get(pf.requestId);
      if (!p) continue;
      // NOT_LEADER: it reached a node that no longer leads; the next leader gets it again.
      if (pf.code === 'HA_ERR_NOT_LEADER') {
        p.submittedTo = '';
        continue;
      }
      this.finishProposal(pf.requestId, p);
      this.opts.hooks?.onProposalDone?.(this.opts.clock.nowMs() - p.startedMs, 'rejected');
      p.cb(this.proposeError(pf.code, this.core.status().leader));
    }
    this.serveReads();
    // 5. Advance.
    this.core.advance(rd);
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.leader);
  }

  private persisted(batch: PersistBatch, durationMs: number): void {
    if (batch.hardState) this.durableHardState = batch.hardState;
    this.opts.hooks?.onPersist?.(batch, durationMs);
  }

  private installSnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.applied) return;
    this.abortCompaction();
    this.opts.stateMachine.restore(this.appliedRequests.unwrapSnapshot(snap.data));
    this.lastSnapshotBytes = snap.data.length;
    this.logBytesSinceSnapshot = 0;
    this.applied = snap.meta.index;
    this.appliedTerm = snap.meta.term;
    this.appliedConfig = snap.meta.config;
    this.snapshotIndex = snap.meta.index;
    // Proposals whose entries arrived inside the snapshot are answered from the saved results.
    for (const [requestId, p] of [...this.proposals]) {
      if (p.data === null || !this.appliedRequests.has(requestId)) continue;
      const result = this.appliedRequests.result(requestId) as R | undefined;
      if (result === undefined) continue;
      this.finishProposal(requestId, p);
      this.opts.hooks?.onProposalDone?.(this.opts.clock.nowMs() - p.startedMs, 'committed');
      p.cb(null, result);
    }
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return; // covered by an installed snapshot
    assert.equal(e.index, this.applied + 1, `apply out of order: ${e.index} after ${this.applied}`);
    let result: R | ClusterConfig | undefined;
    const duplicate = e.requestId !== undefined && this.appliedRequests.has(e.requestId);
    if (e.type === 'normal' && !duplicate) {
      result = this.opts.stateMachine.apply(e.index, e.data ?? new Uint8Array(0));
      if (e.requestId !== undefined) this.appliedRequests.add(e.requestId, result);
    } else if (e.type === 'normal' && e.requestId !== undefined) {
      // The first copy was applied earlier (perhaps inside a snapshot): answer with its result.
      result = this.appliedRequests.result(e.requestId) as R | undefined;
    } else if (e.type === 'config') {
      assert.ok(e.config, `config entry ${e.index} carries no configuration`);
      this.appliedConfig = e.config;
      result = e.config;
    }
    this.applied = e.index;
    this.appliedTerm = e.term;
    this.logBytesSinceSnapshot += (e.data?.length ?? 0) + entryOverheadBytes;
    this.opts.hooks?.onApply?.(e);
    // A duplicate whose first copy's result is not remembered (past the table's window) leaves
    // its caller to time out (indeterminate) rather than get a made-up answer.
    if (e.requestId !== undefined && (!duplicate || result !== undefined)) {
      const p = this.proposals.get(e.requestId);
      if (p) {
        this.finishProposal(e.requestId, p);
        this.opts.hooks?.onProposalDone?.(this.opts.clock.nowMs() - p.startedMs, 'committed');
        p.cb(null, result);
      }
    }
  }

  private serveReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index === null || r.index > this.applied) continue;
      this.reads.delete(ctx);
      this.opts.clock.clearTimeout(r.timer);
      r.cb(null, r.index);
    }
  }

  private onSoftState(role: Role, leader: NodeId | null): void {
    if (role === this.lastRole && leader === this.lastLeader) return;
    this.lastRole = role;
    this.lastLeader = leader;
    this.opts.hooks?.onRoleChange?.(role, leader, this.core.status().term);
    for (const w of [...this.roleWaiters]) w();
    this.resubmitToNewLeader();
  }

  /** Identifies one leadership as seen from here, and the connection that reached it. */
  private leadershipKey(): string {
    const st = this.core.status();
    return st.leader === null ? '' : `${st.leader}@${st.term}#${this.leaderConnectionDrops}`;
  }

  /**
   * A new leader is known. Proposals and read-index requests still waiting here may have been
   * lost with the old leader (a forwarded proposal that never reached its log, an entry that a
   * new leader will overwrite, a read the old leader never confirmed). Submitting them again with
   * the same request id is harmless: an entry whose id was already applied is skipped
   * (AppliedRequests), and a read index from any leader elected after the read began is valid.
   * Without this, each of them would wait out its client's timeout.
   */
  private resubmitToNewLeader(): void {
    const key = this.leadershipKey();
    if (key === '') return;
    // Only to a leadership that has not had it yet: a flap from L to no leader and back to L in
    // the same term, over the same connection, loses nothing. (A leader also ignores a request
    // id it already holds uncommitted, so a duplicate never enters the log twice.)
    for (const [requestId, p] of this.proposals) {
      if (p.data === null || p.submittedTo === key) continue;
      p.submittedTo = key;
      this.core.propose(p.data, requestId);
    }
    for (const [ctx, r] of this.reads) {
      if (!r.awaitingLeader) continue;
      const res = this.core.readIndex(ctx);
      if (res.ok) r.awaitingLeader = false;
      else if (res.code === 'HA_ERR_BUSY') {
        this.reads.delete(ctx);
        this.opts.clock.clearTimeout(r.timer);
        r.cb(this.proposeError(res.code, res.leader));
      }
    }
    this.markDirty();
  }

  /**
   * Log compaction once snapshotEntries were applied since the last snapshot. With a state
   * machine that streams (snapshotStream) the snapshot is made a slice per turn while applies go
   * on, then stored (asynchronously where the store can, compactAsync); only once it is durable
   * does the core drop the entries it covers. Without one, the snapshot is made at once.
   */
  private maybeCompact(): void {
    if (this.stopped || this.compaction !== null) return;
    const ratio = this.opts.snapshotLogRatio ?? snapshotLogRatioDefault;
    const logBytes = this.logBytesSinceSnapshot;
    const byCount =
      this.applied - this.snapshotIndex >= this.opts.snapshotEntries + this.compactionJitter &&
      logBytes >= ratio * this.lastSnapshotBytes;
    // The log is held in memory: past compactionLogBytesMax it is compacted whatever the count.
    if (
      !byCount &&
      logBytes < compactionLogBytesMax * (1 + this.compactionJitter / this.opts.snapshotEntries)
    )
      return;
    const meta: Snapshot['meta'] = {
      index: this.applied,
      term: this.appliedTerm,
      config: this.appliedConfig,
    };
    const sm = this.opts.stateMachine;
    if (sm.snapshotStream === undefined) {
      const data = this.appliedRequests.wrapSnapshot(sm.snapshot());
      this.opts.storage.compact({ meta, data });
      this.compacted({ meta, data }, logBytes);
      return;
    }
    const job: CompactionJob = {
      meta,
      logBytes,
      stream: sm.snapshotStream(),
      parts: [this.appliedRequests.snapshotHead()],
      timer: null,
    };
    this.compaction = job;
    this.continueCompaction(job);
  }

  private continueCompaction(job: CompactionJob): void {
    job.timer = this.opts.clock.setTimeout(() => {
      job.timer = null;
      if (this.compaction !== job || this.stopped) return;
      const chunk = job.stream.next(compactionSliceBytes);
      if (chunk !== null) {
        job.parts.push(chunk);
        this.continueCompaction(job);
        return;
      }
      this.assembleCompaction(job, Buffer.allocUnsafe(job.parts.reduce((n, p) => n + p.length, 0)), 0, 0);
    }, 0);
  }

  /**
   * Copies the chunks into one buffer (the core sends chunks of it to followers) a few MiB per
   * turn: one copy of a large snapshot would hold the event loop for tens of milliseconds.
   */
  private assembleCompaction(job: CompactionJob, data: Buffer, part: number, at: number): void {
    let copied = 0;
    while (part < job.parts.length && copied < compactionCopyBytes) {
      const p = job.parts[part]!;
      data.set(p, at);
      at += p.length;
      copied += p.length;
      part++;
    }
    if (part < job.parts.length) {
      job.timer = this.opts.clock.setTimeout(() => {
        job.timer = null;
        if (this.compaction !== job || this.stopped) return;
        this.assembleCompaction(job, data, part, at);
      }, 0);
      return;
    }
    // A snapshot from the leader newer than this one was received meanwhile (the core holds it,
    // its write may still be in flight): storing this one would only be overwritten.
    if (this.core.status().snapshotIndex >= job.meta.index || this.writeInFlight?.snapshot) {
      this.compaction = null;
      job.stream.close();
      return;
    }
    const snapshot: Snapshot = { meta: job.meta, data };
    job.parts.length = 0;
    const startedMs = this.opts.clock.nowMs();
    const done = (err: Error | null): void => {
      if (this.compaction !== job) return;
      this.compaction = null;
      if (this.stopped) return;
      if (err !== null) {
        this.opts.hooks?.onCompactionFailed?.(err);
        return;
      }
      this.opts.hooks?.onCompacted?.(
        job.meta.index,
        snapshot.data.length,
        this.opts.clock.nowMs() - startedMs,
      );
      this.compacted(snapshot, job.logBytes);
    };
    const storage = this.opts.storage;
    if (storage.compactAsync !== undefined) storage.compactAsync(snapshot, done);
    else {
      try {
        storage.compact(snapshot);
      } catch (err) {
        done(err as Error);
        return;
      }
      done(null);
    }
  }

  /** The snapshot is durable: the core may drop the entries it covers. */
  private compacted(snapshot: Snapshot, coveredLogBytes: number): void {
    const index = snapshot.meta.index;
    // A snapshot installed from the leader meanwhile may already cover it.
    if (index <= this.snapshotIndex || index > this.applied) return;
    this.core.compact(index, snapshot.data);
    this.snapshotIndex = index;
    this.lastSnapshotBytes = snapshot.data.length;
    this.logBytesSinceSnapshot = Math.max(0, this.logBytesSinceSnapshot - coveredLogBytes);
    this.compactionJitter = this.drawCompactionJitter();
    this.markDirty();
  }

  private drawCompactionJitter(): number {
    return Math.floor(this.opts.prng.next() * (this.opts.snapshotEntries / 4));
  }

  /** Gives up on a compaction under way (a snapshot from the leader replaced the state). */
  private abortCompaction(): void {
    const job = this.compaction;
    if (job === null) return;
    this.compaction = null;
    if (job.timer !== null) this.opts.clock.clearTimeout(job.timer);
    job.stream.close();
  }

  // ---- helpers ------------------------------------------------------------------------------

  private nextRequestId(): string {
    this.requestSeq += 1;
    return `${this.opts.id}/${this.opts.bootId}/${this.requestSeq}`;
  }

  private track(
    requestId: string,
    data: Uint8Array | null,
    timeoutMs: number,
    cb: Callback<R | ClusterConfig>,
  ): void {
    const startedMs = this.opts.clock.nowMs();
    const timer = this.opts.clock.setTimeout(() => {
      const p = this.proposals.get(requestId);
      if (!p) return;
      this.finishProposal(requestId, p);
      this.opts.hooks?.onProposalDone?.(this.opts.clock.nowMs() - startedMs, 'timeout');
      cb(this.timeoutError('proposal', timeoutMs));
    }, timeoutMs);
    this.proposals.set(requestId, { startedMs, timer, cb, data, submittedTo: this.leadershipKey() });
    this.proposalsPendingBytes += data?.byteLength ?? 0;
  }

  /** Forgets a pending proposal (its caller is answered by the caller of this). */
  private finishProposal(requestId: string, p: PendingProposal<R>): void {
    this.proposals.delete(requestId);
    this.opts.clock.clearTimeout(p.timer);
    this.proposalsPendingBytes -= p.data?.byteLength ?? 0;
    assert.ok(this.proposalsPendingBytes >= 0, 'pending proposal bytes stay non-negative');
  }

  private waitApplied(index: Index, timeoutMs: number, cb: Callback<Index>): void {
    if (index <= this.applied) {
      cb(null, index);
      return;
    }
    this.trackRead(this.nextRequestId(), index, timeoutMs, cb);
  }

  private trackRead(ctx: string, index: Index | null, timeoutMs: number, cb: Callback<Index>): void {
    const timer = this.opts.clock.setTimeout(() => {
      if (!this.reads.delete(ctx)) return;
      // The core would otherwise keep waiting for an answer that may never come (a lost
      // readIndex message), and its bounded queue would fill for good.
      if (!this.opts.mutations?.leakForwardedReads) this.core.cancelRead(ctx);
      cb(this.timeoutError('read', timeoutMs));
    }, timeoutMs);
    this.reads.set(ctx, { timer, cb, index, awaitingLeader: false });
  }

  private timeoutError(what: string, timeoutMs: number): HaError {
    const st = this.core.status();
    if (st.leader === null) {
      return new HaError('HA_ERR_NO_QUORUM', `${what} timed out after ${timeoutMs} ms: no leader is known`);
    }
    return new HaError('HA_ERR_TIMEOUT', `${what} did not complete within ${timeoutMs} ms`, {
      leader: st.leader,
    });
  }

  private proposeError(code: string, leader: NodeId | null): HaError {
    switch (code) {
      case 'HA_ERR_NOT_LEADER':
        return new HaError(
          'HA_ERR_NOT_LEADER',
          leader ? `node ${this.opts.id} is not the leader; the leader is ${leader}` : 'no leader is known',
          { leader },
        );
      case 'HA_ERR_NO_QUORUM':
        return new HaError('HA_ERR_NO_QUORUM', 'the leader could not confirm a quorum', { leader });
      case 'HA_ERR_TRANSFER_IN_PROGRESS':
        return new HaError('HA_ERR_TRANSFER_IN_PROGRESS', 'leadership is being transferred', { leader });
      case 'HA_ERR_BUSY':
        return new HaError('HA_ERR_BUSY', 'too many uncommitted entries or pending reads', { leader });
      case 'HA_ERR_CONFIG_CHANGE_PENDING':
        return new HaError(
          'HA_ERR_CONFIG_CHANGE_PENDING',
          'an earlier membership change is not committed yet',
        );
      default:
        return new HaError('HA_ERR_BAD_REQUEST', `request refused: ${code}`);
    }
  }

  private refuseIfStopped(cb: Callback<never>): boolean {
    if (!this.stopped) return false;
    cb(new HaError('HA_ERR_SHUTTING_DOWN', `node ${this.opts.id} is stopped`));
    return true;
  }
}

/** Leader-to-follower replication: depends on the leader's term, not on its own log being durable. */
function isReplication(m: Message): boolean {
  return m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' || m.type === 'snapshotChunk';
}
