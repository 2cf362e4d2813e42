// Follower behaviour: accept the leader's log (thesis §3.5, §5.3), its commit index, and its
// snapshots (§5.3 "InstallSnapshot"). Every response echoes the message's seq and tick, which the
// leader uses for ReadIndex (§6.4) and its lease (§6.4.1).

import type { RaftNode } from './node.js';
import { stopLeading } from './leader.js';
import { failForwardedReads } from './read-index.js';
import type {
  AppendMsg,
  HeartbeatMsg,
  Index,
  NodeId,
  SnapshotChunkMsg,
  SnapshotMeta,
  SnapshotMsg,
  Term,
} from './types.js';

export function becomeFollower(r: RaftNode, term: Term, leader: NodeId | null): void {
  if (term > r.term) {
    r.term = term;
    r.votedFor = null;
  }
  if (r.role === 'leader') stopLeading(r);
  r.role = 'follower';
  setLeader(r, leader);
  r.votes.clear();
  r.resetElectionTimer();
}

export function setLeader(r: RaftNode, leader: NodeId | null): void {
  // Reads forwarded to a leader that we no longer follow would never be answered.
  if (r.leader !== leader) failForwardedReads(r);
  r.leader = leader;
}

/** Called for append, heartbeat and snapshot messages of the current term. */
export function acceptLeaderContact(r: RaftNode, leader: NodeId): void {
  if (r.role !== 'follower') becomeFollower(r, r.term, leader);
  else setLeader(r, leader);
  r.electionElapsedTicks = 0;
  r.leaderContactTick = r.nowTicks;
}

function replyAppend(
  r: RaftNode,
  m: AppendMsg | SnapshotMsg | SnapshotChunkMsg,
  reject: boolean,
  matchIndex: Index,
  hintIndex: Index,
): void {
  r.send({
    type: 'appendResp',
    from: r.id,
    to: m.from,
    term: r.term,
    reject,
    matchIndex,
    hintIndex,
    seq: m.seq,
    tick: m.tick,
  });
}

function isWellFormed(m: AppendMsg): boolean {
  if (!Number.isSafeInteger(m.prevLogIndex) || m.prevLogIndex < 0) return false;
  if (!Number.isSafeInteger(m.commit) || m.commit < 0) return false;
  let prevTerm = m.prevLogTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i];
    if (e.index !== m.prevLogIndex + 1 + i || e.term < prevTerm || e.term > m.term) return false;
    prevTerm = e.term;
  }
  return true;
}

/** AppendEntries receiver (thesis Figure 3.1, §3.5). */
export function handleAppend(r: RaftNode, m: AppendMsg): void {
  if (!isWellFormed(m)) return;
  const log = r.log;
  // Consistency check: our log must hold the entry just before the new ones. hintIndex is the
  // highest index that may still match, so the leader retries with prevLogIndex = hintIndex.
  if (m.prevLogIndex > log.lastIndex) {
    replyAppend(r, m, true, 0, log.lastIndex);
    return;
  }
  if (m.prevLogIndex > log.snapshotIndex && !r.opts.mutations?.skipPrevCheck) {
    if (log.term(m.prevLogIndex) !== m.prevLogTerm) {
      const hint = Math.max(log.firstIndexOfTermRun(m.prevLogIndex) - 1, r.commit);
      replyAppend(r, m, true, 0, Math.min(hint, m.prevLogIndex - 1));
      return;
    }
  }
  // Entries at or below the snapshot are committed, hence identical to the leader's.
  const fresh = m.entries.filter((e) => e.index > log.snapshotIndex);
  for (let i = 0; i < fresh.length; i++) {
    const e = fresh[i];
    const ourTerm = log.term(e.index);
    if (ourTerm === e.term) continue;
    if (ourTerm !== undefined) {
      // A sender that contradicts a committed entry is not a correct leader; keep what is
      // committed and say nothing (§5.4.2 Leader Completeness makes this unreachable).
      if (e.index <= r.commit) return;
      r.truncateLog(e.index);
    }
    r.appendToLog(fresh.slice(i));
    break;
  }
  const lastNewIndex = m.prevLogIndex + m.entries.length;
  r.advanceCommit(Math.min(m.commit, lastNewIndex));
  replyAppend(r, m, false, lastNewIndex, 0);
}

export function handleHeartbeat(r: RaftNode, m: HeartbeatMsg): void {
  // The leader sends min(commit, our match), so every entry up to it matches the leader's log.
  if (Number.isSafeInteger(m.commit)) r.advanceCommit(Math.min(m.commit, r.log.lastIndex));
  r.send({ type: 'heartbeatResp', from: r.id, to: m.from, term: r.term, seq: m.seq, tick: m.tick });
}

/** InstallSnapshot receiver (thesis §5.3). */
export function handleSnapshot(r: RaftNode, m: SnapshotMsg): void {
  const meta = m.snapshot.meta;
  if (answerCoveredSnapshot(r, m, meta) !== null) return;
  r.installSnapshot(m.snapshot);
  replyAppend(r, m, false, meta.index, 0);
}

/**
 * A snapshot the follower does not need: at or below its commit, or ending on an entry its log
 * already holds (so the log matches up to there and is kept). Answers it and says which; null
 * when the snapshot is needed.
 */
function answerCoveredSnapshot(
  r: RaftNode,
  m: SnapshotMsg | SnapshotChunkMsg,
  meta: SnapshotMeta,
): 'committed' | 'held' | null {
  if (meta.index <= r.commit) {
    replyAppend(r, m, false, r.commit, 0);
    return 'committed';
  }
  if (r.log.term(meta.index) === meta.term) {
    r.advanceCommit(meta.index);
    replyAppend(r, m, false, meta.index, 0);
    return 'held';
  }
  return null;
}

/**
 * InstallSnapshot in chunks (§5.3): chunks are kept only in order, each checked by the CRC-32
 * of the whole prefix it completes; anything else is answered with what is held (`rewind`), so
 * that the leader resumes there — after a lost or duplicated chunk, a reconnect, or a restart of
 * either side. The snapshot is installed only once all of it arrived intact.
 */
export function handleSnapshotChunk(r: RaftNode, m: SnapshotChunkMsg): void {
  const meta = m.meta;
  const covered = answerCoveredSnapshot(r, m, meta);
  if (covered === 'held') r.snapshotRecv = null;
  if (covered !== null) return;
  let recv = r.snapshotRecv;
  if (
    recv === null ||
    recv.meta.index !== meta.index ||
    recv.meta.term !== meta.term ||
    recv.total !== m.total
  ) {
    if (m.offset !== 0) {
      replyChunk(r, m, 0, true);
      return;
    }
    recv = r.snapshotRecv = { meta, total: m.total, parts: [], received: 0, crc: 0 };
  }
  if (m.offset !== recv.received) {
    replyChunk(r, m, recv.received, true);
    return;
  }
  const end = recv.received + m.data.length;
  const crc = r.opts.crc32(m.data, recv.crc);
  if (crc !== m.crc || end > recv.total || (m.data.length === 0 && end < recv.total)) {
    // Damaged on the way, or another snapshot of the same index, term and size: start over.
    r.snapshotRecv = null;
    replyChunk(r, m, 0, true);
    return;
  }
  recv.parts.push(m.data);
  recv.received = end;
  recv.crc = crc;
  if (end < recv.total) {
    replyChunk(r, m, end, false);
    return;
  }
  r.snapshotRecv = null;
  const data = new Uint8Array(recv.total);
  let at = 0;
  for (const part of recv.parts) {
    data.set(part, at);
    at += part.length;
  }
  r.installSnapshot({ meta: recv.meta, data });
  replyAppend(r, m, false, meta.index, 0);
}

function replyChunk(r: RaftNode, m: SnapshotChunkMsg, received: number, rewind: boolean): void {
  r.send({
    type: 'snapshotChunkResp',
    from: r.id,
    to: m.from,
    term: r.term,
    index: m.meta.index,
    snapshotTerm: m.meta.term,
    received,
    rewind,
    seq: m.seq,
    tick: m.tick,
  });
}
