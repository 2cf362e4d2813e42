// The memo of the linearizability search (Lowe 2017, §4): configurations (linearized ops, model
// state) already explored. Two paths that linearized the same ops and reached the same state have
// the same future, so the second one is cut off.
//
// Extended for indeterminate ops: a configuration is also cut off when an explored one that
// failed had the same determinate ops and state but used a subset of its indeterminate ops.
// Indeterminate ops are optional, so having more of them left to use is never worse: whatever
// completes the larger-set configuration completes the smaller one. Only finished (failed)
// configurations cut others off this way; one still being explored is an ancestor on the stack
// and proves nothing yet.
//
// Entries live in one growable Int32Array rather than as objects or strings: the search can visit
// millions of configurations, and per-entry objects would cost several times the memory and the
// garbage collector's time.

// Entry layout in the arena: [next entry offset or -1, hash, state id, failed flag,
// determinate bitset words..., indeterminate bitset words...].
const ENTRY_NEXT = 0;
const ENTRY_HASH = 1;
const ENTRY_STATE = 2;
const ENTRY_FAILED = 3;
const ENTRY_HEADER_WORDS = 4;

const BUCKETS_INITIAL = 1024;
const ENTRIES_INITIAL = 1024;

/** add()'s answer when an explored configuration makes this one redundant. */
export const VISITED_ALREADY = -1;
const NO_ENTRY = -1;

/** A well-mixed 32-bit key for op `index` of the bitset, for the incremental (Zobrist) hash. */
export function opHashKey(index: number): number {
  let z = Math.imul(index + 1, 0x9e3779b9);
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return z ^ (z >>> 16);
}

function configurationHash(determinateHash: number, stateId: number): number {
  let h = determinateHash ^ Math.imul(stateId + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

export class VisitedSet {
  private readonly determinateWords: number;
  private readonly bitsetWords: number;
  private readonly entryWords: number;
  private arena: Int32Array;
  private arenaUsedWords = 0;
  private buckets: Int32Array;
  private entryCount = 0;

  /**
   * Bitsets given to add() hold `determinateWords` words for the determinate ops followed by
   * `indeterminateWords` for the indeterminate ones.
   */
  constructor(determinateWords: number, indeterminateWords: number) {
    this.determinateWords = determinateWords;
    this.bitsetWords = determinateWords + indeterminateWords;
    this.entryWords = ENTRY_HEADER_WORDS + this.bitsetWords;
    this.arena = new Int32Array(ENTRIES_INITIAL * this.entryWords);
    this.buckets = new Int32Array(BUCKETS_INITIAL).fill(NO_ENTRY);
  }

  get size(): number {
    return this.entryCount;
  }

  /**
   * Records the configuration and returns its entry, for markFailed(); or VISITED_ALREADY when it
   * was recorded before or a failed entry covers it. `determinateHash` is the XOR of opHashKey over
   * the set determinate bits, kept by the caller as bits flip so no step rehashes the bitset.
   */
  add(bitset: Int32Array, determinateHash: number, stateId: number): number {
    const hash = configurationHash(determinateHash, stateId);
    const arena = this.arena;
    const bucket = hash & (this.buckets.length - 1);
    for (let offset = this.buckets[bucket]; offset !== NO_ENTRY; offset = arena[offset + ENTRY_NEXT]) {
      if (arena[offset + ENTRY_HASH] !== hash || arena[offset + ENTRY_STATE] !== stateId) continue;
      const words = offset + ENTRY_HEADER_WORDS;
      let sameDeterminate = true;
      for (let w = 0; w < this.determinateWords; w++) {
        if (arena[words + w] !== bitset[w]) {
          sameDeterminate = false;
          break;
        }
      }
      if (!sameDeterminate) continue;
      let equal = true;
      let covered = true;
      for (let w = this.determinateWords; w < this.bitsetWords; w++) {
        const stored = arena[words + w];
        if (stored !== bitset[w]) equal = false;
        if ((stored & ~bitset[w]) !== 0) {
          covered = false;
          break;
        }
      }
      if (equal || (covered && arena[offset + ENTRY_FAILED] === 1)) return VISITED_ALREADY;
    }
    return this.insert(bitset, hash, stateId);
  }

  /** The configuration of `entry` has been explored completely without success. */
  markFailed(entry: number): void {
    this.arena[entry + ENTRY_FAILED] = 1;
  }

  private insert(bitset: Int32Array, hash: number, stateId: number): number {
    if (this.arenaUsedWords + this.entryWords > this.arena.length) {
      const grown = new Int32Array(this.arena.length * 2);
      grown.set(this.arena);
      this.arena = grown;
    }
    const offset = this.arenaUsedWords;
    this.arenaUsedWords += this.entryWords;
    const bucket = hash & (this.buckets.length - 1);
    this.arena[offset + ENTRY_NEXT] = this.buckets[bucket];
    this.arena[offset + ENTRY_HASH] = hash;
    this.arena[offset + ENTRY_STATE] = stateId;
    this.arena[offset + ENTRY_FAILED] = 0;
    this.arena.set(bitset.subarray(0, this.bitsetWords), offset + ENTRY_HEADER_WORDS);
    this.buckets[bucket] = offset;
    this.entryCount++;
    // Keep chains about one entry long on average.
    if (this.entryCount > this.buckets.length) this.rehash(this.buckets.length * 2);
    return offset;
  }

  private rehash(bucketCount: number): void {
    const buckets = new Int32Array(bucketCount).fill(NO_ENTRY);
    const arena = this.arena;
    for (let offset = 0; offset < this.arenaUsedWords; offset += this.entryWords) {
      const bucket = arena[offset + ENTRY_HASH] & (bucketCount - 1);
      arena[offset + ENTRY_NEXT] = buckets[bucket];
      buckets[bucket] = offset;
    }
    this.buckets = buckets;
  }
}
