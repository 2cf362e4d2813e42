// Leader behaviour: the no-op that starts a term (§8), replication with per-follower flow control
// (§3.5, §10.2 batching and pipelining), the commit rule (§3.6.2), heartbeats and check-quorum
// (§6.2), and stepping down once a configuration without it commits (§4.2.2).

import { assert } from './assert.js';
import { isVoter, members } from './config.js';
import { becomeFollower } from './follower.js';
import type { RaftNode } from './node.js';
import { Progress } from './progress.js';
import { quorumSize, quorumValue } from './quorum.js';
import { confirmReads, failLeaderReads, releaseWaitingReads } from './read-index.js';
import { maybeSendTimeoutNow } from './transfer.js';
import type {
  AppendRespMsg,
  Entry,
  HeartbeatRespMsg,
  NodeId,
  Snapshot,
  SnapshotChunkRespMsg,
} from './types.js';

export function becomeLeader(r: RaftNode): void {
  assert(r.role === 'candidate', `becomeLeader from ${r.role}`);
  r.role = 'leader';
  r.leader = r.id;
  r.snapshotRecv = null;
  r.votes.clear();
  r.heartbeatElapsedTicks = 0;
  r.transferee = null;
  r.transferElapsedTicks = 0;
  r.timeoutNowSentThisTerm = false;
  r.progress.clear();
  syncProgress(r);
  clearUncommitted(r);
  for (const e of r.log.slice(r.commit + 1, r.log.lastIndex)) trackUncommitted(r, e);
  // §8: a new leader does not know which entries are committed until it commits one of its own
  // term; the no-op forces that at once. Its (term, index) is the fencing token of this term.
  const noop: Entry = { index: r.log.lastIndex + 1, term: r.term, type: 'noop' };
  appendAsLeader(r, [noop]);
  r.fencingToken = { term: r.term, index: noop.index };
}

/** Leaves leadership: fails reads that can no longer be confirmed and drops leader state. */
export function stopLeading(r: RaftNode): void {
  failLeaderReads(r);
  clearUncommitted(r);
  r.progress.clear();
  r.transferee = null;
  r.fencingToken = null;
}

/** Tracks progress for exactly the current members (voters and learners) other than self. */
export function syncProgress(r: RaftNode): void {
  const wanted = members(r.config).filter((id) => id !== r.id);
  for (const id of [...r.progress.keys()]) {
    if (!wanted.includes(id)) r.progress.delete(id);
  }
  for (const id of wanted) {
    if (!r.progress.has(id)) r.progress.set(id, new Progress(r.log.lastIndex + 1, r.nowTicks));
  }
  if (r.transferee !== null && !isVoter(r.config, r.transferee)) r.transferee = null;
}

function trackUncommitted(r: RaftNode, e: Entry): void {
  const bytes = e.data?.byteLength ?? 0;
  r.uncommitted.push({ index: e.index, bytes, requestId: e.requestId });
  r.uncommittedBytes += bytes;
  if (e.requestId !== undefined) r.uncommittedRequestIds.add(e.requestId);
}

function clearUncommitted(r: RaftNode): void {
  r.uncommitted.length = 0;
  r.uncommittedBytes = 0;
  r.uncommittedRequestIds.clear();
}

/** Drops the bookkeeping of entries the leader has now committed. */
function releaseCommitted(r: RaftNode): void {
  let n = 0;
  while (n < r.uncommitted.length && r.uncommitted[n].index <= r.commit) {
    const u = r.uncommitted[n];
    r.uncommittedBytes -= u.bytes;
    if (u.requestId !== undefined) r.uncommittedRequestIds.delete(u.requestId);
    n++;
  }
  r.uncommitted.splice(0, n);
  assert(r.uncommittedBytes >= 0, 'uncommitted bytes stay non-negative');
}

/** Appends to the leader's log; the configuration takes effect at once (§4.1). */
export function appendAsLeader(r: RaftNode, entries: readonly Entry[]): void {
  r.appendToLog(entries);
  for (const e of entries) trackUncommitted(r, e);
  if (entries.some((e) => e.type === 'config')) syncProgress(r);
  bcastAppend(r, false);
}

/**
 * Sends the next append to `to`, or a snapshot when the entries it needs were compacted.
 * Returns whether entries went out (callers loop to fill a replicate pipeline).
 */
export function sendAppend(r: RaftNode, to: NodeId, allowEmpty: boolean): boolean {
  const pr = r.progress.get(to);
  if (!pr || pr.isPaused(r.opts.inflightMax)) return false;
  pr.next = Math.min(pr.next, r.log.lastIndex + 1);
  const prevLogIndex = pr.next - 1;
  const prevLogTerm = r.log.term(prevLogIndex);
  if (prevLogTerm === undefined) {
    sendSnapshot(r, to);
    return false;
  }
  const entries = nextBatch(r, pr.next);
  if (entries.length === 0 && !allowEmpty) return false;
  r.send({
    type: 'append',
    from: r.id,
    to,
    term: r.term,
    prevLogIndex,
    prevLogTerm,
    entries,
    commit: r.commit,
    seq: r.readSeq,
    tick: r.nowTicks,
  });
  if (pr.state === 'replicate' && entries.length > 0) {
    const last = entries[entries.length - 1].index;
    pr.next = last + 1;
    pr.inflights.push({ lastIndex: last, sentTick: r.nowTicks });
  } else if (pr.state === 'probe') {
    pr.probeSent = true;
  }
  return entries.length > 0;
}

/** Up to entriesPerAppendMax entries and appendBytesMax bytes, but always at least one. */
function nextBatch(r: RaftNode, from: number): Entry[] {
  const candidates = r.log.slice(from, from + r.opts.entriesPerAppendMax - 1);
  let bytes = 0;
  let n = 0;
  for (const e of candidates) {
    bytes += e.data?.byteLength ?? 0;
    if (n > 0 && bytes > r.opts.appendBytesMax) break;
    n++;
  }
  return candidates.slice(0, n);
}

function sendSnapshot(r: RaftNode, to: NodeId): void {
  const pr = r.progress.get(to)!;
  const snapshot = r.snapshot;
  assert(snapshot.meta.index === r.log.snapshotIndex, 'kept snapshot matches the log offset');
  pr.becomeSnapshot(snapshot, r.nowTicks);
  sendSnapshotChunk(r, to, pr);
}

/** Sends the chunk of pr.sending that starts at pr.snapshotOffset (the only one in flight). */
function sendSnapshotChunk(r: RaftNode, to: NodeId, pr: Progress): void {
  const snapshot = pr.sending;
  assert(snapshot !== null, 'snapshot state without a snapshot');
  const total = snapshot.data.length;
  const offset = pr.snapshotOffset;
  const end = Math.min(total, offset + r.opts.snapshotChunkBytes);
  r.send({
    type: 'snapshotChunk',
    from: r.id,
    to,
    term: r.term,
    meta: snapshot.meta,
    offset,
    total,
    crc: prefixCrc(r, snapshot, end),
    data: snapshot.data.subarray(offset, end),
    seq: r.readSeq,
    tick: r.nowTicks,
  });
  pr.snapshotSentTick = r.nowTicks;
}

/**
 * CRC-32 of snapshot bytes [0, end), where end is a chunk boundary or the total. Computed once
 * per snapshot and chunk, whichever follower asks first (chunk k's value continues chunk k-1's).
 */
function prefixCrc(r: RaftNode, snapshot: Snapshot, end: number): number {
  let crcs = prefixCrcs.get(snapshot);
  if (crcs === undefined) {
    crcs = [0];
    prefixCrcs.set(snapshot, crcs);
  }
  const step = r.opts.snapshotChunkBytes;
  const k = Math.ceil(end / step);
  for (let i = crcs.length; i <= k; i++) {
    const from = (i - 1) * step;
    const to = Math.min(snapshot.data.length, i * step);
    crcs.push(r.opts.crc32(snapshot.data.subarray(from, to), crcs[i - 1]));
  }
  return crcs[k];
}

/** Per snapshot (dropped with it), the prefix CRC at each chunk boundary. */
const prefixCrcs = new WeakMap<Snapshot, number[]>();

/** The follower says how much of the snapshot it holds: send the next chunk from there. */
export function handleSnapshotChunkResp(r: RaftNode, m: SnapshotChunkRespMsg): void {
  const pr = r.progress.get(m.from);
  if (!pr) return;
  noteContact(r, pr, m.seq, m.tick);
  if (r.role !== 'leader') return;
  const snapshot = pr.sending;
  if (pr.state !== 'snapshot' || snapshot === null) return;
  if (m.index !== snapshot.meta.index || m.snapshotTerm !== snapshot.meta.term) return;
  // The whole snapshot arrived: the follower answers its install with an appendResp.
  if (!(m.received >= 0 && m.received < snapshot.data.length)) return;
  // The follower's count is authoritative (it may have restarted and hold less than before).
  pr.snapshotOffset = m.received;
  sendSnapshotChunk(r, m.from, pr);
}

/** Fills every follower's pipeline; `allowEmpty` also sends commit-only appends. */
export function bcastAppend(r: RaftNode, allowEmpty: boolean): void {
  for (const id of r.progress.keys()) pump(r, id, allowEmpty);
}

function pump(r: RaftNode, id: NodeId, allowEmpty: boolean): void {
  let empty = allowEmpty;
  // Bounded: each iteration adds an inflight, and isPaused stops at inflightMax.
  while (sendAppend(r, id, empty)) {
    empty = false;
    if (r.progress.get(id)?.state !== 'replicate') break;
  }
}

export function bcastHeartbeat(r: RaftNode): void {
  for (const [id, pr] of r.progress) {
    r.send({
      type: 'heartbeat',
      from: r.id,
      to: id,
      term: r.term,
      commit: Math.min(r.commit, pr.match),
      seq: r.readSeq,
      tick: r.nowTicks,
    });
  }
}

/** Any response from a peer in this term: contact for check-quorum, echoes for reads/lease. */
function noteContact(r: RaftNode, pr: Progress, seq: number, tick: number): void {
  pr.lastContactTick = r.nowTicks;
  if (Number.isFinite(tick)) pr.ackedTick = Math.max(pr.ackedTick, Math.min(tick, r.nowTicks));
  if (Number.isFinite(seq)) pr.ackedSeq = Math.max(pr.ackedSeq, Math.min(seq, r.readSeq));
  confirmReads(r);
}

export function handleAppendResp(r: RaftNode, m: AppendRespMsg): void {
  const pr = r.progress.get(m.from);
  if (!pr) return;
  if (!m.reject && !(m.matchIndex >= 0 && m.matchIndex <= r.log.lastIndex)) return;
  noteContact(r, pr, m.seq, m.tick);
  if (r.role !== 'leader') return; // confirming a read cannot end leadership, but stay defensive
  if (m.reject) {
    // A rejection during snapshot predates the snapshot. One below a known match is stale if it
    // answers a message sent before that match was acknowledged; if it answers a later one, the
    // follower no longer holds what it acknowledged (its data directory was wiped or restored
    // from an old copy): forget the match, or the leader would probe above the follower's log
    // for ever and never send the snapshot it needs.
    if (pr.state === 'snapshot') return;
    if (!(m.hintIndex >= pr.match)) {
      if (!(m.tick > pr.matchTick) || r.opts.mutations?.keepLostMatch) return;
      pr.match = 0;
      pr.lostLogs++;
    }
    const previousNext = pr.next;
    pr.becomeProbe();
    pr.next = Math.max(pr.match + 1, Math.min(previousNext - 1, m.hintIndex + 1));
    sendAppend(r, m.from, true);
    return;
  }
  if (m.matchIndex >= pr.match) pr.matchTick = Math.max(pr.matchTick, m.tick);
  const advanced = pr.updateMatch(m.matchIndex);
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshotIndex) pr.becomeReplicate();
  if (advanced) {
    maybeCommit(r);
    if (r.role !== 'leader') return;
    maybeSendTimeoutNow(r, m.from);
  }
  pump(r, m.from, false);
}

export function handleHeartbeatResp(r: RaftNode, m: HeartbeatRespMsg): void {
  const pr = r.progress.get(m.from);
  if (!pr) return;
  noteContact(r, pr, m.seq, m.tick);
  if (r.role !== 'leader') return;
  pr.probeSent = false;
  if (pr.state === 'snapshot' && pr.sending !== null && pr.lostBefore(m.tick)) {
    // The chunk in flight (or its answer) was lost: send it again from what was confirmed.
    sendSnapshotChunk(r, m.from, pr);
    return;
  }
  if (pr.lostBefore(m.tick)) pr.becomeProbe();
  // In probe state the leader does not know where the follower's log ends, even when its match
  // says "up to date": after a reconnect the follower may have restarted with less (a wiped
  // disk). One empty append per heartbeat answer asks, until one is acknowledged.
  if (pr.match < r.log.lastIndex || pr.state === 'probe') pump(r, m.from, pr.state === 'probe');
}

/**
 * §3.6.2: commit the highest index stored on a majority of voters, but only if that entry is of
 * the current term; older entries then commit indirectly (Figure 3.7 shows why counting replicas
 * of an old-term entry is unsafe). The leader counts itself only up to its durable index and only
 * if it is a voter of the latest configuration (§4.2.2). Returns whether commit advanced.
 */
export function maybeCommit(r: RaftNode): boolean {
  if (r.role !== 'leader') return false;
  const own = r.opts.mutations?.commitBeforeDurable ? r.log.lastIndex : r.persistedIndex;
  const matches = r.config.voters.map((v) => (v === r.id ? own : (r.progress.get(v)?.match ?? 0)));
  const n = quorumValue(matches);
  if (!(n > r.commit)) return false;
  if (!r.opts.mutations?.commitOldTerms && r.log.term(n) !== r.term) return false;
  const before = r.commit;
  r.advanceCommit(n);
  assert(r.commit > before, 'commit advanced');
  releaseCommitted(r);
  bcastAppend(r, true);
  // §4.2.2: a leader outside the committed configuration steps down; until then it led. The
  // commit index went out first, so the others learn of the new configuration's commit at once.
  if (r.configIndex <= r.commit && !r.isVoter()) {
    becomeFollower(r, r.term, null);
    return true;
  }
  releaseWaitingReads(r);
  return true;
}

/** §6.2 check-quorum: has a quorum of voters (self included if a voter) been heard from within
 * the last electionTicks? */
export function quorumActive(r: RaftNode): boolean {
  let active = 0;
  for (const v of r.config.voters) {
    if (v === r.id) active++;
    else {
      const pr = r.progress.get(v);
      if (pr && r.nowTicks - pr.lastContactTick < r.opts.electionTicks) active++;
    }
  }
  return active >= quorumSize(r.config.voters.length);
}

export function tickLeader(r: RaftNode, catchUp: boolean): void {
  // A catch-up tick (time that passed while the process was frozen) only moves the clock: the
  // acknowledgements that arrived meanwhile have not been read yet, so judging the quorum now
  // would depose a leader whose followers never stopped answering.
  if (!catchUp && r.opts.checkQuorum && !r.opts.mutations?.ignoreCheckQuorum && !quorumActive(r)) {
    becomeFollower(r, r.term, null);
    return;
  }
  if (r.transferee !== null && ++r.transferElapsedTicks >= r.opts.electionTicks) {
    // §3.10: give up so that the cluster is not left without a working leader.
    r.transferee = null;
  }
  if (++r.heartbeatElapsedTicks >= r.opts.heartbeatTicks && !catchUp) {
    r.heartbeatElapsedTicks = 0;
    bcastHeartbeat(r);
  }
}
