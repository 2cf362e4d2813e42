// The live keys in key order, so that a page of list() costs O(log n + page) instead of a scan and
// sort of every key. The layout is a sorted list of sorted chunks (as in Python's
// sortedcontainers): finding a position is two binary searches, an insert or delete moves the
// slots of one chunk (at most chunkKeysMax) and, on a split or merge, of the chunk table
// (about n / chunkKeysMax slots). A flat sorted array would move up to n slots on every insert.
//
// Key order is compareKeys (UTF-16 code units), the one order of the store; keys sharing a prefix
// are therefore contiguous, which is what lets a page stop at the first key without the prefix.
import assert from 'node:assert/strict';
import { compareKeys } from './kv-types.js';

/** A chunk holding more keys than this is split in two; it bounds the slots moved per insert. */
export const kvKeyIndexChunkKeysMax = 512;

/** A position: chunk number and offset inside it; chunk === chunks.length means the end. */
interface Position {
  chunk: number;
  offset: number;
}

export interface KvKeyPage {
  /** Keys in order, at most the limit asked for. */
  readonly keys: string[];
  /** True when a key with the prefix follows the last one returned. */
  readonly more: boolean;
}

export class KvKeyIndex {
  /** Non-empty chunks, each sorted, each chunk's keys all before the next chunk's. */
  private chunks: string[][] = [];
  private sizeNow = 0;

  /** An index of `keys`, which must be distinct; sorted here. O(n log n). */
  static fromKeys(keys: Iterable<string>): KvKeyIndex {
    const sorted = [...keys].sort(compareKeys);
    const index = new KvKeyIndex();
    const fill = kvKeyIndexChunkKeysMax / 2;
    for (let i = 0; i < sorted.length; i += fill) index.chunks.push(sorted.slice(i, i + fill));
    for (let i = 1; i < sorted.length; i++) {
      assert(compareKeys(sorted[i - 1], sorted[i]) < 0, `duplicate key ${sorted[i]}`);
    }
    index.sizeNow = sorted.length;
    return index;
  }

  get size(): number {
    return this.sizeNow;
  }

  /** Adds a key that is not in the index. */
  insert(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.sizeNow = 1;
      return;
    }
    // A key after every other goes at the end of the last chunk.
    const chunk = Math.min(this.firstChunkReaching(key, true), this.chunks.length - 1);
    const keys = this.chunks[chunk];
    const offset = lowerBound(keys, key, true);
    assert(keys[offset] !== key, `insert of a key already indexed: ${key}`);
    keys.splice(offset, 0, key);
    this.sizeNow += 1;
    if (keys.length > kvKeyIndexChunkKeysMax) {
      this.chunks.splice(chunk + 1, 0, keys.splice(keys.length >> 1));
    }
  }

  /** Removes a key that is in the index. */
  delete(key: string): void {
    const at = this.position(key, true);
    const keys = this.chunks[at.chunk];
    assert(keys !== undefined && keys[at.offset] === key, `delete of a key not indexed: ${key}`);
    keys.splice(at.offset, 1);
    this.sizeNow -= 1;
    if (keys.length === 0) {
      this.chunks.splice(at.chunk, 1);
      return;
    }
    // Merge a shrunken chunk into a neighbour when both fit in one, so that deletes do not leave
    // many tiny chunks (and a long chunk table) behind.
    const next = this.chunks[at.chunk + 1];
    if (next !== undefined && keys.length + next.length <= kvKeyIndexChunkKeysMax / 2) {
      keys.push(...next);
      this.chunks.splice(at.chunk + 1, 1);
    }
  }

  /**
   * Up to `limit` keys starting with `prefix`, in order, after `startAfterKey` (exclusive) when
   * given. A `startAfterKey` before the prefix's range reads from its start; one after it reads
   * nothing. O(log n + limit).
   */
  page(prefix: string, limit: number, startAfterKey?: string): KvKeyPage {
    assert(Number.isSafeInteger(limit) && limit >= 1);
    // The first key >= prefix, or the first key > startAfterKey if that comes later.
    const at =
      startAfterKey !== undefined && compareKeys(startAfterKey, prefix) >= 0
        ? this.position(startAfterKey, false)
        : this.position(prefix, true);
    const keys: string[] = [];
    let { chunk, offset } = at;
    while (chunk < this.chunks.length) {
      const key = this.chunks[chunk][offset];
      if (!key.startsWith(prefix)) break;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
      offset += 1;
      if (offset === this.chunks[chunk].length) {
        chunk += 1;
        offset = 0;
      }
    }
    return { keys, more: false };
  }

  /** Every key in order. O(n): for checks and tests, not for serving requests. */
  keys(): string[] {
    return this.chunks.flat();
  }

  /** The first position holding a key >= `key` (inclusive) or > `key` (exclusive). */
  private position(key: string, inclusive: boolean): Position {
    const chunk = this.firstChunkReaching(key, inclusive);
    if (chunk === this.chunks.length) return { chunk, offset: 0 };
    return { chunk, offset: lowerBound(this.chunks[chunk], key, inclusive) };
  }

  /** The first chunk whose last key is >= `key` (inclusive) or > `key`; chunks.length if none. */
  private firstChunkReaching(key: string, inclusive: boolean): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const last = this.chunks[mid][this.chunks[mid].length - 1];
      if (before(last, key, inclusive)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The first offset in sorted `keys` holding a key >= `key` (inclusive) or > `key`. */
function lowerBound(keys: readonly string[], key: string, inclusive: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(keys[mid], key, inclusive)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether `candidate` lies before the position sought for `key`. */
function before(candidate: string, key: string, inclusive: boolean): boolean {
  const c = compareKeys(candidate, key);
  return inclusive ? c < 0 : c <= 0;
}
