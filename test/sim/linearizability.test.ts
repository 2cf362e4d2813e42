import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import type { HistoryOp, KvOp, KvOutput } from '../../sim/history.js';
import { checkLinearizable, describeHistory } from '../../sim/linearizability.js';

// --- hand-written histories -------------------------------------------------------------------

class HistoryBuilder {
  readonly ops: HistoryOp[] = [];

  add(
    clientId: number,
    key: string,
    op: KvOp,
    invokeMs: number,
    returnMs: number | null,
    output: KvOutput | null,
  ): this {
    this.ops.push({ id: this.ops.length + 1, clientId, key, op, invokeMs, returnMs, output });
    return this;
  }

  put(
    clientId: number,
    key: string,
    value: string,
    [invokeMs, returnMs]: [number, number],
    version: number,
  ): this {
    return this.add(clientId, key, { kind: 'put', value }, invokeMs, returnMs, {
      kind: 'put',
      ok: true,
      version,
    });
  }

  putLost(clientId: number, key: string, value: string, invokeMs: number): this {
    return this.add(clientId, key, { kind: 'put', value }, invokeMs, null, null);
  }

  read(
    clientId: number,
    key: string,
    [invokeMs, returnMs]: [number, number],
    seen: [string, number] | null,
  ): this {
    const output: KvOutput =
      seen === null
        ? { kind: 'get', found: false }
        : { kind: 'get', found: true, value: seen[0], version: seen[1] };
    return this.add(clientId, key, { kind: 'get' }, invokeMs, returnMs, output);
  }
}

function assertAccepted(ops: readonly HistoryOp[]): void {
  const result = checkLinearizable(ops);
  assert.equal(result.ok, true, `expected linearizable:\n${describeHistory(ops)}\n${JSON.stringify(result)}`);
}

function assertRejected(
  ops: readonly HistoryOp[],
): Extract<ReturnType<typeof checkLinearizable>, { ok: false }> {
  const result = checkLinearizable(ops);
  assert.equal(result.ok, false, `expected a violation:\n${describeHistory(ops)}`);
  if (result.ok !== false) throw new Error('unreachable');
  return result;
}

test('a sequential history that follows the model is linearizable', () => {
  const h = new HistoryBuilder()
    .read(1, 'k', [0, 1], null)
    .put(1, 'k', 'a', [2, 3], 1)
    .read(1, 'k', [4, 5], ['a', 1])
    .put(1, 'k', 'b', [6, 7], 2)
    .add(1, 'k', { kind: 'put', value: 'c', ifVersion: 2 }, 8, 9, { kind: 'put', ok: true, version: 3 })
    .add(1, 'k', { kind: 'delete', ifVersion: 3 }, 10, 11, { kind: 'delete', ok: true })
    .read(1, 'k', [12, 13], null);
  assert.deepEqual(checkLinearizable(h.ops), { ok: true, keys: 1, ops: 7 });
});

test('overlapping puts are linearizable in either order', () => {
  for (const [versionA, versionB] of [
    [1, 2],
    [2, 1],
  ]) {
    const h = new HistoryBuilder()
      .put(1, 'k', 'a', [0, 10], versionA)
      .put(2, 'k', 'b', [5, 15], versionB)
      .read(3, 'k', [20, 21], versionA > versionB ? ['a', 2] : ['b', 2]);
    assertAccepted(h.ops);
  }
});

test('a read that starts after a put completed and returns the older value is rejected', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 30], 2)
    .read(2, 'k', [40, 50], ['v1', 1]);
  const result = assertRejected(h.ops);
  assert.equal(result.key, 'k');
  assert.match(result.message, /#3 get => found "v1" version 1 returned at 50 ms/);
});

test('reads that go back in time are rejected even while the write overlaps both', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 100], 2)
    .read(2, 'k', [30, 40], ['v2', 2])
    .read(3, 'k', [50, 60], ['v1', 1]);
  assertRejected(h.ops);
});

test('an acknowledged write that a later read does not see is rejected as lost', () => {
  const lostUpdate = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 30], 2)
    .read(2, 'k', [40, 50], ['v1', 1])
    .read(2, 'k', [60, 70], ['v1', 1]);
  assertRejected(lostUpdate.ops);
  const lostCreate = new HistoryBuilder().put(1, 'k', 'v1', [0, 10], 1).read(2, 'k', [20, 30], null);
  assertRejected(lostCreate.ops);
});

test('a compare-and-set whose reported version contradicts the state is rejected', () => {
  const wronglyRefused = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .add(2, 'k', { kind: 'put', value: 'v2', ifVersion: 1 }, 20, 30, {
      kind: 'put',
      ok: false,
      currentVersion: 1,
    });
  assertRejected(wronglyRefused.ops);
  const wrongCurrentVersion = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .add(2, 'k', { kind: 'put', value: 'v2', ifVersion: 5 }, 20, 30, {
      kind: 'put',
      ok: false,
      currentVersion: 3,
    });
  assertRejected(wrongCurrentVersion.ops);
  const wronglyAccepted = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .add(2, 'k', { kind: 'put', value: 'v2', ifVersion: 7 }, 20, 30, { kind: 'put', ok: true, version: 2 });
  assertRejected(wronglyAccepted.ops);
});

test('a failed compare-and-set is linearized too: observing a superseded version is rejected', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 30], 2)
    .add(2, 'k', { kind: 'put', value: 'x', ifVersion: 9 }, 40, 50, {
      kind: 'put',
      ok: false,
      currentVersion: 1,
    });
  assertRejected(h.ops);
  const concurrent = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 60], 2)
    .add(2, 'k', { kind: 'put', value: 'x', ifVersion: 9 }, 40, 50, {
      kind: 'put',
      ok: false,
      currentVersion: 1,
    });
  assertAccepted(concurrent.ops);
});

test('an indeterminate put that a later read observes is linearizable', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'a', [0, 10], 1)
    .putLost(2, 'k', 'b', 20)
    .read(3, 'k', [100, 110], ['a', 1])
    .read(3, 'k', [120, 130], ['b', 2])
    .put(3, 'k', 'c', [140, 150], 3);
  assertAccepted(h.ops);
});

test('an indeterminate put that never takes effect is linearizable', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'a', [0, 10], 1)
    .putLost(2, 'k', 'b', 20)
    .read(3, 'k', [100, 110], ['a', 1])
    .put(3, 'k', 'c', [120, 130], 2)
    .read(3, 'k', [140, 150], ['c', 2]);
  assertAccepted(h.ops);
});

test('lost puts may all take effect, in any order, but no more of them than exist', () => {
  const lost = (): HistoryBuilder =>
    new HistoryBuilder().putLost(1, 'k', 'a', 0).putLost(2, 'k', 'b', 1).putLost(3, 'k', 'c', 2);
  // The first-invoked lost put took effect last.
  assertAccepted(lost().read(4, 'k', [100, 110], ['a', 3]).put(4, 'k', 'd', [120, 130], 4).ops);
  assertAccepted(lost().read(4, 'k', [100, 110], ['c', 2]).ops);
  assertRejected(lost().read(4, 'k', [100, 110], ['a', 4]).ops);
  assertRejected(lost().put(4, 'k', 'd', [100, 110], 5).ops);
});

test('a lost put fills exactly the version gap it can explain between acknowledged puts', () => {
  const withGap = (versionA: number, versionB: number, seenVersion: number): HistoryOp[] =>
    new HistoryBuilder()
      .putLost(1, 'k', 'lost', 0)
      .put(2, 'k', 'a', [5, 50], versionA)
      .put(3, 'k', 'b', [10, 50], versionB)
      .read(4, 'k', [60, 70], ['b', seenVersion]).ops;
  assertAccepted(withGap(1, 2, 2)); // never took effect
  assertAccepted(withGap(1, 3, 3)); // between a and b
  assertAccepted(withGap(2, 3, 3)); // before a
  assertRejected(withGap(1, 2, 3)); // b wrote version 2, so nothing can show it as version 3
  assertRejected(withGap(1, 4, 4)); // one lost put cannot fill two versions
});

test('an indeterminate put cannot take effect before it was invoked', () => {
  const h = new HistoryBuilder().read(1, 'k', [0, 10], ['b', 1]).putLost(2, 'k', 'b', 20);
  assertRejected(h.ops);
});

test('a read of a value nobody wrote is rejected', () => {
  const h = new HistoryBuilder().put(1, 'k', 'a', [0, 10], 1).read(2, 'k', [5, 15], ['ghost', 1]);
  assertRejected(h.ops);
});

test('delete removes the key, reports notFound when absent and resets the version', () => {
  const valid = new HistoryBuilder()
    .add(1, 'k', { kind: 'delete' }, 0, 1, { kind: 'delete', ok: false, reason: 'notFound' })
    .add(1, 'k', { kind: 'delete', ifVersion: 4 }, 2, 3, {
      kind: 'delete',
      ok: false,
      reason: 'mismatch',
      currentVersion: 0,
    })
    .put(1, 'k', 'a', [4, 5], 1)
    .put(1, 'k', 'b', [6, 7], 2)
    .add(1, 'k', { kind: 'delete', ifVersion: 1 }, 8, 9, {
      kind: 'delete',
      ok: false,
      reason: 'mismatch',
      currentVersion: 2,
    })
    .add(1, 'k', { kind: 'delete' }, 10, 11, { kind: 'delete', ok: true })
    .read(1, 'k', [12, 13], null)
    .put(1, 'k', 'c', [14, 15], 1);
  assertAccepted(valid.ops);

  const deleteAbsentOk = new HistoryBuilder().add(1, 'k', { kind: 'delete' }, 0, 1, {
    kind: 'delete',
    ok: true,
  });
  assertRejected(deleteAbsentOk.ops);
  const notFoundWhilePresent = new HistoryBuilder()
    .put(1, 'k', 'a', [0, 1], 1)
    .add(1, 'k', { kind: 'delete' }, 2, 3, { kind: 'delete', ok: false, reason: 'notFound' });
  assertRejected(notFoundWhilePresent.ops);
  const versionSurvivesDelete = new HistoryBuilder()
    .put(1, 'k', 'a', [0, 1], 1)
    .add(1, 'k', { kind: 'delete' }, 2, 3, { kind: 'delete', ok: true })
    .put(1, 'k', 'b', [4, 5], 2);
  assertRejected(versionSurvivesDelete.ops);
});

test('two create-if-absent puts (ifVersion 0) on one key cannot both succeed', () => {
  const create = (value: string, invokeMs: number, returnMs: number, clientId: number, h: HistoryBuilder) =>
    h.add(clientId, 'k', { kind: 'put', value, ifVersion: 0 }, invokeMs, returnMs, {
      kind: 'put',
      ok: true,
      version: 1,
    });
  assertRejected(create('b', 20, 30, 2, create('a', 0, 10, 1, new HistoryBuilder())).ops);
  assertRejected(create('b', 5, 15, 2, create('a', 0, 10, 1, new HistoryBuilder())).ops);
});

test('keys are checked independently and a violation names only its own key', () => {
  const valid = new HistoryBuilder()
    .put(1, 'a', 'a1', [0, 10], 1)
    .put(2, 'b', 'b1', [5, 15], 1)
    .put(1, 'a', 'a2', [20, 30], 2)
    .read(2, 'b', [25, 35], ['b1', 1])
    .read(3, 'a', [40, 50], ['a2', 2]);
  assert.deepEqual(checkLinearizable(valid.ops), { ok: true, keys: 2, ops: 5 });

  const invalid = new HistoryBuilder()
    .put(1, 'a', 'a1', [0, 10], 1)
    .put(2, 'b', 'b1', [5, 15], 1)
    .put(2, 'b', 'b2', [20, 30], 2)
    .read(3, 'a', [40, 50], ['a1', 1])
    .read(3, 'b', [40, 50], ['b1', 1]);
  const result = assertRejected(invalid.ops);
  assert.equal(result.key, 'b');
  assert.ok(result.ops.every((op) => op.key === 'b'));
});

test('a violation is reported with the minimal failing prefix, not the ops after it', () => {
  const h = new HistoryBuilder()
    .put(1, 'k', 'v1', [0, 10], 1)
    .put(1, 'k', 'v2', [20, 30], 2)
    .read(2, 'k', [40, 50], ['v1', 1])
    .put(1, 'k', 'v3', [60, 70], 3)
    .read(2, 'k', [80, 90], ['v3', 3]);
  const result = assertRejected(h.ops);
  assert.deepEqual(
    result.ops.map((op) => op.id),
    [1, 2, 3],
  );
});

test('a search that exceeds stepsMax reports unknown rather than a verdict', () => {
  const h = new HistoryBuilder();
  for (let i = 0; i < 12; i++) h.putLost(i, 'k', `v${i}`, i);
  h.read(99, 'k', [100, 110], ['v0', 12]);
  const result = checkLinearizable(h.ops, { stepsMax: 50 });
  assert.equal(result.ok, 'unknown');
  assert.equal(result.ok === 'unknown' && result.key, 'k');
});

test('a malformed history is refused as a recorder bug', () => {
  const h = new HistoryBuilder().add(1, 'k', { kind: 'get' }, 0, 10, null);
  assert.throws(() => checkLinearizable(h.ops), /output must be null exactly when returnMs is null/);
  const backwards = new HistoryBuilder().put(1, 'k', 'a', [10, 5], 1);
  assert.throws(() => checkLinearizable(backwards.ops), /precedes invokeMs/);
});

test('describeHistory prints one line per op in invocation order and marks indeterminate ones', () => {
  const h = new HistoryBuilder().put(1, 'k', 'a', [5, 10], 1).putLost(2, 'k', 'b', 0);
  assert.equal(
    describeHistory(h.ops),
    [
      '#2 client 2 [ 0 ..  ? ms] put "b" => indeterminate (may or may not have taken effect)',
      '#1 client 1 [ 5 .. 10 ms] put "a" => ok version 1',
    ].join('\n'),
  );
});

// --- randomised histories ---------------------------------------------------------------------

/** mulberry32: a small seeded PRNG so every run generates the same histories. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type KeyState = { value: string; version: number } | undefined;

/** The reference model, written independently of the checker's compiled one. */
function applyToModel(state: KeyState, op: KvOp): { next: KeyState; output: KvOutput } {
  const currentVersion = state?.version ?? 0;
  switch (op.kind) {
    case 'get':
      return {
        next: state,
        output: state ? { kind: 'get', found: true, ...state } : { kind: 'get', found: false },
      };
    case 'put':
      if (op.ifVersion !== undefined && op.ifVersion !== currentVersion) {
        return { next: state, output: { kind: 'put', ok: false, currentVersion } };
      }
      return {
        next: { value: op.value, version: currentVersion + 1 },
        output: { kind: 'put', ok: true, version: currentVersion + 1 },
      };
    case 'delete':
      if (op.ifVersion !== undefined && op.ifVersion !== 0 && op.ifVersion !== currentVersion) {
        return { next: state, output: { kind: 'delete', ok: false, reason: 'mismatch', currentVersion } };
      }
      if (state === undefined)
        return { next: state, output: { kind: 'delete', ok: false, reason: 'notFound' } };
      if (op.ifVersion !== undefined && op.ifVersion !== currentVersion) {
        return { next: state, output: { kind: 'delete', ok: false, reason: 'mismatch', currentVersion } };
      }
      return { next: undefined, output: { kind: 'delete', ok: true } };
  }
}

interface GeneratedStep {
  readonly op: HistoryOp;
  /** The op took effect in the sequential execution and changed the state. */
  readonly changedState: boolean;
}

interface GenerateOptions {
  readonly opCount: number;
  readonly keys: number;
  readonly indeterminateRate: number;
  /** How far an interval may reach either side of its op's linearization point. */
  readonly spreadMs: number;
}

/**
 * A sequential execution against the model, each op then given a random interval around its
 * linearization point (10 ms apart): linearizable by construction. An indeterminate op takes
 * effect or not at random, and forgets its output.
 */
function generateHistory(seed: number, options: GenerateOptions): GeneratedStep[] {
  const random = prng(seed);
  const pick = (n: number): number => Math.floor(random() * n);
  const states = new Map<string, KeyState>();
  const steps: GeneratedStep[] = [];
  for (let i = 0; i < options.opCount; i++) {
    const key = `k${pick(options.keys)}`;
    const state = states.get(key);
    const currentVersion = state?.version ?? 0;
    const nearbyVersion = (): number =>
      random() < 0.6 ? currentVersion : Math.max(0, currentVersion + pick(3) - 1);
    const roll = random();
    const op: KvOp =
      roll < 0.4
        ? { kind: 'get' }
        : roll < 0.72
          ? { kind: 'put', value: `v${i}` }
          : roll < 0.85
            ? { kind: 'put', value: `v${i}`, ifVersion: nearbyVersion() }
            : roll < 0.93
              ? { kind: 'delete' }
              : { kind: 'delete', ifVersion: nearbyVersion() };
    const pointMs = i * 10;
    const invokeMs = pointMs - pick(options.spreadMs + 1);
    const indeterminate = random() < options.indeterminateRate;
    const takesEffect = !indeterminate || random() < 0.5;
    const { next, output } = applyToModel(state, op);
    if (takesEffect) states.set(key, next);
    steps.push({
      op: {
        id: i,
        clientId: pick(8),
        key,
        op,
        invokeMs,
        returnMs: indeterminate ? null : pointMs + pick(options.spreadMs + 1),
        output: indeterminate ? null : output,
      },
      changedState: takesEffect && next !== state,
    });
  }
  return steps;
}

/**
 * Turns one determinate read into a read of a value that was provably overwritten before the read
 * began: a put w1 returned before the next write w2 was invoked, and w2 returned before the read
 * was invoked. Values are unique per put, so no order can place the read inside w1's window.
 */
function mutateToStaleRead(steps: readonly GeneratedStep[], seed: number): HistoryOp[] | null {
  const random = prng(seed ^ 0x5bd1e995);
  const candidates: { readIndex: number; staleValue: string; staleVersion: number }[] = [];
  const writesByKey = new Map<string, GeneratedStep[]>();
  steps.forEach((step, index) => {
    const { op } = step;
    if (op.op.kind === 'get' && op.output !== null) {
      const writes = writesByKey.get(op.key) ?? [];
      for (let w = writes.length - 2; w >= 0; w--) {
        const [w1, w2] = [writes[w].op, writes[w + 1].op];
        if (w1.output?.kind !== 'put' || !w1.output.ok || w1.op.kind !== 'put') continue;
        if (w1.returnMs === null || w2.returnMs === null) continue;
        if (w1.returnMs < w2.invokeMs && w2.returnMs < op.invokeMs) {
          candidates.push({ readIndex: index, staleValue: w1.op.value, staleVersion: w1.output.version });
          break;
        }
      }
    }
    if (step.changedState) writesByKey.set(op.key, [...(writesByKey.get(op.key) ?? []), step]);
  });
  if (candidates.length === 0) return null;
  const chosen = candidates[Math.floor(random() * candidates.length)];
  return steps.map(({ op }, index) =>
    index === chosen.readIndex
      ? {
          ...op,
          output: { kind: 'get', found: true, value: chosen.staleValue, version: chosen.staleVersion },
        }
      : op,
  );
}

/** Every order of every subset of the indeterminate ops, for histories small enough to enumerate. */
function linearizableByEnumeration(history: readonly HistoryOp[]): boolean {
  const used = history.map(() => false);
  const search = (state: KeyState): boolean => {
    if (history.every((op, i) => used[i] || op.returnMs === null)) return true;
    for (let i = 0; i < history.length; i++) {
      const candidate = history[i];
      if (used[i]) continue;
      const mustPrecede = history.some(
        (op, j) => !used[j] && j !== i && op.returnMs !== null && op.returnMs < candidate.invokeMs,
      );
      if (mustPrecede) continue;
      const { next, output } = applyToModel(state, candidate.op);
      if (candidate.output !== null && !isDeepStrictEqual(output, candidate.output)) continue;
      used[i] = true;
      if (search(next)) return true;
      used[i] = false;
    }
    return false;
  };
  return search(undefined);
}

test('the checker agrees with exhaustive enumeration on small random histories', () => {
  const random = prng(77);
  const pick = (n: number): number => Math.floor(random() * n);
  const wrongOutputs = (op: KvOp): KvOutput[] => {
    const version = 1 + pick(3);
    if (op.kind === 'get') {
      return [
        { kind: 'get', found: false },
        { kind: 'get', found: true, value: `v${pick(7)}`, version },
      ];
    }
    if (op.kind === 'put') {
      return [
        { kind: 'put', ok: true, version },
        { kind: 'put', ok: false, currentVersion: pick(3) },
      ];
    }
    return [
      { kind: 'delete', ok: true },
      { kind: 'delete', ok: false, reason: 'notFound' },
      { kind: 'delete', ok: false, reason: 'mismatch', currentVersion: version },
    ];
  };
  let rejected = 0;
  const cases = 1500;
  for (let c = 0; c < cases; c++) {
    const generated = generateHistory(1000 + c, {
      opCount: 7,
      keys: 1,
      indeterminateRate: 0.25,
      spreadMs: 30,
    });
    const history = generated.map(({ op }) => {
      if (op.output === null || random() < 0.75) return op;
      const outputs = wrongOutputs(op.op);
      return { ...op, output: outputs[pick(outputs.length)] };
    });
    const expected = linearizableByEnumeration(history);
    if (!expected) rejected++;
    const result = checkLinearizable(history);
    assert.equal(result.ok, expected, `case ${c}:\n${describeHistory(history)}`);
  }
  assert.ok(rejected > cases / 4 && rejected < (cases * 3) / 4, `${rejected} of ${cases} rejected`);
});

const RANDOM_SEEDS = 60;

test('random histories built around a sequential execution are linearizable', () => {
  for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
    const history = generateHistory(seed, {
      opCount: 300,
      keys: 3,
      indeterminateRate: 0.05,
      spreadMs: 25,
    }).map((s) => s.op);
    const result = checkLinearizable(history);
    assert.equal(result.ok, true, `seed ${seed}: ${JSON.stringify(result)}`);
  }
});

test('a random history with one read made provably stale is rejected', () => {
  let mutated = 0;
  for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
    const steps = generateHistory(seed, { opCount: 300, keys: 3, indeterminateRate: 0.05, spreadMs: 25 });
    const history = mutateToStaleRead(steps, seed);
    if (history === null) continue;
    mutated++;
    const result = checkLinearizable(history);
    assert.equal(result.ok, false, `seed ${seed}: stale read accepted: ${JSON.stringify(result)}`);
  }
  assert.ok(
    mutated >= RANDOM_SEEDS / 2,
    `only ${mutated} of ${RANDOM_SEEDS} seeds had a stale-read candidate`,
  );
});

test('a 2000-op history over 5 keys with indeterminate ops is checked within the step bound', (t) => {
  const history = generateHistory(2024, {
    opCount: 2000,
    keys: 5,
    indeterminateRate: 0.05,
    // Intervals reach 10 linearization points either side: about 20 ops in flight at once.
    spreadMs: 100,
  }).map((s) => s.op);
  const startedMs = performance.now();
  const result = checkLinearizable(history);
  const elapsedMs = performance.now() - startedMs;
  t.diagnostic(
    `checked ${history.length} ops (${history.filter((op) => op.returnMs === null).length} indeterminate) ` +
      `in ${elapsedMs.toFixed(1)} ms`,
  );
  assert.deepEqual(result, { ok: true, keys: 5, ops: 2000 });
});
