// Bounded history of every key's writes, the basis of listing configuration versions and rolling
// back. Two bounds hold at all times:
//
// - historyPerKeyMax: a key keeps only its newest historyPerKeyMax entries (puts and deletion
//   tombstones). The newest entry of a live key is its current value, so at least 1.
// - historyKeysMax: at most this many keys retain a past, where a key retains a past when it is
//   deleted (its history ends in a tombstone) or it is live with more than its current entry.
//   Past that bound, the least recently modified deleted key loses its history entirely; only
//   when no deleted key is left does the least recently modified live key lose its past (it
//   keeps its current entry). "Least recently modified" is the order (modRevision, key).
//
// A live key that was written once has no past and is bounded by the number of live keys, not
// by historyKeysMax. Eviction depends only on the applied commands and the two bounds, so nodes
// configured alike hold the same history; the bounds never change apply() results.
import assert from 'node:assert/strict';
import { KvKeyIndex } from './kv-key-index.js';
import { compareKeys, type KvHistoryEntry } from './kv-types.js';

export interface KvHistoryChange {
  readonly key: string;
  readonly entry: KvHistoryEntry;
}

export class KvHistory {
  private readonly entriesByKey = new Map<string, KvHistoryEntry[]>();
  /** The keys of entriesByKey in key order (snapshots walk it with a cursor). */
  private keyIndex = new KvKeyIndex();
  /**
   * Called before a key's entries change or go, with the key (a snapshot in progress saves what
   * it has not written yet; see KvStore.snapshotStream).
   */
  beforeChange: ((key: string) => void) | null = null;
  // Keys retaining a past, least recently modified first. Set insertion order is that order
  // because revisions only grow and record() takes one revision's keys in key order.
  private readonly deletedKeys = new Set<string>();
  private readonly livePastKeys = new Set<string>();

  constructor(
    readonly historyPerKeyMax: number,
    readonly historyKeysMax: number,
  ) {
    assert(Number.isSafeInteger(historyPerKeyMax) && historyPerKeyMax >= 1, 'historyPerKeyMax must be >= 1');
    assert(Number.isSafeInteger(historyKeysMax) && historyKeysMax >= 0, 'historyKeysMax must be >= 0');
  }

  /** Appends the writes of one revision; `changes` are sorted by key, one per key. */
  record(revision: number, changes: readonly KvHistoryChange[]): void {
    for (let i = 0; i < changes.length; i++) {
      const { key, entry } = changes[i];
      assert.equal(entry.revision, revision);
      assert(
        i === 0 || compareKeys(changes[i - 1].key, key) < 0,
        'changes must be sorted by key, one per key',
      );
      this.beforeChange?.(key);
      const existing = this.entriesByKey.get(key);
      if (existing === undefined) this.keyIndex.insert(key);
      const entries = existing ?? [];
      assert(
        entries.length === 0 || entries[entries.length - 1].revision < revision,
        'history revisions must grow',
      );
      entries.push(entry);
      if (entries.length > this.historyPerKeyMax) entries.splice(0, entries.length - this.historyPerKeyMax);
      this.entriesByKey.set(key, entries);
      this.markModified(key, entries);
    }
    this.evictPastKeysMax();
  }

  /** The key's retained entries, oldest first; empty when none are retained. */
  entries(key: string): readonly KvHistoryEntry[] {
    return this.entriesByKey.get(key) ?? [];
  }

  /** Keys with any retained entry, sorted. */
  keysSorted(): string[] {
    return this.keyIndex.keys();
  }

  /** Up to `limit` keys with retained entries after `afterKey` (from the first when undefined), in order. */
  keysAfter(afterKey: string | undefined, limit: number): string[] {
    return this.keyIndex.page('', limit, afterKey).keys;
  }

  get keyCount(): number {
    return this.entriesByKey.size;
  }

  /** How many keys retain a past (what historyKeysMax bounds). */
  get pastKeyCount(): number {
    return this.deletedKeys.size + this.livePastKeys.size;
  }

  /**
   * Builds a history from restored entries (each list oldest first, revisions growing), trimmed
   * to this history's bounds, which may be smaller than those of the node that wrote them.
   */
  static fromEntries(
    historyPerKeyMax: number,
    historyKeysMax: number,
    entriesByKey: ReadonlyMap<string, readonly KvHistoryEntry[]>,
  ): KvHistory {
    const history = new KvHistory(historyPerKeyMax, historyKeysMax);
    const modified: Array<{ key: string; modRevision: number }> = [];
    for (const [key, restored] of entriesByKey) {
      assert(restored.length > 0);
      const entries = restored.slice(-historyPerKeyMax);
      history.entriesByKey.set(key, entries);
      modified.push({ key, modRevision: entries[entries.length - 1].revision });
    }
    modified.sort((a, b) => a.modRevision - b.modRevision || compareKeys(a.key, b.key));
    for (const { key } of modified) history.markModified(key, history.entriesByKey.get(key)!);
    history.evictPastKeysMax();
    history.keyIndex = KvKeyIndex.fromKeys(history.entriesByKey.keys());
    return history;
  }

  private markModified(key: string, entries: readonly KvHistoryEntry[]): void {
    const last = entries[entries.length - 1];
    this.deletedKeys.delete(key);
    this.livePastKeys.delete(key);
    if (last.deleted) this.deletedKeys.add(key);
    else if (entries.length > 1) this.livePastKeys.add(key);
  }

  private evictPastKeysMax(): void {
    while (this.pastKeyCount > this.historyKeysMax) {
      const deleted = firstKey(this.deletedKeys);
      if (deleted !== undefined) {
        this.beforeChange?.(deleted);
        this.deletedKeys.delete(deleted);
        this.entriesByKey.delete(deleted);
        this.keyIndex.delete(deleted);
        continue;
      }
      const live = firstKey(this.livePastKeys);
      assert(live !== undefined);
      this.beforeChange?.(live);
      this.livePastKeys.delete(live);
      const entries = this.entriesByKey.get(live)!;
      this.entriesByKey.set(live, entries.slice(-1));
    }
  }
}

function firstKey(set: ReadonlySet<string>): string | undefined {
  for (const key of set) return key;
  return undefined;
}
