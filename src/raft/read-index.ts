// Linearizable reads without writing to the log (thesis §6.4, ReadIndex):
//  1. the leader waits until it has committed an entry of its term (it then knows the commit
//     index is at least that of any earlier leader);
//  2. it records commit as the read index and a sequence number `seq`;
//  3. it sends heartbeats carrying `seq`; once a quorum of voters (self included) echoed a seq
//     >= the read's, nobody else was leader when the read arrived, so the read index is safe;
//  4. the read is served once the state machine has applied up to the read index (runtime).
// Followers forward reads to the leader and serve them locally with the index it returns.

import { bcastHeartbeat } from './leader.js';
import type { PendingRead, RaftNode } from './node.js';
import { quorumValue } from './quorum.js';
import type { Index, NodeId, ReadIndexMsg, ReadIndexRespMsg } from './types.js';

function pendingCount(r: RaftNode): number {
  return r.readsWaitingForCommit.length + r.readsPending.length;
}

/** Leader: accepts a read (local when from === r.id). Returns false when the queue is full. */
export function requestRead(r: RaftNode, ctx: string, from: NodeId): boolean {
  if (pendingCount(r) >= r.opts.pendingReadsMax) return false;
  if (!r.committedInCurrentTerm() && !r.opts.mutations?.readBeforeTermCommit) {
    r.readsWaitingForCommit.push({ ctx, from });
    return true;
  }
  registerReads(r, [{ ctx, from }]);
  return true;
}

/**
 * Reads that arrive together share one heartbeat round: they take the next round's sequence
 * number, and the round goes out once, when the runtime next takes a Ready (flushReadRound), so
 * a burst of reads costs one broadcast, not one per read.
 */
function registerReads(r: RaftNode, reads: readonly { ctx: string; from: NodeId }[]): void {
  if (reads.length === 0) return;
  const seq = r.readSeq + 1;
  for (const { ctx, from } of reads) r.readsPending.push({ ctx, from, index: r.commit, seq });
  r.readRoundPending = true;
  confirmReads(r);
}

/** Sends the heartbeat round that the reads registered since the last one are waiting for. */
export function flushReadRound(r: RaftNode): void {
  if (!r.readRoundPending) return;
  r.readRoundPending = false;
  if (r.role !== 'leader' || r.readsPending.length === 0) return;
  r.readSeq++;
  bcastHeartbeat(r);
  confirmReads(r);
}

/** Called when the leader commits: reads held back by step 1 may proceed. */
export function releaseWaitingReads(r: RaftNode): void {
  if (r.readsWaitingForCommit.length === 0 || !r.committedInCurrentTerm()) return;
  const waiting = r.readsWaitingForCommit;
  r.readsWaitingForCommit = [];
  registerReads(r, waiting);
}

/** Completes every pending read whose seq a quorum of voters has acknowledged. */
export function confirmReads(r: RaftNode): void {
  if (r.readsPending.length === 0 || r.role !== 'leader') return;
  const acked = r.opts.mutations?.readSkipsQuorum
    ? Number.POSITIVE_INFINITY
    : quorumValue(
        r.config.voters.map((v) =>
          v === r.id ? Number.POSITIVE_INFINITY : (r.progress.get(v)?.ackedSeq ?? Number.NEGATIVE_INFINITY),
        ),
      );
  let n = 0;
  while (n < r.readsPending.length && r.readsPending[n].seq <= acked) n++;
  if (n === 0) return;
  const done = r.readsPending.splice(0, n);
  for (const read of done) answer(r, read, read.index);
}

function answer(r: RaftNode, read: Pick<PendingRead, 'ctx' | 'from'>, index: Index): void {
  if (read.from === r.id) {
    if (index >= 0) r.readStates.push({ ctx: read.ctx, index });
    else r.readFailures.push({ ctx: read.ctx, code: 'HA_ERR_NOT_LEADER' });
  } else {
    r.send({ type: 'readIndexResp', from: r.id, to: read.from, term: r.term, ctx: read.ctx, index });
  }
}

/** On losing leadership: no pending read can be confirmed any more. */
export function failLeaderReads(r: RaftNode): void {
  const all = [...r.readsWaitingForCommit, ...r.readsPending];
  r.readsWaitingForCommit = [];
  r.readsPending = [];
  for (const read of all) answer(r, read, -1);
}

/** Follower: forwards a read to the leader. Returns false when the queue is full. */
export function forwardRead(r: RaftNode, ctx: string, leader: NodeId): boolean {
  if (r.forwardedReads.size >= r.opts.pendingReadsMax) return false;
  r.forwardedReads.add(ctx);
  r.send({ type: 'readIndex', from: r.id, to: leader, term: r.term, ctx });
  return true;
}

export function cancelRead(r: RaftNode, ctx: string): void {
  r.forwardedReads.delete(ctx);
  const mine = (x: { ctx: string; from: NodeId }): boolean => x.from !== r.id || x.ctx !== ctx;
  r.readsWaitingForCommit = r.readsWaitingForCommit.filter(mine);
  r.readsPending = r.readsPending.filter(mine);
}

export function failForwardedReads(r: RaftNode): void {
  for (const ctx of r.forwardedReads) r.readFailures.push({ ctx, code: 'HA_ERR_NOT_LEADER' });
  r.forwardedReads.clear();
}

export function handleReadIndex(r: RaftNode, m: ReadIndexMsg): void {
  if (r.role !== 'leader' || !requestRead(r, m.ctx, m.from)) {
    answer(r, { ctx: m.ctx, from: m.from }, -1);
  }
}

export function handleReadIndexResp(r: RaftNode, m: ReadIndexRespMsg): void {
  if (m.from !== r.leader || !r.forwardedReads.delete(m.ctx)) return;
  if (m.index >= 0) r.readStates.push({ ctx: m.ctx, index: m.index });
  else r.readFailures.push({ ctx: m.ctx, code: 'HA_ERR_NOT_LEADER' });
}
