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
// - historyBytesMax: the past (every entry but a live key's current one; all of a deleted key's
//   entries, its tombstone included) takes at most this many bytes (kvHistoryEntryBytes). Past
//   it, the oldest past entries go first, whatever their key: in the order they were superseded
//   (a tombstone at once), which is what etcd's compaction at a revision removes.
//
// A live key that was written once has no past and is bounded by the number of live keys, not
// by historyKeysMax or historyBytesMax. Eviction depends only on the applied commands and the two bounds, so nodes
// configured alike hold the same history; the bounds never change apply() results.
import assert from 'node:assert/strict';
import { KvKeyIndex } from './kv-key-index.js';
import { compareKeys, type KvHistoryEntry } from './kv-types.js';

export interface KvHistoryChange {
  readonly key: string;
  readonly entry: KvHistoryEntry;
}

/** What one history entry counts for against historyBytesMax: its key and value, plus overhead. */
export function kvHistoryEntryBytes(key: string, entry: KvHistoryEntry): number {
  return key.length + entry.value.length + 48;
}

interface PastItem {
  readonly key: string;
  readonly revision: number;
}

export class KvHistory {
  private readonly entriesByKey = new Map<string, KvHistoryEntry[]>();
  /**
   * Past entries in the order they became past (= revision order of the entries): the eviction
   * order of historyBytesMax. Items of entries removed by the other bounds stay until they reach
   * the head (skipped there) or the queue is rebuilt; `pastHead` is the first live slot.
   */
  private pastQueue: PastItem[] = [];
  private pastHead = 0;
  private pastBytesNow = 0;
  private pastEntries = 0;
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
    readonly historyBytesMax: number = Number.POSITIVE_INFINITY,
  ) {
    assert(Number.isSafeInteger(historyPerKeyMax) && historyPerKeyMax >= 1, 'historyPerKeyMax must be >= 1');
    assert(Number.isSafeInteger(historyKeysMax) && historyKeysMax >= 0, 'historyKeysMax must be >= 0');
    assert(historyBytesMax >= 0, 'historyBytesMax must be >= 0');
  }

  /** Bytes of the past (what historyBytesMax bounds). */
  get pastBytes(): number {
    return this.pastBytesNow;
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
      const previous = entries[entries.length - 1];
      // The live value this write replaces becomes past; a tombstone is past at once (a deleted
      // key has no current value), and was queued when it was written.
      if (previous !== undefined && !previous.deleted) this.becomePast(key, previous);
      entries.push(entry);
      if (entry.deleted) this.becomePast(key, entry);
      if (entries.length > this.historyPerKeyMax) {
        for (const gone of entries.splice(0, entries.length - this.historyPerKeyMax))
          this.dropPast(key, gone);
      }
      this.entriesByKey.set(key, entries);
      this.markModified(key, entries);
    }
    this.evictPastKeysMax();
    this.evictPastBytesMax();
  }

  private becomePast(key: string, entry: KvHistoryEntry): void {
    this.pastQueue.push({ key, revision: entry.revision });
    this.pastBytesNow += kvHistoryEntryBytes(key, entry);
    this.pastEntries++;
  }

  /** A past entry removed by a bound other than bytes: its queue item goes stale. */
  private dropPast(key: string, entry: KvHistoryEntry): void {
    this.pastBytesNow -= kvHistoryEntryBytes(key, entry);
    this.pastEntries--;
  }

  /** historyBytesMax: the oldest past entries go first. */
  private evictPastBytesMax(): void {
    while (this.pastBytesNow > this.historyBytesMax && this.pastHead < this.pastQueue.length) {
      const item = this.pastQueue[this.pastHead++]!;
      const entries = this.entriesByKey.get(item.key);
      // Stale: removed meanwhile by the per-key or keys bound.
      if (entries === undefined || entries[0]?.revision !== item.revision) continue;
      const last = entries[entries.length - 1]!;
      if (entries.length === 1 && !last.deleted) continue; // a live key's current value is never past
      this.beforeChange?.(item.key);
      const gone = entries.shift()!;
      this.dropPast(item.key, gone);
      if (entries.length === 0) {
        this.entriesByKey.delete(item.key);
        this.keyIndex.delete(item.key);
        this.deletedKeys.delete(item.key);
      } else this.markModified(item.key, entries, false);
    }
    this.compactPastQueue();
  }

  /** Drops consumed items, and stale ones once they outnumber the live ones: O(1) amortized. */
  private compactPastQueue(): void {
    const items = this.pastQueue.length - this.pastHead;
    if (items > 2 * this.pastEntries + 1024) {
      this.pastQueue = this.pastQueue.slice(this.pastHead).filter((item) => {
        const entries = this.entriesByKey.get(item.key);
        return entries !== undefined && entries.some((e) => e.revision === item.revision);
      });
      this.pastHead = 0;
    } else if (this.pastHead > 1024 && this.pastHead > items) {
      this.pastQueue = this.pastQueue.slice(this.pastHead);
      this.pastHead = 0;
    }
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
    historyBytesMax: number = Number.POSITIVE_INFINITY,
  ): KvHistory {
    const history = new KvHistory(historyPerKeyMax, historyKeysMax, historyBytesMax);
    const modified: Array<{ key: string; modRevision: number }> = [];
    const past: Array<{ key: string; entry: KvHistoryEntry; supersededAt: number }> = [];
    for (const [key, restored] of entriesByKey) {
      assert(restored.length > 0);
      const entries = restored.slice(-historyPerKeyMax);
      history.entriesByKey.set(key, entries);
      modified.push({ key, modRevision: entries[entries.length - 1].revision });
      const live = !entries[entries.length - 1].deleted;
      for (let i = 0; i < entries.length - (live ? 1 : 0); i++) {
        // When it became past: a tombstone at once, a value at the next write of its key.
        const supersededAt = entries[i].deleted ? entries[i].revision : entries[i + 1].revision;
        past.push({ key, entry: entries[i], supersededAt });
      }
    }
    modified.sort((a, b) => a.modRevision - b.modRevision || compareKeys(a.key, b.key));
    for (const { key } of modified) history.markModified(key, history.entriesByKey.get(key)!);
    // The order record() queues them in: by revision of supersession, then key (a revision's
    // changes are sorted by key), then the replaced value before the tombstone that replaced it.
    past.sort(
      (a, b) =>
        a.supersededAt - b.supersededAt || compareKeys(a.key, b.key) || a.entry.revision - b.entry.revision,
    );
    for (const { key, entry } of past) history.becomePast(key, entry);
    history.keyIndex = KvKeyIndex.fromKeys(history.entriesByKey.keys());
    history.evictPastKeysMax();
    history.evictPastBytesMax();
    return history;
  }

  /**
   * Keeps the two "retains a past" sets right after `key`'s entries changed. A write moves the key
   * to the most recently modified end; an eviction (`touched` false) leaves its place.
   */
  private markModified(key: string, entries: readonly KvHistoryEntry[], touched = true): void {
    const last = entries[entries.length - 1];
    if (!touched) {
      if (!last.deleted && entries.length <= 1) this.livePastKeys.delete(key);
      return;
    }
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
        for (const gone of this.entriesByKey.get(deleted)!) this.dropPast(deleted, gone);
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
      for (const gone of entries.slice(0, -1)) this.dropPast(live, gone);
      this.entriesByKey.set(live, entries.slice(-1));
    }
  }
}

function firstKey(set: ReadonlySet<string>): string | undefined {
  for (const key of set) return key;
  return undefined;
}
