// The mutation suite inside `npm test`: every deliberately broken core or runtime of
// sim/mutations.ts must be caught by the ordinary random workload (no steered scenario) within
// the seed bound it declares. A mutation that survives its bound means the simulator has lost
// the teeth that would catch that bug.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutationNames } from '../../sim/mutations.js';
import { describeResult, runMutation } from '../../sim/mutation-suite.js';

for (const name of mutationNames) {
  test(`mutation ${name} is caught by the random workload within its seed bound`, () => {
    const r = runMutation(name);
    assert.ok(r.caughtAtSeed !== null, describeResult(r));
  });
}

test('a runtime that sends messages before their state is durable is caught by the send check', () => {
  const r = runMutation('sendBeforePersist');
  assert.equal(r.invariant, 'sent only what is durable', describeResult(r));
});
