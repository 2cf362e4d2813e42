// What the leader knows about one follower's log (thesis §3.5, "nextIndex" and "matchIndex"),
// plus flow control:
//  - probe: the leader does not know where the logs diverge; one append at a time, each answered
//    before the next (or retried after a heartbeat response);
//  - replicate: the logs match up to `match`; appends are pipelined optimistically, `next`
//    advancing on send, with at most inflightMax unacknowledged messages;
//  - snapshot: the follower needs compacted entries; the leader sends `sending` in chunks, one
//    in flight at a time, from `snapshotOffset` (the bytes the follower confirmed holding).

import type { Index, Snapshot } from './types.js';

export interface Inflight {
  readonly lastIndex: Index;
  readonly sentTick: number;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** No acknowledgement counted: used for lease and read-index arithmetic. */
export const NO_TICK = Number.NEGATIVE_INFINITY;

export class Progress {
  match: Index = 0;
  /** Leader tick echoed by the newest acknowledgement of at least `match` (see handleAppendResp). */
  matchTick = NO_TICK;
  /** Times this follower was found to have lost entries it had acknowledged (a wiped disk). */
  lostLogs = 0;
  next: Index;
  state: ProgressState = 'probe';
  /** Probe state: an append is outstanding; further ones wait for its answer or a heartbeat. */
  probeSent = false;
  /** Replicate state: each unacknowledged append (its last index and leader send tick), oldest
   * first. */
  inflights: Inflight[] = [];
  pendingSnapshotIndex: Index = 0;
  /** Snapshot state: leader tick of the last chunk sent. */
  snapshotSentTick = 0;
  /** Snapshot state: the snapshot being sent (kept even if the leader compacts meanwhile). */
  sending: Snapshot | null = null;
  /** Snapshot state: bytes the follower confirmed; the next chunk starts here. */
  snapshotOffset = 0;
  /** Leader tick when this peer was last heard from in the current term (check-quorum). */
  lastContactTick: number;
  /** Highest leader tick echoed by this peer (lease, §6.4.1). */
  ackedTick = NO_TICK;
  /** Highest read sequence echoed by this peer (ReadIndex, §6.4). */
  ackedSeq = 0;

  constructor(next: Index, nowTicks: number) {
    this.next = next;
    this.lastContactTick = nowTicks;
  }

  becomeProbe(): void {
    this.sending = null;
    this.state = 'probe';
    this.probeSent = false;
    this.inflights = [];
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.sending = null;
    this.state = 'replicate';
    this.probeSent = false;
    this.inflights = [];
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot, nowTicks: number): void {
    this.state = 'snapshot';
    this.probeSent = false;
    this.inflights = [];
    this.pendingSnapshotIndex = snapshot.meta.index;
    this.snapshotSentTick = nowTicks;
    this.sending = snapshot;
    this.snapshotOffset = 0;
  }

  /**
   * Whether a message sent before leader tick `echoedTick` is still unanswered although a
   * response to a message sent at that tick arrived. Peers answer in order over one connection,
   * so the earlier append or snapshot was lost: without this the pipeline would stall for good.
   * (If a transport reorders, the cost of a wrong guess is one re-probe.)
   */
  lostBefore(echoedTick: number): boolean {
    if (this.state === 'snapshot') return this.snapshotSentTick < echoedTick;
    if (this.state === 'replicate')
      return this.inflights.length > 0 && this.inflights[0].sentTick < echoedTick;
    return false;
  }

  isPaused(inflightMax: number): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.length >= inflightMax;
      case 'snapshot':
        return true;
    }
  }

  /** Records an acknowledged match; returns whether it advanced. */
  updateMatch(matchIndex: Index): boolean {
    this.freeInflightsTo(matchIndex);
    if (matchIndex <= this.match) return false;
    this.match = matchIndex;
    this.next = Math.max(this.next, matchIndex + 1);
    return true;
  }

  private freeInflightsTo(index: Index): void {
    let n = 0;
    while (n < this.inflights.length && this.inflights[n].lastIndex <= index) n++;
    if (n > 0) this.inflights.splice(0, n);
  }
}
