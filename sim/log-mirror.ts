// A node's log as the simulator sees it from outside: the entries its storage made durable, or
// the entries it handed to storage (its in-memory log as far as anything else can depend on it).
import type { Entry, Index, Term } from '../src/raft/types.js';

export class LogMirror {
  snapIndex: Index = 0;
  snapTerm: Term = 0;
  /** entries[i] is the entry at index snapIndex + 1 + i (immutable values, held by reference). */
  entries: Entry[] = [];

  clone(): LogMirror {
    const m = new LogMirror();
    m.snapIndex = this.snapIndex;
    m.snapTerm = this.snapTerm;
    m.entries = this.entries.slice();
    return m;
  }

  entryAt(i: Index): Entry | null {
    if (i <= this.snapIndex) return null;
    return this.entries[i - this.snapIndex - 1] ?? null;
  }

  /** The term at `i`: the snapshot's at its index, null when compacted away or past the end. */
  termAt(i: Index): Term | null {
    if (i === this.snapIndex) return this.snapTerm;
    return this.entryAt(i)?.term ?? null;
  }

  get lastIndex(): Index {
    return this.snapIndex + this.entries.length;
  }

  /** A snapshot received from a leader replaces the whole log (storage does the same). */
  replaceWithSnapshot(index: Index, term: Term): void {
    this.snapIndex = index;
    this.snapTerm = term;
    this.entries = [];
  }

  /** Local compaction: entries after the snapshot stay. */
  installSnapshot(index: Index, term: Term): void {
    const keep =
      index < this.lastIndex && this.termAt(index) === term ? this.entries.slice(index - this.snapIndex) : [];
    this.snapIndex = index;
    this.snapTerm = term;
    this.entries = keep;
  }

  /** Replaces every entry from entries[0].index on, as storage does. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    this.entries.length = Math.max(0, first - this.snapIndex - 1);
    for (const e of entries) this.entries.push(e);
  }
}
