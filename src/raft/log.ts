// The in-memory log: the entries after the latest snapshot. Index i lives at
// entries[i - snapshotIndex - 1]; indices are contiguous (asserted on every change).

import { assert } from './assert.js';
import type { Entry, Index, Term } from './types.js';

export class RaftLog {
  private entries: Entry[] = [];
  private snapIndex: Index;
  private snapTerm: Term;

  constructor(snapshotIndex: Index, snapshotTerm: Term, entries: readonly Entry[]) {
    this.snapIndex = snapshotIndex;
    this.snapTerm = snapshotTerm;
    this.append(entries);
  }

  get snapshotIndex(): Index {
    return this.snapIndex;
  }

  get snapshotTerm(): Term {
    return this.snapTerm;
  }

  get lastIndex(): Index {
    return this.snapIndex + this.entries.length;
  }

  get lastTerm(): Term {
    return this.entries.length === 0 ? this.snapTerm : this.entries[this.entries.length - 1].term;
  }

  /** The term of entry `index`, or undefined when it was compacted away or does not exist yet. */
  term(index: Index): Term | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapIndex - 1].term;
  }

  entry(index: Index): Entry | undefined {
    if (index <= this.snapIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapIndex - 1];
  }

  /** Entries lo..hi inclusive, clamped to what the log holds. */
  slice(lo: Index, hi: Index): Entry[] {
    const from = Math.max(lo, this.snapIndex + 1) - this.snapIndex - 1;
    const to = Math.min(hi, this.lastIndex) - this.snapIndex;
    return from < to ? this.entries.slice(from, to) : [];
  }

  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(
        e.index === this.lastIndex + 1,
        `log indices contiguous: append ${e.index} after ${this.lastIndex}`,
      );
      assert(e.term >= this.lastTerm, `log terms non-decreasing: term ${e.term} after ${this.lastTerm}`);
      this.entries.push(e);
    }
  }

  /** Removes entries index..last. The caller has checked that none of them is committed. */
  truncateFrom(index: Index): void {
    assert(index > this.snapIndex, `truncate ${index} at or below snapshot ${this.snapIndex}`);
    if (index > this.lastIndex) return;
    this.entries.length = index - this.snapIndex - 1;
  }

  /** Drops entries up to and including `index`, which a snapshot now covers. */
  compactTo(index: Index): void {
    const term = this.term(index);
    assert(term !== undefined, `compact to ${index}: entry not in log`);
    this.entries = this.entries.slice(index - this.snapIndex);
    this.snapIndex = index;
    this.snapTerm = term;
  }

  /** Discards the whole log in favour of a snapshot ending at (index, term). */
  reset(index: Index, term: Term): void {
    this.entries = [];
    this.snapIndex = index;
    this.snapTerm = term;
  }

  /** The first index of the run of entries sharing the term of entry `index` (within this log). */
  firstIndexOfTermRun(index: Index): Index {
    const term = this.term(index);
    let i = index;
    while (i - 1 > this.snapIndex && this.term(i - 1) === term) i--;
    return i;
  }
}
