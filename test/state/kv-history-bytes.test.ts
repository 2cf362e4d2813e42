// historyBytesMax: the retained past (every entry but a live key's current value) stays within
// its byte bound, and what goes first is the oldest past, whatever its key. Checked against a
// model that keeps every entry and applies the three bounds by brute force.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../../src/raft/prng.js';
import { kvHistoryEntryBytes } from '../../src/state/kv-history.js';
import type { KvHistoryEntry } from '../../src/state/kv-types.js';
import { KvStore } from '../../src/state/kv.js';
import { KvDriver } from './kv-test-helpers.js';

/** Every past entry of the store, with its key. */
function pastOf(kv: KvStore, keys: readonly string[]): Array<{ key: string; entry: KvHistoryEntry }> {
  const out: Array<{ key: string; entry: KvHistoryEntry }> = [];
  for (const key of keys) {
    const h = kv.history(key);
    const live = h.length > 0 && !h[h.length - 1]!.deleted;
    for (let i = 0; i < h.length - (live ? 1 : 0); i++) out.push({ key, entry: h[i]! });
  }
  return out;
}

describe('KvStore historyBytesMax', () => {
  it('keeps the past within the bound, dropping the earliest superseded versions first', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const prng = mulberry32(seed);
      const bound = 500 + Math.floor(prng.next() * 5000);
      const wide = { historyPerKeyMax: 1000, historyKeysMax: 1000 };
      const driver = new KvDriver({ ...wide, historyBytesMax: bound });
      // The same writes without a byte bound: every version, to see which ones went.
      const model = new KvDriver(wide);
      const keys = Array.from({ length: 1 + Math.floor(prng.next() * 30) }, (_, i) => `k${i}`);
      for (let op = 0; op < 600; op++) {
        const key = keys[Math.floor(prng.next() * keys.length)]!;
        const value = 'v'.repeat(1 + Math.floor(prng.next() * 80));
        const del = prng.next() < 0.25;
        for (const d of [driver, model]) {
          if (del) d.del(key);
          else d.put(key, value);
        }
        const past = pastOf(driver.store, keys);
        const bytes = past.reduce((n, p) => n + kvHistoryEntryBytes(p.key, p.entry), 0);
        assert.equal(driver.store.historyBytes, bytes, `seed ${seed} op ${op}: accounting`);
        assert.ok(bytes <= bound, `seed ${seed} op ${op}: ${bytes} bytes of past over ${bound}`);
      }
      // Every version that went was superseded no later than every version still held.
      const supersededAt = (key: string, revision: number): number => {
        const h = model.store.history(key);
        const i = h.findIndex((e) => e.revision === revision);
        // A tombstone is past from the moment it is written; a value once the next write replaces it.
        return h[i]!.deleted ? h[i]!.revision : h[i + 1]!.revision;
      };
      const kept = new Set(pastOf(driver.store, keys).map((p) => `${p.key}@${p.entry.revision}`));
      let latestGone = 0;
      let earliestKept = Number.POSITIVE_INFINITY;
      for (const p of pastOf(model.store, keys)) {
        const at = supersededAt(p.key, p.entry.revision);
        if (kept.has(`${p.key}@${p.entry.revision}`)) earliestKept = Math.min(earliestKept, at);
        else latestGone = Math.max(latestGone, at);
      }
      assert.ok(
        latestGone <= earliestKept,
        `seed ${seed}: a version superseded at ${latestGone} went, one at ${earliestKept} stayed`,
      );
      assert.ok(latestGone > 0, `seed ${seed}: the bound did evict something`);
    }
  });

  it('a live key keeps its current value whatever the bound', () => {
    const driver = new KvDriver({ historyBytesMax: 0 });
    for (let i = 0; i < 50; i++) driver.put(`k${i % 5}`, `v${i}`);
    assert.equal(driver.store.historyBytes, 0);
    for (let k = 0; k < 5; k++) {
      const h = driver.store.history(`k${k}`);
      assert.equal(h.length, 1);
      assert.equal(h[0]!.value, `v${45 + k}`);
    }
    // A deleted key's history (its tombstone) is all past: it goes entirely.
    driver.del('k0');
    assert.deepEqual(driver.store.history('k0'), []);
  });

  it('the same bound after a snapshot and restore keeps the same history', () => {
    const driver = new KvDriver({ historyBytesMax: 2000 });
    for (let i = 0; i < 300; i++) {
      if (i % 7 === 3) driver.del(`k${i % 9}`);
      else driver.put(`k${i % 9}`, 'x'.repeat(i % 40));
    }
    const restored = new KvStore({ historyBytesMax: 2000 });
    restored.restore(driver.store.snapshot());
    assert.deepEqual(Buffer.from(restored.snapshot()), Buffer.from(driver.store.snapshot()));
    assert.equal(restored.historyBytes, driver.store.historyBytes);
    // And evicts in the same order afterwards.
    const again = new KvDriver({ historyBytesMax: 2000 }, restored);
    for (let i = 0; i < 200; i++) {
      for (const d of [driver, again]) {
        if (i % 3 === 1) d.del(`k${i % 11}`);
        else d.put(`k${i % 11}`, 'y'.repeat(i % 30));
      }
    }
    assert.deepEqual(Buffer.from(again.store.snapshot()), Buffer.from(driver.store.snapshot()));
    // A smaller bound on the restoring node trims at once.
    const smaller = new KvStore({ historyBytesMax: 500 });
    smaller.restore(driver.store.snapshot());
    assert.ok(smaller.historyBytes <= 500);
  });

  it('a store restored mid-way evicts exactly as the original from then on (random histories)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const prng = mulberry32(1000 + seed);
      const options = { historyBytesMax: 300 + Math.floor(prng.next() * 3000) };
      const original = new KvDriver(options);
      const step = (d: KvDriver, r: number, key: string, len: number): void => {
        if (r < 0.35) d.del(key);
        else d.put(key, 'z'.repeat(len));
      };
      const ops = Array.from({ length: 400 }, () => ({
        r: prng.next(),
        key: `k${Math.floor(prng.next() * 12)}`,
        len: Math.floor(prng.next() * 50),
      }));
      const cut = Math.floor(prng.next() * ops.length);
      for (const o of ops.slice(0, cut)) step(original, o.r, o.key, o.len);
      const store = new KvStore(options);
      store.restore(original.store.snapshot());
      const restored = new KvDriver(options, store);
      for (const o of ops.slice(cut)) {
        step(original, o.r, o.key, o.len);
        step(restored, o.r, o.key, o.len);
      }
      assert.deepEqual(
        Buffer.from(restored.store.snapshot()),
        Buffer.from(original.store.snapshot()),
        `seed ${seed}`,
      );
    }
  });
});
