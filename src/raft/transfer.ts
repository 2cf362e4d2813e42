// Leadership transfer (thesis §3.10): the leader stops accepting proposals, brings the target's
// log up to date, then tells it to campaign at once (timeoutNow). The target's vote requests
// carry transfer=true so that voters set aside leader stickiness. If the target has not taken
// over within electionTicks, the leader resumes normal operation.

import { campaign } from './candidate.js';
import { isVoter } from './config.js';
import { sendAppend } from './leader.js';
import type { RaftNode } from './node.js';
import type { NodeId, TimeoutNowMsg } from './types.js';

export type TransferResult =
  | { ok: true; to: NodeId }
  | {
      ok: false;
      code: 'HA_ERR_NOT_LEADER' | 'HA_ERR_BAD_REQUEST' | 'HA_ERR_TRANSFER_IN_PROGRESS';
      leader: NodeId | null;
    };

export function transferLeadership(r: RaftNode, to: NodeId | null): TransferResult {
  if (r.role !== 'leader') return { ok: false, code: 'HA_ERR_NOT_LEADER', leader: r.leader };
  if (r.transferee !== null) return { ok: false, code: 'HA_ERR_TRANSFER_IN_PROGRESS', leader: r.id };
  const target = to ?? mostUpToDateVoter(r);
  if (target === null || target === r.id || !isVoter(r.config, target) || !r.progress.has(target)) {
    return { ok: false, code: 'HA_ERR_BAD_REQUEST', leader: r.id };
  }
  r.transferee = target;
  r.transferElapsedTicks = 0;
  if (!maybeSendTimeoutNow(r, target)) sendAppend(r, target, true);
  return { ok: true, to: target };
}

function mostUpToDateVoter(r: RaftNode): NodeId | null {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const v of r.config.voters) {
    const pr = r.progress.get(v);
    if (v !== r.id && pr && pr.match > bestMatch) {
      best = v;
      bestMatch = pr.match;
    }
  }
  return best;
}

/** Sends timeoutNow once the transferee holds the whole log. Returns whether it was sent. */
export function maybeSendTimeoutNow(r: RaftNode, peer: NodeId): boolean {
  if (r.transferee !== peer || r.progress.get(peer)?.match !== r.log.lastIndex) return false;
  r.send({ type: 'timeoutNow', from: r.id, to: peer, term: r.term });
  r.timeoutNowSentThisTerm = true;
  return true;
}

export function handleTimeoutNow(r: RaftNode, m: TimeoutNowMsg): void {
  if (r.role !== 'follower' || m.from !== r.leader || !r.isVoter()) return;
  campaign(r, true);
}
