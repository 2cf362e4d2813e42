// Linearizability checker for KV client histories: is there one order of the operations, each
// placed between its invocation and its return, that the sequential KV model explains
// (Herlihy & Wing 1990)? The simulator checks every run's history with it; the fault tests check
// histories recorded against real processes.
//
// A KV store is linearizable iff each key is (linearizability is a local property, Herlihy & Wing 1990), so
// the history is split per key and each key searched alone: the search is exponential in the
// concurrency of one history, and splitting keeps each search small.
import type { HistoryOp, KvOp, KvOutput } from './history.js';
import { searchKeyLinearization, type KeySearchOutcome } from './linearizability-search.js';

export interface CheckOptions {
  /** Bound on search work per key, in attempts to linearize an op; exceeding it → 'unknown'. */
  readonly stepsMax?: number;
}

export type CheckResult =
  | { readonly ok: true; readonly keys: number; readonly ops: number }
  | {
      readonly ok: false;
      readonly key: string;
      readonly message: string;
      /** A minimal failing prefix of the key's ops: those invoked by the time the culprit returned. */
      readonly ops: readonly HistoryOp[];
    }
  | { readonly ok: 'unknown'; readonly key: string; readonly message: string };

/**
 * A step is one attempt to linearize an op: tens of nanoseconds, and about one visited-set entry
 * per ten steps. This default bounds one key's search to roughly half a second and 100 MB; a
 * valid history of a few hundred ops with dozens of indeterminate ones needs a tiny fraction of
 * it, and refuting a bad one (which must exhaust the search) fits it at up to ~20 concurrent
 * clients per key.
 */
export const CHECK_STEPS_PER_KEY_MAX_DEFAULT = 10_000_000;

export function checkLinearizable(history: readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const stepsMax = options.stepsMax ?? CHECK_STEPS_PER_KEY_MAX_DEFAULT;
  if (!(stepsMax > 0)) throw new Error(`linearizability: stepsMax must be positive, got ${stepsMax}`);
  validateHistory(history);
  const opsByKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    let keyOps = opsByKey.get(op.key);
    if (keyOps === undefined) opsByKey.set(op.key, (keyOps = []));
    keyOps.push(op);
  }
  // Keep looking past a key that ran out of budget: a definite violation elsewhere says more.
  let unknown: CheckResult | null = null;
  for (const [key, keyOps] of opsByKey) {
    const { outcome } = searchKeyLinearization(keyOps, stepsMax);
    if (outcome === 'violation') return explainViolation(key, keyOps, stepsMax);
    if (outcome === 'unknown' && unknown === null) {
      unknown = {
        ok: 'unknown',
        key,
        message: `key ${JSON.stringify(key)}: search gave up after stepsMax ${stepsMax} steps over ${keyOps.length} ops`,
      };
    }
  }
  return unknown ?? { ok: true, keys: opsByKey.size, ops: history.length };
}

/**
 * Narrows a violation to the earliest return that no order can explain. Cut the history at a
 * return time t: ops invoked by t stay, and those not yet returned by t become indeterminate.
 * Every cut of a linearizable history is linearizable, so failure is monotone in t and a binary
 * search over the return times finds the first failing cut.
 */
function explainViolation(key: string, keyOps: readonly HistoryOp[], stepsMax: number): CheckResult {
  const returnTimesMs = [
    ...new Set(keyOps.flatMap((op) => (op.returnMs === null ? [] : [op.returnMs]))),
  ].sort((a, b) => a - b);
  const cutOutcome = (cutMs: number): KeySearchOutcome =>
    searchKeyLinearization(cutHistory(keyOps, cutMs), stepsMax).outcome;
  // Invariant: the cut at returnTimesMs[high] fails (the whole history is the cut at the last one).
  let low = 0;
  let high = returnTimesMs.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    // A cut that runs out of budget counts as passing: the reported prefix stays a proven failure.
    if (cutOutcome(returnTimesMs[middle]) === 'violation') high = middle;
    else low = middle + 1;
  }
  const failingCutMs = returnTimesMs[high];
  // Giving these ops their real outputs only adds constraints, so this prefix fails too.
  const prefix = keyOps.filter((op) => op.invokeMs <= failingCutMs);
  const culprits = prefix.filter((op) => op.returnMs === failingCutMs);
  const concurrent = prefix.filter((op) => op.returnMs === null || op.returnMs > failingCutMs).length;
  const message =
    `key ${JSON.stringify(key)} is not linearizable: no order of the ${prefix.length} ops invoked by ` +
    `${failingCutMs} ms (${concurrent} still pending then) explains ` +
    culprits
      .map((op) => `#${op.id} ${describeRequest(op.op)} => ${describeOutput(op.output)}`)
      .join(' and ') +
    ` returned at ${failingCutMs} ms`;
  return { ok: false, key, message, ops: prefix };
}

function cutHistory(keyOps: readonly HistoryOp[], cutMs: number): HistoryOp[] {
  const cut: HistoryOp[] = [];
  for (const op of keyOps) {
    if (op.invokeMs > cutMs) continue;
    cut.push(op.returnMs !== null && op.returnMs <= cutMs ? op : { ...op, returnMs: null, output: null });
  }
  return cut;
}

/** A malformed history is a bug in the recorder, not a property of the system under test. */
function validateHistory(history: readonly HistoryOp[]): void {
  const ids = new Set<number>();
  for (const op of history) {
    const where = `linearizability: history op #${op.id}`;
    if (ids.has(op.id)) throw new Error(`${where}: duplicate id`);
    ids.add(op.id);
    if (!Number.isFinite(op.invokeMs)) throw new Error(`${where}: invokeMs is not a finite number`);
    if ((op.returnMs === null) !== (op.output === null)) {
      throw new Error(`${where}: output must be null exactly when returnMs is null`);
    }
    if (op.returnMs !== null && !(op.returnMs >= op.invokeMs)) {
      throw new Error(`${where}: returnMs ${op.returnMs} precedes invokeMs ${op.invokeMs}`);
    }
    if (op.output !== null && op.output.kind !== op.op.kind) {
      throw new Error(`${where}: a ${op.op.kind} has a ${op.output.kind} output`);
    }
  }
}

/** A timeline of `ops`, one line per op in invocation order, for failure reports. */
export function describeHistory(ops: readonly HistoryOp[]): string {
  const sorted = [...ops].sort((a, b) => a.invokeMs - b.invokeMs || a.id - b.id);
  const keys = new Set(sorted.map((op) => op.key));
  const timeWidth = Math.max(1, ...sorted.map((op) => String(op.returnMs ?? op.invokeMs).length));
  const idWidth = Math.max(1, ...sorted.map((op) => String(op.id).length));
  return sorted
    .map((op) => {
      const returned =
        op.returnMs === null ? '?'.padStart(timeWidth) : String(op.returnMs).padStart(timeWidth);
      const keyColumn = keys.size > 1 ? ` key ${JSON.stringify(op.key)}` : '';
      return (
        `#${String(op.id).padEnd(idWidth)} client ${op.clientId}${keyColumn} ` +
        `[${String(op.invokeMs).padStart(timeWidth)} .. ${returned} ms] ` +
        `${describeRequest(op.op)} => ${describeOutput(op.output)}`
      );
    })
    .join('\n');
}

function describeRequest(op: KvOp): string {
  const condition = op.kind !== 'get' && op.ifVersion !== undefined ? ` ifVersion=${op.ifVersion}` : '';
  return op.kind === 'put' ? `put ${JSON.stringify(op.value)}${condition}` : `${op.kind}${condition}`;
}

function describeOutput(output: KvOutput | null): string {
  if (output === null) return 'indeterminate (may or may not have taken effect)';
  switch (output.kind) {
    case 'get':
      return output.found ? `found ${JSON.stringify(output.value)} version ${output.version}` : 'not found';
    case 'put':
      return output.ok
        ? `ok version ${output.version}`
        : `compare failed, currentVersion ${output.currentVersion}`;
    case 'delete':
      if (output.ok) return 'ok';
      return output.reason === 'notFound' ? 'notFound' : `mismatch, currentVersion ${output.currentVersion}`;
  }
}
