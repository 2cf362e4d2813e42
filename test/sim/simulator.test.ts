// The deterministic simulator inside `npm test`: 200 seeds of whole clusters under faults must
// show no violation, a seed must replay identically, and deliberately broken cores must be caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed } from '../../sim/run-seed.js';
import { mutationsByName, type MutationName } from '../../sim/mutations.js';

const seedsInTest = 200;

test(`${seedsInTest} simulated clusters under faults show no safety, linearizability or liveness violation`, () => {
  const failures: string[] = [];
  let ops = 0;
  for (let seed = 1; seed <= seedsInTest; seed++) {
    const r = runSeed({ seed });
    ops += r.ops;
    if (r.violation) {
      failures.push(
        `seed ${seed}: ${r.violation.invariant}: ${r.violation.message.split('\n')[0]}\n` +
          `  replay: npm run sim -- --seed ${seed} --verbose`,
      );
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(ops > seedsInTest * 50, `clients completed only ${ops} operations`);
});

test('the same seed gives the same event trace', () => {
  const a = runSeed({ seed: 7, verbose: true });
  const b = runSeed({ seed: 7, verbose: true });
  assert.ok(a.trace.length > 100);
  assert.deepEqual(a.trace, b.trace);
  const c = runSeed({ seed: 8, verbose: true });
  assert.notDeepEqual(a.trace, c.trace);
});

/** Runs seeds from 1 until one reports a violation; returns that seed and its invariant. */
function firstViolation(name: MutationName, seedsMax: number): { seed: number; invariant: string } | null {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const r = runSeed({ seed, mutations: mutationsByName[name].mutations });
    if (r.violation) return { seed, invariant: r.violation.invariant };
  }
  return null;
}

test('a runtime that sends messages before their state is durable is caught', () => {
  const r = runSeed({ seed: 1, mutations: { sendBeforePersist: true } });
  assert.equal(r.violation?.invariant, 'sent only what is durable');
});

test('a core that votes twice in one term is caught (two leaders in one term)', () => {
  const found = firstViolation('doubleVote', 50);
  assert.ok(found, 'no violation in 50 seeds');
  assert.equal(found.invariant, 'election safety');
});

test('a core that accepts entries without the previous-entry check is caught', () => {
  const found = firstViolation('skipPrevCheck', 50);
  assert.ok(found, 'no violation in 50 seeds');
  assert.match(found.invariant, /log matching|state machine safety|leader completeness|linearizability/);
});

test('a lease longer than the election timeout is caught serving a stale read', () => {
  const found = firstViolation('longLease', 400);
  assert.ok(found, 'no violation in 400 seeds');
  assert.match(found.invariant, /lease read freshness|linearizability/);
});

test('a core that commits old-term entries by counting replicas is caught (Figure 8)', () => {
  const found = firstViolation('commitOldTerms', 400);
  assert.ok(found, 'no violation in 400 seeds');
  assert.match(found.invariant, /leader completeness|state machine safety|linearizability/);
});
