// Client proposals and membership changes at the leader, with their admission limits.

import { applyConfChange } from './config.js';
import { appendAsLeader } from './leader.js';
import type { RaftNode } from './node.js';
import type { ConfChange, NodeId, ProposeErrorCode, ProposeResult } from './types.js';

function refuse(code: ProposeErrorCode, leader: NodeId | null): ProposeResult {
  return { ok: false, code, leader };
}

/** Why the leader cannot accept a new entry of `bytes` data bytes now, or null. */
function admissionError(r: RaftNode, bytes: number): ProposeResult | null {
  if (r.transferee !== null) return refuse('HA_ERR_TRANSFER_IN_PROGRESS', r.id);
  // Bounded: a leader that cannot commit (no quorum) must not buffer proposals without limit,
  // in count or in bytes (one entry is always admitted when nothing is uncommitted).
  if (r.log.lastIndex - r.commit >= r.opts.uncommittedEntriesMax) return refuse('HA_ERR_BUSY', r.id);
  if (r.uncommittedBytes > 0 && r.uncommittedBytes + bytes > r.opts.uncommittedBytesMax) {
    return refuse('HA_ERR_BUSY', r.id);
  }
  return null;
}

export function proposeLocal(r: RaftNode, data: Uint8Array, requestId: string): ProposeResult {
  // A follower resubmits its pending proposals to every new leader it learns of (a forwarded
  // proposal may have been lost); one that this leader already holds uncommitted is not
  // appended again. (One already committed is skipped when applied: AppliedRequests.)
  if (r.uncommittedRequestIds.has(requestId)) {
    return { ok: true, index: r.log.lastIndex, term: r.term, forwarded: false };
  }
  const error = admissionError(r, data.byteLength);
  if (error) return error;
  const index = r.log.lastIndex + 1;
  appendAsLeader(r, [{ index, term: r.term, type: 'normal', data, requestId }]);
  return { ok: true, index, term: r.term, forwarded: false };
}

export function propose(r: RaftNode, data: Uint8Array, requestId: string): ProposeResult {
  if (r.role === 'leader') return proposeLocal(r, data, requestId);
  if (r.role === 'follower' && r.leader !== null) {
    r.send({ type: 'propose', from: r.id, to: r.leader, term: r.term, data, requestId });
    return { ok: true, forwarded: true };
  }
  return refuse('HA_ERR_NOT_LEADER', r.leader);
}

/**
 * Single-server membership change (thesis §4.1). Refused while an earlier change is uncommitted
 * (two uncommitted changes could add up to a two-server change) and until this leader has
 * committed an entry of its term (otherwise an uncommitted change of a previous leader could
 * still be overwritten after ours was counted).
 */
export function proposeConfChange(r: RaftNode, change: ConfChange, requestId: string): ProposeResult {
  if (r.role !== 'leader') return refuse('HA_ERR_NOT_LEADER', r.leader);
  if (r.transferee !== null) return refuse('HA_ERR_TRANSFER_IN_PROGRESS', r.id);
  const termCommitted = r.committedInCurrentTerm() || r.opts.mutations?.confChangeBeforeTermCommit === true;
  if (!termCommitted || r.configIndex > r.commit) return refuse('HA_ERR_CONFIG_CHANGE_PENDING', r.id);
  const config = applyConfChange(r.config, change);
  if (config === null) return refuse('HA_ERR_BAD_REQUEST', r.id);
  const error = admissionError(r, 0);
  if (error) return error;
  const index = r.log.lastIndex + 1;
  appendAsLeader(r, [{ index, term: r.term, type: 'config', config, requestId }]);
  return { ok: true, index, term: r.term, forwarded: false };
}
