// Safety invariants checked while the simulation runs (after every event, or at the event that
// could break them). Numbering follows the thesis' Figure 3.2 properties where they apply.
import type { Entry, FencingToken, Index, NodeId, Term } from '../src/raft/types.js';
import { compareFencingTokens } from '../src/raft/index.js';
import type { PersistBatch } from '../src/storage/types.js';

export interface Violation {
  readonly invariant: string;
  readonly message: string;
  readonly atMs: number;
}

/** A node's durable log, mirrored from its storage writes. */
class LogMirror {
  snapIndex: Index = 0;
  snapTerm: Term = 0;
  terms: Term[] = []; // terms[i] = term of entry snapIndex + 1 + i

  termAt(i: Index): Term | null {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex) return null; // compacted
    return this.terms[i - this.snapIndex - 1] ?? null;
  }

  get lastIndex(): Index {
    return this.snapIndex + this.terms.length;
  }

  installSnapshot(index: Index, term: Term): void {
    const keep =
      index < this.lastIndex && this.termAt(index) === term ? this.terms.slice(index - this.snapIndex) : [];
    this.snapIndex = index;
    this.snapTerm = term;
    this.terms = keep;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    this.terms.length = Math.max(0, first - this.snapIndex - 1);
    for (const e of entries) this.terms.push(e.term);
  }
}

const fingerprint = (e: Entry): string => `${e.type}:${e.requestId ?? ''}:${e.data?.length ?? 0}`;

interface NodeView {
  readonly id: NodeId;
  readonly role: string;
  readonly term: Term;
  readonly commit: Index;
  readonly fencingToken: FencingToken | null;
}

export class InvariantChecker {
  violation: Violation | null = null;
  private readonly mirrors = new Map<NodeId, LogMirror>();
  /** (index, term) -> fingerprint and previous term: the log matching property. */
  private readonly entriesSeen = new Map<string, { fp: string; prevTerm: Term | null }>();
  private readonly applied = new Map<Index, { term: Term; fp: string; by: NodeId }>();
  /** index -> [entry term, lowest term of a leader that committed it]. */
  private readonly committed = new Map<Index, { term: Term; inTerm: Term }>();
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  private readonly tokens = new Map<Term, FencingToken>();
  private readonly durable = new Map<NodeId, { term: Term; commit: Index }>();
  private readonly memory = new Map<NodeId, { term: Term; commit: Index }>();
  private readonly leaderCommitSeen = new Map<NodeId, Index>();
  private readonly completenessChecked = new Set<string>();
  maxCommit: Index = 0;

  constructor(private readonly nowMs: () => number) {}

  private fail(invariant: string, message: string): void {
    if (!this.violation) this.violation = { invariant, message, atMs: this.nowMs() };
  }

  mirror(id: NodeId): LogMirror {
    let m = this.mirrors.get(id);
    if (!m) {
      m = new LogMirror();
      this.mirrors.set(id, m);
    }
    return m;
  }

  /** A node's storage accepted a batch (it is durable now). */
  onPersist(id: NodeId, batch: PersistBatch, view: NodeView): void {
    const m = this.mirror(id);
    if (batch.snapshot) m.installSnapshot(batch.snapshot.meta.index, batch.snapshot.meta.term);
    for (const e of batch.entries) {
      const prevTerm =
        e.index - 1 === 0 ? 0 : e.index === batch.entries[0]!.index ? m.termAt(e.index - 1) : null;
      const key = `${e.index}:${e.term}`;
      const seen = this.entriesSeen.get(key);
      const fp = fingerprint(e);
      if (seen) {
        if (seen.fp !== fp) {
          this.fail('log matching', `${id} holds entry ${key} = ${fp}, another node holds ${seen.fp}`);
        } else if (prevTerm !== null && seen.prevTerm !== null && seen.prevTerm !== prevTerm) {
          this.fail(
            'log matching',
            `${id}: entry ${key} follows term ${prevTerm}, elsewhere term ${seen.prevTerm}`,
          );
        }
      } else {
        this.entriesSeen.set(key, { fp, prevTerm });
      }
    }
    m.append(batch.entries);
    for (let i = 1; i < batch.entries.length; i++) {
      const a = batch.entries[i - 1]!;
      const b = batch.entries[i]!;
      if (b.index !== a.index + 1 || b.term < a.term)
        this.fail('log matching', `${id} persisted a malformed batch`);
    }
    if (batch.hardState) {
      const prev = this.durable.get(id);
      const hs = batch.hardState;
      if (prev && (hs.term < prev.term || hs.commit < prev.commit)) {
        this.fail(
          'monotonic term and commit',
          `${id} persisted term ${hs.term} commit ${hs.commit} after term ${prev.term} commit ${prev.commit}`,
        );
      }
      this.durable.set(id, { term: hs.term, commit: hs.commit });
    }
    if (view.role === 'leader') this.checkLeaderCompleteness(id, view.term);
  }

  /** Leader completeness (§3.6.3): entries committed before term T are in T's leader's log. */
  private checkLeaderCompleteness(id: NodeId, term: Term): void {
    const key = `${id}@${term}`;
    if (this.completenessChecked.has(key)) return;
    this.completenessChecked.add(key);
    const m = this.mirror(id);
    for (const [index, c] of this.committed) {
      if (c.inTerm >= term || index <= m.snapIndex) continue;
      const t = m.termAt(index);
      if (t !== c.term) {
        this.fail(
          'leader completeness',
          `${id}, leader of term ${term}, lacks entry ${index} (term ${c.term}) committed in term ${c.inTerm}`,
        );
        return;
      }
    }
  }

  /** State machine safety (§3.6.3): no two nodes apply different entries at one index. */
  onApply(id: NodeId, e: Entry): void {
    const fp = fingerprint(e);
    const prev = this.applied.get(e.index);
    if (prev && (prev.term !== e.term || prev.fp !== fp)) {
      this.fail(
        'state machine safety',
        `${id} applied ${e.index}:${e.term} (${fp}) but ${prev.by} applied ${e.index}:${prev.term} (${prev.fp})`,
      );
    }
    if (!prev) this.applied.set(e.index, { term: e.term, fp, by: id });
  }

  /** A new incarnation starts from durable state: forget in-memory progress of the old one. */
  onRestart(id: NodeId): void {
    this.memory.delete(id);
    this.leaderCommitSeen.delete(id);
  }

  /** Called after every simulation event, for every running node. */
  observe(v: NodeView): void {
    const prev = this.memory.get(v.id);
    if (prev && (v.term < prev.term || v.commit < prev.commit)) {
      this.fail(
        'monotonic term and commit',
        `${v.id} went from term ${prev.term} commit ${prev.commit} to ${v.term}/${v.commit}`,
      );
    }
    this.memory.set(v.id, { term: v.term, commit: v.commit });
    if (v.commit > this.maxCommit) this.maxCommit = v.commit;
    if (v.role !== 'leader') return;
    // Election safety (§3.6.3): at most one leader per term.
    const other = this.leaderOfTerm.get(v.term);
    if (other !== undefined && other !== v.id) {
      this.fail('election safety', `${other} and ${v.id} are both leaders of term ${v.term}`);
    }
    if (other === undefined) {
      this.leaderOfTerm.set(v.term, v.id);
      this.checkFencingToken(v);
    }
    // Record what this leader has committed, and in which term.
    const seen = this.leaderCommitSeen.get(v.id) ?? 0;
    if (v.commit > seen) {
      const m = this.mirror(v.id);
      for (let i = Math.max(seen + 1, m.snapIndex + 1); i <= v.commit; i++) {
        const t = m.termAt(i);
        if (t === null) continue;
        const c = this.committed.get(i);
        if (!c) this.committed.set(i, { term: t, inTerm: v.term });
        else if (c.term !== t) {
          this.fail(
            'state machine safety',
            `index ${i} committed with term ${c.term}, and by ${v.id} with term ${t}`,
          );
        } else if (v.term < c.inTerm) this.committed.set(i, { term: t, inTerm: v.term });
      }
      this.leaderCommitSeen.set(v.id, v.commit);
    }
  }

  /** Fencing tokens strictly increase from one leadership to the next (ordered by term). */
  private checkFencingToken(v: NodeView): void {
    const tk = v.fencingToken;
    if (!tk) {
      this.fail('fencing token order', `${v.id} leads term ${v.term} without a fencing token`);
      return;
    }
    if (tk.term !== v.term)
      this.fail('fencing token order', `${v.id} leads term ${v.term} with token term ${tk.term}`);
    for (const [term, other] of this.tokens) {
      const c = compareFencingTokens(other, tk);
      if ((term < v.term && c >= 0) || (term > v.term && c <= 0)) {
        this.fail(
          'fencing token order',
          `token (${tk.term},${tk.index}) of term ${v.term} is not ordered against (${other.term},${other.index}) of term ${term}`,
        );
      }
    }
    this.tokens.set(v.term, tk);
  }

  /** A lease read is stale if any node has already committed past the lease holder. */
  onLeaseRead(id: NodeId, index: Index): void {
    if (index < this.maxCommit) {
      this.fail(
        'lease read freshness',
        `${id} granted a lease read at commit ${index}, but index ${this.maxCommit} is committed`,
      );
    }
  }
}
