import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../../src/raft/index.js';
import { KvKeyIndex, kvKeyIndexChunkKeysMax } from '../../src/state/kv-key-index.js';
import { compareKeys } from '../../src/state/kv-types.js';

/** The page a plain sorted array gives: the model the index must agree with. */
function modelPage(sorted: readonly string[], prefix: string, limit: number, after?: string) {
  const matching = sorted.filter(
    (k) => k.startsWith(prefix) && (after === undefined || compareKeys(k, after) > 0),
  );
  return { keys: matching.slice(0, limit), more: matching.length > limit };
}

describe('KvKeyIndex', () => {
  it('agrees with a sorted array under seeded random inserts and deletes across many chunks', () => {
    const seed = 20240611;
    const prng = mulberry32(seed);
    const random = () => prng.next();
    const pick = (n: number) => Math.floor(random() * n);
    const index = new KvKeyIndex();
    const model = new Set<string>();
    const keySpace = 6 * kvKeyIndexChunkKeysMax;
    for (let step = 0; step < 40_000; step++) {
      const key = `k/${pick(8)}/${String(pick(keySpace)).padStart(5, '0')}`;
      // Grow for the first half, then shrink, so that chunks both split and merge.
      const grow = step < 20_000 ? random() < 0.8 : random() < 0.2;
      if (grow && !model.has(key)) {
        index.insert(key);
        model.add(key);
      } else if (!grow && model.has(key)) {
        index.delete(key);
        model.delete(key);
      }
      if (step % 4000 === 0 || step === 39_999) {
        const sorted = [...model].sort(compareKeys);
        assert.deepEqual(index.keys(), sorted, `seed ${seed}, step ${step}`);
        assert.equal(index.size, model.size);
        for (const [prefix, limit, after] of [
          ['k/3/', 50, undefined],
          ['k/3/', 7, sorted.find((k) => k.startsWith('k/3/0'))],
          ['k/', 1000, 'k/5'],
          ['', 3, 'k/7/99999'],
        ] as const) {
          assert.deepEqual(
            index.page(prefix, limit, after),
            modelPage(sorted, prefix, limit, after),
            `seed ${seed}, step ${step}, page(${prefix}, ${limit}, ${after})`,
          );
        }
      }
    }
  });

  it('a cursor before the prefix reads from its start, one after it reads nothing', () => {
    const index = KvKeyIndex.fromKeys(['a', 'b/1', 'b/2', 'c']);
    assert.deepEqual(index.page('b/', 10, 'a'), { keys: ['b/1', 'b/2'], more: false });
    assert.deepEqual(index.page('b/', 10, 'b/'), { keys: ['b/1', 'b/2'], more: false });
    assert.deepEqual(index.page('b/', 10, 'b/1'), { keys: ['b/2'], more: false });
    assert.deepEqual(index.page('b/', 10, 'b/3'), { keys: [], more: false });
    assert.deepEqual(index.page('b/', 10, 'z'), { keys: [], more: false });
    assert.deepEqual(index.page('b/', 1), { keys: ['b/1'], more: true });
  });

  it('refuses to insert a key twice or delete an absent key', () => {
    const index = KvKeyIndex.fromKeys(['a']);
    assert.throws(() => index.insert('a'), /already indexed/);
    assert.throws(() => index.delete('b'), /not indexed/);
    assert.throws(() => KvKeyIndex.fromKeys(['x', 'x']), /duplicate key/);
  });
});
