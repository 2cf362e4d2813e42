// Ready/advance: what the runtime must persist, send, apply and answer (see the ordering contract
// on Ready in types.ts), and the marking of exactly that work as done. Work created between
// ready() and advance() stays pending for the next Ready.

import { assert } from './assert.js';
import { maybeCommit } from './leader.js';
import type { RaftNode } from './node.js';
import { flushReadRound } from './read-index.js';
import type { HardState, Ready, SoftState } from './types.js';

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader;
}

function committedLimit(r: RaftNode): number {
  return Math.min(r.commit, r.log.lastIndex);
}

export function hasReady(r: RaftNode): boolean {
  return (
    r.readRoundPending ||
    !sameHardState(r.hardState(), r.persistedHardState) ||
    r.log.lastIndex > r.persistedIndex ||
    r.pendingSnapshot !== null ||
    r.msgs.length > 0 ||
    committedLimit(r) > r.applied ||
    r.readStates.length > 0 ||
    r.readFailures.length > 0 ||
    r.proposalFailures.length > 0 ||
    !sameSoftState(r.softState(), r.reportedSoftState)
  );
}

export function makeReady(r: RaftNode): Ready {
  flushReadRound(r);
  const hardState = r.hardState();
  const softState = r.softState();
  return {
    hardState: sameHardState(hardState, r.persistedHardState) ? null : hardState,
    entries: r.log.slice(r.persistedIndex + 1, r.log.lastIndex),
    snapshot: r.pendingSnapshot,
    messages: r.msgs.slice(),
    committedEntries: r.log.slice(r.applied + 1, committedLimit(r)),
    readStates: r.readStates.slice(),
    readFailures: r.readFailures.slice(),
    proposalFailures: r.proposalFailures.slice(),
    softState: sameSoftState(softState, r.reportedSoftState) ? null : softState,
  };
}

export function advance(r: RaftNode, rd: Ready): void {
  if (rd.hardState) {
    const before = r.persistedHardState;
    assert(rd.hardState.term >= before.term, `term decreased: ${rd.hardState.term} < ${before.term}`);
    assert(
      rd.hardState.commit >= before.commit,
      `commit decreased: ${rd.hardState.commit} < ${before.commit}`,
    );
    r.persistedHardState = rd.hardState;
  }
  if (rd.snapshot !== null && r.pendingSnapshot === rd.snapshot) r.pendingSnapshot = null;
  if (rd.entries.length > 0) {
    const last = rd.entries[rd.entries.length - 1];
    // If the log was truncated after ready(), the batch no longer describes it: the truncation
    // already lowered persistedIndex and the next Ready rewrites from there. An entry with the
    // same index and term implies an identical prefix (§5.3 Log Matching).
    if (r.log.term(last.index) === last.term) r.persistedIndex = Math.max(r.persistedIndex, last.index);
  }
  if (rd.committedEntries.length > 0) {
    const last = rd.committedEntries[rd.committedEntries.length - 1].index;
    assert(last <= r.commit, `applied ${last} beyond commit ${r.commit}`);
    r.applied = Math.max(r.applied, last);
  }
  r.msgs.splice(0, rd.messages.length);
  r.readStates.splice(0, rd.readStates.length);
  r.readFailures.splice(0, rd.readFailures.length);
  r.proposalFailures.splice(0, rd.proposalFailures.length);
  if (rd.softState) r.reportedSoftState = rd.softState;
  // The leader's own write is now durable: it may complete a quorum (§3.6 with §10.2.1).
  maybeCommit(r);
}
