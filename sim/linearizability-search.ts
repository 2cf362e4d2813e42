// Wing & Gong's search for a linearization of one key's history, with Lowe's memo of visited
// configurations (Lowe 2017, "Testing for linearizability"), run iteratively on an explicit stack.
//
// The history becomes a list of call and return events in time order. The search walks the list:
// at a call it tries to linearize that op now (apply it to the model, check its output); at a
// return it has met an op that must already have taken effect, so the last choice was wrong and
// it backtracks. A linearized op's events are unlinked from the list (and relinked on backtrack,
// in reverse order, so the list needs no copying).
//
// An indeterminate op has no return event: it may take effect at any point after its call, or
// never. Reaching the end of the list therefore means every determinate op has been linearized
// and the rest may be left out: success.
//
// Reductions that keep the search from exploring orders that cannot matter:
// - An op whose definite output matches the current state and that leaves the state unchanged
//   (a get, a refused compare-and-set, a delete of nothing) is linearized at once and never
//   postponed: any linearization that places it later, where the state must be this same one,
//   can move it here. So when its branch fails, the branch that reached it fails too.
// - Indeterminate ops with indistinguishable effects (KeyModel.symmetryClass) are applied only in
//   invocation order: if a linearization uses some of them, it can use the earliest-invoked ones
//   in the same places instead, because each of those was invoked no later. This turns the 2^k
//   subsets of k lost writes into k + 1 prefixes.
// - At each point the determinate calls are tried before the indeterminate ones, so the branches
//   that use fewer indeterminate ops fail first and then cover the others (VisitedSet).
// - An unconditional indeterminate op is not applied where a pending determinate op would make
//   the same change: a lost write must not stand in for an acknowledged one. Any linearization
//   that applies the indeterminate op here and the determinate one later can swap them — the
//   determinate op's output pins the state it runs in to an equivalent one, where the
//   unconditional op makes the same change — and the determinate branch was tried first.
import type { HistoryOp } from './history.js';
import { KeyModel, STATE_ABSENT, STEP_INVALID, STEP_NO_EFFECT } from './linearizability-model.js';
import { opHashKey, VISITED_ALREADY, VisitedSet } from './linearizability-visited.js';

export type KeySearchOutcome = 'linearizable' | 'violation' | 'unknown';

export interface KeySearchResult {
  readonly outcome: KeySearchOutcome;
  /** Attempts to linearize an op: the unit of stepsMax. */
  readonly steps: number;
}

const LIST_END = -1;
const HEAD = 0;
const NONE = -1;

// The scan over the calls before the first pending return runs twice: determinate calls first.
const PHASE_DETERMINATE = 0;
const PHASE_INDETERMINATE = 1;

/**
 * Searches for a linearization of `ops`, all on one key, giving up with 'unknown' after
 * `stepsMax` attempts to linearize an op.
 */
export function searchKeyLinearization(ops: readonly HistoryOp[], stepsMax: number): KeySearchResult {
  // Determinate ops take the low op indices, so the bitset splits into a determinate part, which
  // the visited set matches exactly, and an indeterminate part, which it compares as a set. An
  // indeterminate get changes nothing and its output is unknown: it can constrain nothing.
  const determinate = ops.filter((op) => op.output !== null);
  const indeterminate = ops.filter((op) => op.output === null && op.op.kind !== 'get');
  const relevant = [...determinate, ...indeterminate];
  const determinateCount = determinate.length;
  const opCount = relevant.length;
  if (opCount === 0) return { outcome: 'linearizable', steps: 0 };
  const model = new KeyModel(relevant);

  // Events are numbered from 1; 0 is the list head. Equal times put calls before returns, so ops
  // that touch at one instant count as concurrent: millisecond clocks cannot order them.
  const events: { timeMs: number; opIndex: number; isCall: boolean }[] = [];
  relevant.forEach((op, opIndex) => {
    events.push({ timeMs: op.invokeMs, opIndex, isCall: true });
    if (op.returnMs !== null) events.push({ timeMs: op.returnMs, opIndex, isCall: false });
  });
  events.sort((a, b) => a.timeMs - b.timeMs || Number(b.isCall) - Number(a.isCall) || a.opIndex - b.opIndex);
  const eventCount = events.length;
  const eventOp = new Int32Array(eventCount + 1);
  const eventIsCall = new Uint8Array(eventCount + 1);
  const next = new Int32Array(eventCount + 1);
  const prev = new Int32Array(eventCount + 1);
  const returnEvent = new Int32Array(opCount).fill(LIST_END);
  for (let e = 1; e <= eventCount; e++) {
    const event = events[e - 1];
    eventOp[e] = event.opIndex;
    eventIsCall[e] = event.isCall ? 1 : 0;
    if (!event.isCall) returnEvent[event.opIndex] = e;
    prev[e] = e - 1;
    next[e - 1] = e;
  }
  next[eventCount] = LIST_END;

  const unlink = (e: number): void => {
    next[prev[e]] = next[e];
    if (next[e] !== LIST_END) prev[next[e]] = prev[e];
  };
  const relink = (e: number): void => {
    next[prev[e]] = e;
    if (next[e] !== LIST_END) prev[next[e]] = e;
  };

  // The op of the same symmetry class invoked just before, which must be linearized first.
  const classPredecessor = new Int32Array(opCount).fill(NONE);
  const classLatest = new Map<string, number>();
  for (let e = 1; e <= eventCount; e++) {
    if (eventIsCall[e] === 0) continue;
    const symmetryClass = model.symmetryClass(eventOp[e]);
    if (symmetryClass === null) continue;
    classPredecessor[eventOp[e]] = classLatest.get(symmetryClass) ?? NONE;
    classLatest.set(symmetryClass, eventOp[e]);
  }

  // Bit i of the bitset is op i for determinate ops; indeterminate ops start at a word boundary.
  const determinateWords = (determinateCount + 31) >>> 5;
  const indeterminateWords = (opCount - determinateCount + 31) >>> 5;
  const bitOf = (opIndex: number): number =>
    opIndex < determinateCount ? opIndex : (determinateWords << 5) + opIndex - determinateCount;
  const linearized = new Int32Array(determinateWords + indeterminateWords);
  const isLinearized = (opIndex: number): boolean => {
    const bit = bitOf(opIndex);
    return (linearized[bit >>> 5] & (1 << (bit & 31))) !== 0;
  };
  const toggle = (opIndex: number): void => {
    const bit = bitOf(opIndex);
    linearized[bit >>> 5] ^= 1 << (bit & 31);
    if (opIndex < determinateCount) determinateHash ^= hashKeys[opIndex];
  };
  let determinateHash = 0;
  const hashKeys = new Int32Array(determinateCount);
  for (let i = 0; i < determinateCount; i++) hashKeys[i] = opHashKey(i);
  const visited = new VisitedSet(determinateWords, indeterminateWords);

  // Each op is on the stack at most once, so opCount bounds its depth.
  const stackCallEvent = new Int32Array(opCount);
  const stackStateId = new Int32Array(opCount);
  const stackVisitedEntry = new Int32Array(opCount);
  const stackPhase = new Uint8Array(opCount);
  const stackForced = new Uint8Array(opCount);
  let stackDepth = 0;

  let stateId = STATE_ABSENT;
  /** Some determinate call before the first pending return would move stateId to `target`. */
  const determinateCallMakes = (target: number): boolean => {
    for (let e = next[HEAD]; e !== LIST_END && eventIsCall[e] === 1; e = next[e]) {
      if (eventOp[e] < determinateCount && model.step(stateId, eventOp[e]) === target) return true;
    }
    return false;
  };
  let steps = 0;
  let phase = PHASE_DETERMINATE;
  let entry = next[HEAD];
  for (;;) {
    let deadEnd = false;
    if (entry === LIST_END) {
      // No return is pending: every determinate op is linearized.
      if (phase === PHASE_DETERMINATE) return { outcome: 'linearizable', steps };
      throw new Error('linearizability: the indeterminate scan passed the last pending return');
    } else if (eventIsCall[entry] === 0) {
      // The first pending return: this op should have been linearized before now.
      if (phase === PHASE_DETERMINATE) {
        phase = PHASE_INDETERMINATE;
        entry = next[HEAD];
        continue;
      }
      deadEnd = true;
    } else {
      const opIndex = eventOp[entry];
      if (opIndex < determinateCount !== (phase === PHASE_DETERMINATE)) {
        entry = next[entry];
        continue;
      }
      if (++steps > stepsMax) return { outcome: 'unknown', steps };
      const predecessor = classPredecessor[opIndex];
      let nextStateId =
        predecessor !== NONE && !isLinearized(predecessor) ? STEP_NO_EFFECT : model.step(stateId, opIndex);
      if (nextStateId >= 0 && phase === PHASE_INDETERMINATE && model.isUnconditional(opIndex)) {
        if (determinateCallMakes(nextStateId)) nextStateId = STEP_NO_EFFECT;
      }
      if (nextStateId !== STEP_INVALID && nextStateId !== STEP_NO_EFFECT) {
        const forced = nextStateId === stateId;
        toggle(opIndex);
        const visitedEntry = visited.add(linearized, determinateHash, nextStateId);
        if (visitedEntry !== VISITED_ALREADY) {
          stackCallEvent[stackDepth] = entry;
          stackStateId[stackDepth] = stateId;
          stackVisitedEntry[stackDepth] = visitedEntry;
          stackPhase[stackDepth] = phase;
          stackForced[stackDepth] = forced ? 1 : 0;
          stackDepth++;
          stateId = nextStateId;
          unlink(entry);
          if (returnEvent[opIndex] !== LIST_END) unlink(returnEvent[opIndex]);
          phase = PHASE_DETERMINATE;
          entry = next[HEAD];
          continue;
        }
        toggle(opIndex);
        // The forced successor of this configuration already failed, so this one fails too.
        deadEnd = forced;
      }
      if (!deadEnd) {
        entry = next[entry];
        continue;
      }
    }
    // Undo the latest choice and try the call after it instead. A forced op was no choice, so
    // undo past it.
    let undoneCall: number;
    do {
      if (stackDepth === 0) return { outcome: 'violation', steps };
      stackDepth--;
      visited.markFailed(stackVisitedEntry[stackDepth]);
      undoneCall = stackCallEvent[stackDepth];
      const undoneOp = eventOp[undoneCall];
      stateId = stackStateId[stackDepth];
      toggle(undoneOp);
      if (returnEvent[undoneOp] !== LIST_END) relink(returnEvent[undoneOp]);
      relink(undoneCall);
    } while (stackForced[stackDepth] === 1);
    phase = stackPhase[stackDepth];
    entry = next[undoneCall];
  }
}
