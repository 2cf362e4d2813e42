// Seeded choices for the fault tests. Real processes and real timing make a run unrepeatable, but
// the seed still fixes every choice the test makes (which fault, which node, which key, which
// operation), so a failing run's seed narrows down what was tried.
import assert from 'node:assert/strict';
import { mulberry32 } from '../src/raft/index.js';
import type { Prng } from '../src/raft/types.js';

export class Rng {
  private readonly prng: Prng;

  constructor(readonly seed: number) {
    this.prng = mulberry32(seed);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.prng.next();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    assert.ok(Number.isInteger(n) && n > 0, `Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.prng.next() * n);
  }

  /** A uniform integer in [low, high]. */
  between(low: number, high: number): number {
    assert.ok(high >= low);
    return low + this.int(high - low + 1);
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'Rng.pick: no items');
    return items[this.int(items.length)];
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy;
  }
}

/** A seed for a run that was not given one. */
export function freshSeed(): number {
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
