// Message dispatch: term rules first (thesis Figure 3.1 "Rules for Servers", §9.6 pre-vote,
// §4.2.3 stickiness), then the handler for the receiver's role. step never throws on a
// well-typed message: stale or irrelevant messages are dropped.

import { handleVoteRequest, handleVoteResp, inLease } from './candidate.js';
import {
  acceptLeaderContact,
  becomeFollower,
  handleAppend,
  handleHeartbeat,
  handleSnapshot,
  handleSnapshotChunk,
} from './follower.js';
import { handleAppendResp, handleHeartbeatResp, handleSnapshotChunkResp } from './leader.js';
import type { RaftNode } from './node.js';
import { proposeLocal } from './proposals.js';
import { handleReadIndex, handleReadIndexResp } from './read-index.js';
import { handleTimeoutNow } from './transfer.js';
import type { Message, ProposeResult } from './types.js';

const fromLeaderTypes: ReadonlySet<Message['type']> = new Set([
  'append',
  'heartbeat',
  'snapshot',
  'snapshotChunk',
  'timeoutNow',
]);

export function step(r: RaftNode, m: Message): void {
  if (m.to !== r.id || m.from === r.id || !Number.isSafeInteger(m.term) || m.term < 0) return;
  if (m.term > r.term) {
    if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
      // A pre-vote is a question about a hypothetical term; it changes nobody's term (§9.6).
    } else if (m.type === 'vote' && !m.transfer && inLease(r)) {
      // Stickiness: a live leader exists, so this candidate is disruptive; ignoring it (without
      // adopting its term) keeps the leader in place (§4.2.3).
      return;
    } else {
      becomeFollower(r, m.term, fromLeaderTypes.has(m.type) ? m.from : null);
    }
  } else if (m.term < r.term) {
    answerStale(r, m);
    return;
  }

  switch (m.type) {
    case 'preVote':
    case 'vote':
      handleVoteRequest(r, m);
      return;
    case 'preVoteResp':
      // Grants carry the proposed term, rejections the voter's term.
      if (m.term === (m.reject ? r.term : r.term + 1)) handleVoteResp(r, m);
      return;
    case 'voteResp':
      handleVoteResp(r, m);
      return;
    case 'append':
      if (r.role === 'leader') return; // two leaders in one term: only a broken voter allows it
      acceptLeaderContact(r, m.from);
      handleAppend(r, m);
      return;
    case 'heartbeat':
      if (r.role === 'leader') return;
      acceptLeaderContact(r, m.from);
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
    case 'snapshotChunk':
      if (r.role === 'leader') return;
      acceptLeaderContact(r, m.from);
      if (m.type === 'snapshot') handleSnapshot(r, m);
      else handleSnapshotChunk(r, m);
      return;
    case 'snapshotChunkResp':
      if (r.role === 'leader') handleSnapshotChunkResp(r, m);
      return;
    case 'appendResp':
      if (r.role === 'leader') handleAppendResp(r, m);
      return;
    case 'heartbeatResp':
      if (r.role === 'leader') handleHeartbeatResp(r, m);
      return;
    case 'timeoutNow':
      handleTimeoutNow(r, m);
      return;
    case 'propose': {
      // A forwarded proposal's outcome reaches the client through the applied entry's requestId;
      // a refusal goes back at once, so that the client does not wait out its deadline.
      const result: ProposeResult =
        r.role === 'leader'
          ? proposeLocal(r, m.data, m.requestId)
          : { ok: false, code: 'HA_ERR_NOT_LEADER', leader: r.leader };
      if (!result.ok && !r.opts.mutations?.silentProposeRefusal) {
        r.send({
          type: 'proposeResp',
          from: r.id,
          to: m.from,
          term: r.term,
          requestId: m.requestId,
          code: result.code,
        });
      }
      return;
    }
    case 'proposeResp':
      if (r.role !== 'leader') r.proposalFailures.push({ requestId: m.requestId, code: m.code });
      return;
    case 'readIndex':
      handleReadIndex(r, m);
      return;
    case 'readIndexResp':
      handleReadIndexResp(r, m);
      return;
  }
}

/** A message from an older term. Leaders of old terms learn of the new one from our rejection. */
function answerStale(r: RaftNode, m: Message): void {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot':
    case 'snapshotChunk':
    case 'timeoutNow':
      r.send({
        type: 'appendResp',
        from: r.id,
        to: m.from,
        term: r.term,
        reject: true,
        matchIndex: 0,
        hintIndex: 0,
        seq: m.type === 'timeoutNow' ? 0 : m.seq,
        tick: m.type === 'timeoutNow' ? 0 : m.tick,
      });
      return;
    case 'preVote':
      r.send({ type: 'preVoteResp', from: r.id, to: m.from, term: r.term, reject: true });
      return;
    case 'readIndex':
      r.send({ type: 'readIndexResp', from: r.id, to: m.from, term: r.term, ctx: m.ctx, index: -1 });
      return;
    default:
      return;
  }
}
