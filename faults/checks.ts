// What a fault run must satisfy, checked on what it recorded:
// - election safety: never two leaders in one term (thesis Figure 3.2), among the roles the
//   nodes reported;
// - fencing-token order (DESIGN.md "Fencing"): every leader reports a token of its own term, one
//   leadership has one token, and tokens order the same way as the terms of their leaderships.
//   Since a token's term is its leadership's term, that much cannot fail once the term checks
//   pass; what fencing promises is checked on the commit index the nodes report: a leadership
//   established (its no-op, the token's entry, committed) before a later one was seen has a
//   lower token index than the later one's no-op, which follows every committed entry; and once
//   a leadership is established, no lower-token leadership commits up to its token's index;
// - each node's term never decreases, across restarts too (it is durable);
// - the client history is linearizable, final reads included (so no acknowledged write is lost).
import { checkLinearizable, describeHistory } from '../sim/linearizability.js';
import type { HistoryOp } from '../sim/history.js';
import { compareFencingTokens } from '../src/raft/index.js';

export interface StatusObservation {
  /** performance.now() when the answer arrived. */
  readonly atMs: number;
  readonly nodeId: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly fencingToken: { readonly term: number; readonly index: number } | null;
  /** The node's commit index, when the observer records it (the fencing checks need it). */
  readonly commitIndex?: number;
}

export interface Violation {
  readonly check: string;
  readonly message: string;
  /** Longer evidence (a history excerpt), printed and saved but kept out of the summary. */
  readonly detail?: string;
  /** The key whose history failed, for the linearizability check. */
  readonly key?: string;
}

const tokenText = (t: { term: number; index: number }): string => `(${t.term},${t.index})`;

export function checkStatusObservations(observations: readonly StatusObservation[]): Violation[] {
  const violations: Violation[] = [];
  const leaderOfTerm = new Map<number, StatusObservation>();
  const tokenOfTerm = new Map<number, StatusObservation>();
  const lastTermOfNode = new Map<string, StatusObservation>();
  const sorted = [...observations].sort((a, b) => a.atMs - b.atMs);
  for (const o of sorted) {
    const previous = lastTermOfNode.get(o.nodeId);
    if (previous !== undefined && o.term < previous.term) {
      violations.push({
        check: 'monotonic term',
        message: `${o.nodeId} reported term ${o.term} at ${o.atMs.toFixed(0)} ms after term ${previous.term} at ${previous.atMs.toFixed(0)} ms`,
      });
    }
    lastTermOfNode.set(o.nodeId, o);
    if (o.role !== 'leader') continue;

    const other = leaderOfTerm.get(o.term);
    if (other !== undefined && other.nodeId !== o.nodeId) {
      violations.push({
        check: 'election safety',
        message: `two leaders in term ${o.term}: ${other.nodeId} (seen at ${other.atMs.toFixed(0)} ms) and ${o.nodeId} (seen at ${o.atMs.toFixed(0)} ms)`,
      });
    }
    if (other === undefined) leaderOfTerm.set(o.term, o);

    const token = o.fencingToken;
    if (token === null) {
      violations.push({
        check: 'fencing token order',
        message: `${o.nodeId} leads term ${o.term} without a fencing token (at ${o.atMs.toFixed(0)} ms)`,
      });
      continue;
    }
    if (token.term !== o.term) {
      violations.push({
        check: 'fencing token order',
        message: `${o.nodeId} leads term ${o.term} with token ${tokenText(token)} of another term`,
      });
    }
    const sameTerm = tokenOfTerm.get(o.term);
    if (sameTerm !== undefined) {
      if (compareFencingTokens(sameTerm.fencingToken!, token) !== 0) {
        violations.push({
          check: 'fencing token order',
          message: `term ${o.term} has two tokens: ${tokenText(sameTerm.fencingToken!)} from ${sameTerm.nodeId} and ${tokenText(token)} from ${o.nodeId}`,
        });
      }
      continue;
    }
    tokenOfTerm.set(o.term, o);
  }
  violations.push(...checkFencingByCommit(sorted));
  // Tokens of later leaderships must be strictly greater.
  const byTerm = [...tokenOfTerm.entries()].sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < byTerm.length; i++) {
    const [term0, o0] = byTerm[i - 1];
    const [term1, o1] = byTerm[i];
    if (compareFencingTokens(o0.fencingToken!, o1.fencingToken!) >= 0) {
      violations.push({
        check: 'fencing token order',
        message: `token ${tokenText(o1.fencingToken!)} of ${o1.nodeId} in term ${term1} does not exceed ${tokenText(o0.fencingToken!)} of ${o0.nodeId} in term ${term0}`,
      });
    }
  }
  return violations;
}

/** The fencing promises that the commit index shows (observations in time order). */
function checkFencingByCommit(sorted: readonly StatusObservation[]): Violation[] {
  const violations: Violation[] = [];
  const firstSeen = new Map<number, StatusObservation>();
  /** Leaderships whose no-op was seen committed, in the order that was seen. */
  const established: StatusObservation[] = [];
  const establishedTerms = new Set<number>();
  for (const o of sorted) {
    const token = o.fencingToken;
    if (o.role !== 'leader' || token === null || token.term !== o.term || o.commitIndex === undefined)
      continue;
    if (!firstSeen.has(o.term)) {
      firstSeen.set(o.term, o);
      for (const e of established) {
        if (e.term < o.term && e.fencingToken!.index >= token.index) {
          violations.push({
            check: 'fencing token order',
            message: `${o.nodeId} leads term ${o.term} with token ${tokenText(token)}, not past ${tokenText(e.fencingToken!)} of term ${e.term}, committed before (at ${e.atMs.toFixed(0)} ms)`,
          });
        }
      }
    }
    for (const e of established) {
      if (e.term > o.term && o.commitIndex >= e.fencingToken!.index) {
        violations.push({
          check: 'fencing token order',
          message: `${o.nodeId} (token ${tokenText(token)}) reached commit ${o.commitIndex} at ${o.atMs.toFixed(0)} ms, after ${e.nodeId}'s leadership ${tokenText(e.fencingToken!)} was established`,
        });
      }
    }
    if (!establishedTerms.has(o.term) && o.commitIndex >= token.index) {
      establishedTerms.add(o.term);
      established.push(o);
    }
  }
  return violations;
}

/** Leaderships seen, in term order: "term 3 node-2 (3,17)". */
export function describeLeaderships(observations: readonly StatusObservation[]): string[] {
  const byTerm = new Map<number, StatusObservation>();
  for (const o of observations) if (o.role === 'leader' && !byTerm.has(o.term)) byTerm.set(o.term, o);
  return [...byTerm.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([term, o]) => `term ${term} ${o.nodeId} ${o.fencingToken ? tokenText(o.fencingToken) : '-'}`);
}

/**
 * The linearizability check. An inconclusive search counts as a violation: the run cannot claim
 * the history is linearizable, and raising the search budget is a decision for a person.
 */
export function checkHistory(history: readonly HistoryOp[]): Violation[] {
  const result = checkLinearizable(history);
  if (result.ok === true) return [];
  if (result.ok === 'unknown') {
    return [{ check: 'linearizability (inconclusive)', message: result.message, key: result.key }];
  }
  return [
    {
      check: 'linearizability',
      message: result.message,
      key: result.key,
      detail: describeHistory(result.ops),
    },
  ];
}
