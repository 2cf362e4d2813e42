// Safety invariants checked while the simulation runs (after every event, or at the event that
// could break them). Numbering follows the thesis' Figure 3.2 properties where they apply.
import type { Entry, FencingToken, Index, Message, NodeId, Term } from '../src/raft/types.js';
import { compareFencingTokens } from '../src/raft/index.js';
import type { PersistBatch } from '../src/storage/types.js';
import { LogMirror } from './log-mirror.js';

export interface Violation {
  readonly invariant: string;
  readonly message: string;
  readonly atMs: number;
}

const fingerprint = (e: Entry): string => `${e.type}:${e.requestId ?? ''}:${e.data?.length ?? 0}`;
const tokenText = (t: FencingToken): string => `(${t.term},${t.index})`;

export interface NodeView {
  readonly id: NodeId;
  readonly role: string;
  readonly term: Term;
  readonly commit: Index;
  readonly fencingToken: FencingToken | null;
  readonly voters: readonly NodeId[];
  /** The node's own clock. */
  readonly nowMs: number;
  /** True while its event loop is frozen (paused or stalled). */
  readonly frozen: boolean;
  /** Node-clock time its event loop last ran again after a freeze or a clock step. */
  readonly lastUnfrozenAtMs: number;
}

export interface CheckerOptions {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly checkQuorum: boolean;
  /** Bound on how late a timer fires (see SimNodeConfig.timerLatenessMaxUs). */
  readonly timerLatenessMaxMs: number;
}

/** One leadership: a node leading a term. */
interface Leadership {
  readonly id: NodeId;
  readonly term: Term;
  readonly token: FencingToken;
  /** Node-clock time it was first seen leading. */
  readonly sinceMs: number;
  /** Check-quorum: node-clock time of the last response from each voter in this term. */
  readonly heardMs: Map<NodeId, number>;
  /** Set until the token's entry has been seen in the leader's log and checked. */
  tokenUnchecked: boolean;
  /** The voters it counts, and since when (node clock): a change is judged at the next tick. */
  voters: string;
  votersSinceMs: number;
}

export class InvariantChecker {
  violation: Violation | null = null;
  /** Durable logs, from completed writes. */
  private readonly mirrors = new Map<NodeId, LogMirror>();
  /** In-memory logs as handed to storage (durable log plus the write in flight). */
  private readonly submitted = new Map<NodeId, LogMirror>();
  /** (index, term) -> fingerprint and previous term: the log matching property. */
  private readonly entriesSeen = new Map<string, { fp: string; prevTerm: Term | null }>();
  private readonly applied = new Map<Index, { term: Term; fp: string; by: NodeId }>();
  /** index -> [entry term, lowest term of a leader that committed it]. */
  private readonly committed = new Map<Index, { term: Term; inTerm: Term }>();
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  private readonly tokens = new Map<Term, FencingToken>();
  /** The highest token whose leadership committed an entry of its term or served a lease read. */
  private activeToken: { token: FencingToken; id: NodeId; why: string } | null = null;
  /** Each node's current leadership, while it leads. */
  private readonly leadership = new Map<NodeId, Leadership>();
  private readonly durable = new Map<NodeId, { term: Term; votedFor: NodeId | null; commit: Index }>();
  private readonly memory = new Map<NodeId, { term: Term; commit: Index }>();
  private readonly leaderCommitSeen = new Map<NodeId, Index>();
  private readonly completenessChecked = new Set<string>();
  maxCommit: Index = 0;
  /** How many times each check ran with something to check (a check that never runs proves nothing). */
  readonly checksRun = { sends: 0, tokens: 0, commits: 0, commitDurability: 0, quorumChecks: 0 };

  constructor(
    private readonly nowMs: () => number,
    private readonly opts: CheckerOptions,
  ) {}

  private fail(invariant: string, message: string): void {
    if (!this.violation) this.violation = { invariant, message, atMs: this.nowMs() };
  }

  /** A node's durable log. */
  mirror(id: NodeId): LogMirror {
    let m = this.mirrors.get(id);
    if (!m) {
      m = new LogMirror();
      this.mirrors.set(id, m);
    }
    return m;
  }

  /** A node's log as it handed it to storage. */
  private memLog(id: NodeId): LogMirror {
    let m = this.submitted.get(id);
    if (!m) {
      m = this.mirror(id).clone();
      this.submitted.set(id, m);
    }
    return m;
  }

  /** A node started a durable write (it completes later, or is lost in a crash). */
  onSubmit(id: NodeId, batch: PersistBatch): void {
    const m = this.memLog(id);
    if (batch.snapshot) m.replaceWithSnapshot(batch.snapshot.meta.index, batch.snapshot.meta.term);
    m.append(batch.entries);
    const l = this.leadership.get(id);
    if (l?.tokenUnchecked) this.checkTokenEntry(l);
  }

  /** Local compaction: synchronous and durable at once. */
  onCompact(id: NodeId, index: Index, term: Term): void {
    this.mirror(id).installSnapshot(index, term);
    this.memLog(id).installSnapshot(index, term);
  }

  /** A node's storage completed a batch (it is durable now). */
  onPersist(id: NodeId, batch: PersistBatch, view: { role: string; term: Term }): void {
    const m = this.mirror(id);
    if (batch.snapshot) m.replaceWithSnapshot(batch.snapshot.meta.index, batch.snapshot.meta.term);
    // Log matching (§3.6.3): an (index, term) pair names one entry and one predecessor term,
    // checked for every entry of the batch.
    let prevTerm: Term | null = batch.entries.length > 0 ? m.termAt(batch.entries[0]!.index - 1) : null;
    for (const e of batch.entries) {
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
        } else if (seen.prevTerm === null && prevTerm !== null) seen.prevTerm = prevTerm;
      } else {
        this.entriesSeen.set(key, { fp, prevTerm });
      }
      prevTerm = e.term;
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
      this.durable.set(id, { term: hs.term, votedFor: hs.votedFor, commit: hs.commit });
    }
    if (view.role === 'leader') this.checkLeaderCompleteness(id, view.term);
  }

  /**
   * Sent only what is durable (the Ready contract, DESIGN §3): a message may promise only what
   * the sender's storage has completed — its term, its vote, the entries it acknowledges.
   */
  onSend(m: Message): void {
    this.checksRun.sends++;
    const d = this.durable.get(m.from) ?? { term: 0, votedFor: null, commit: 0 };
    const what = `${m.from} sent ${m.type} of term ${m.term} to ${m.to}`;
    // A preVote carries the term it would campaign in, and a granted preVoteResp echoes it:
    // neither changes any term.
    const proposedTerm = m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject);
    if (!proposedTerm && m.term > d.term) {
      this.fail('sent only what is durable', `${what}, but its durable term is ${d.term}`);
    }
    // A vote granted in term T is safe once storage says "T, voted for X" or any later term: a
    // restarted node can then never grant another candidate of T.
    if (
      m.type === 'voteResp' &&
      !m.reject &&
      d.term <= m.term &&
      (d.term !== m.term || d.votedFor !== m.to)
    ) {
      this.fail(
        'sent only what is durable',
        `${what} granting its vote, but its durable vote is ${d.votedFor ?? 'none'} in term ${d.term}`,
      );
    }
    // An acknowledgement of an older term than the sender's durable one was queued before the
    // sender moved on (a new leader's append truncated the entry before it was written). Only a
    // new term truncates, and it is durable before anything is sent. It is harmless: a learner
    // does not count for commit, and a voter that acked an entry in term T before adopting T+1
    // cannot have that entry truncated by T+1's leader unless no voter of that leader's
    // quorum had acked it first — so the old leader cannot gather a quorum with it.
    const staleAck = m.type === 'appendResp' && m.term < d.term;
    if (m.type === 'appendResp' && !m.reject && !staleAck && this.mirror(m.from).lastIndex < m.matchIndex) {
      this.fail(
        'sent only what is durable',
        `${what} acknowledging index ${m.matchIndex}, but its durable log ends at ${this.mirror(m.from).lastIndex}`,
      );
    }
  }

  /** A node's runtime is handed a message: contact for check-quorum. */
  onReceive(id: NodeId, m: Message, nowMs: number): void {
    const l = this.leadership.get(id);
    if (!l || m.term !== l.term) return;
    // Every answer of this term the core counts as contact (leader.ts noteContact).
    if (m.type === 'appendResp' || m.type === 'heartbeatResp' || m.type === 'snapshotChunkResp') {
      l.heardMs.set(m.from, nowMs);
    }
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
    this.leadership.delete(id);
    this.submitted.set(id, this.mirror(id).clone());
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
    if (v.role !== 'leader') {
      this.leadership.delete(v.id);
      return;
    }
    // Election safety (§3.6.3): at most one leader per term.
    const other = this.leaderOfTerm.get(v.term);
    if (other !== undefined && other !== v.id) {
      this.fail('election safety', `${other} and ${v.id} are both leaders of term ${v.term}`);
    }
    if (other === undefined) this.leaderOfTerm.set(v.term, v.id);
    let l: Leadership | null = this.leadership.get(v.id) ?? null;
    if (!l || l.term !== v.term) {
      l = this.beginLeadership(v);
      if (!l) return;
    }
    this.checkCommits(v, l);
    this.checkQuorumTimeliness(v, l);
  }

  private beginLeadership(v: NodeView): Leadership | null {
    this.leadership.delete(v.id);
    const tk = v.fencingToken;
    if (!tk) {
      this.fail('fencing token order', `${v.id} leads term ${v.term} without a fencing token`);
      return null;
    }
    if (tk.term !== v.term)
      this.fail('fencing token order', `${v.id} leads term ${v.term} with token term ${tk.term}`);
    const known = this.tokens.get(v.term);
    if (known && compareFencingTokens(known, tk) !== 0)
      this.fail('fencing token order', `term ${v.term} has tokens ${tokenText(known)} and ${tokenText(tk)}`);
    // Tokens strictly increase with the term of their leadership.
    for (const [term, t] of this.tokens) {
      const c = compareFencingTokens(t, tk);
      if ((term < v.term && c >= 0) || (term > v.term && c <= 0)) {
        this.fail(
          'fencing token order',
          `token ${tokenText(tk)} of term ${v.term} is not ordered against ${tokenText(t)} of term ${term}`,
        );
      }
    }
    this.tokens.set(v.term, tk);
    const l: Leadership = {
      id: v.id,
      term: v.term,
      token: tk,
      sinceMs: v.nowMs,
      heardMs: new Map(),
      tokenUnchecked: true,
      voters: v.voters.join(','),
      votersSinceMs: v.nowMs,
    };
    this.leadership.set(v.id, l);
    this.checkTokenEntry(l);
    return l;
  }

  /** The token is the (term, index) of the leadership's first entry, its no-op (§8). */
  private checkTokenEntry(l: Leadership): void {
    const m = this.memLog(l.id);
    const e = m.entryAt(l.token.index);
    if (!e) return; // not handed to storage yet: checked when it is
    l.tokenUnchecked = false;
    this.checksRun.tokens++;
    const prevTerm = m.termAt(l.token.index - 1);
    if (e.term !== l.term || e.type !== 'noop' || (prevTerm !== null && prevTerm >= l.term)) {
      this.fail(
        'fencing token order',
        `${l.id}'s token ${tokenText(l.token)} of term ${l.term} names entry ${e.index}:${e.term} (${e.type}) after term ${prevTerm ?? '?'}, not its first entry`,
      );
    }
  }

  /**
   * Every commit index a leader reaches is checked against its in-memory log: a leader may
   * commit an entry a quorum of others holds before its own write of it is durable.
   */
  private checkCommits(v: NodeView, l: Leadership): void {
    const seen = this.leaderCommitSeen.get(v.id) ?? 0;
    if (v.commit <= seen) return;
    const m = this.memLog(v.id);
    let ownTerm = false;
    for (let i = Math.max(seen + 1, m.snapIndex + 1); i <= v.commit; i++) {
      this.checksRun.commits++;
      const t = m.termAt(i);
      if (t === null) {
        this.fail('state machine safety', `${v.id} committed index ${i}, beyond its log (${m.lastIndex})`);
        return;
      }
      if (t === v.term) ownTerm = true;
      // Committed means durable on a majority of the voters (§3.6): for each index this
      // leadership commits by its own count — from its first entry on; an earlier index it
      // learned as a follower was counted by an earlier leader, under that one's configuration,
      // and is held wherever this leadership's first entry is — count the voters whose storage
      // has completed the entry (or a snapshot covering it).
      // The configuration may have changed since the last check (a change applied in the same
      // batch of events as the commit): a commit counted under either is valid.
      const durableIn = (voters: readonly string[]): number =>
        voters.filter((w) => {
          const d = this.mirror(w as NodeId);
          return i <= d.snapIndex || d.termAt(i) === t;
        }).length;
      const previous = l.voters.split(',').filter((w) => w !== '');
      const majorityIn = (voters: readonly string[]): boolean =>
        voters.length > 0 && durableIn(voters) >= Math.floor(voters.length / 2) + 1;
      if (i >= l.token.index) this.checksRun.commitDurability++;
      if (i >= l.token.index && !majorityIn(v.voters) && !majorityIn(previous)) {
        const durable = durableIn(v.voters);
        this.fail(
          'commit durability',
          `${v.id} committed index ${i} (term ${t}) in term ${v.term}, but only ${durable} of its ${v.voters.length} voters hold it durably (` +
            v.voters
              .map((w) => {
                const d = this.mirror(w);
                return `${w}: durable to ${d.lastIndex}, snapshot ${d.snapIndex}, term at ${i} ${d.termAt(i) ?? '-'}`;
              })
              .join('; ') +
            ')',
        );
        return;
      }
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
    // Fencing: once a higher token is in use, a lower leadership commits nothing new. It may
    // still learn that entries it replicated before were committed (late acknowledgements), but
    // those precede the higher leadership's first entry, which follows every committed entry.
    const a = this.activeToken;
    if (a && compareFencingTokens(l.token, a.token) < 0 && v.commit >= a.token.index) {
      this.fail(
        'fencing token order',
        `${v.id} (token ${tokenText(l.token)}) committed up to ${v.commit} after ${a.id}'s token ${tokenText(a.token)} ${a.why}`,
      );
    }
    if (ownTerm) this.noteActive(l, 'committed an entry of its term');
  }

  private noteActive(l: Leadership, why: string): void {
    if (this.activeToken && compareFencingTokens(this.activeToken.token, l.token) >= 0) return;
    this.activeToken = { token: l.token, id: l.id, why };
  }

  /**
   * Check-quorum (§6.2): a running leader that has heard from no quorum of voters for
   * electionTicks of its own ticks steps down at its next ordinary tick. The slack covers that
   * tick (two ticks for rounding) and timer lateness; after a freeze or a clock step the first
   * tick is a catch-up tick that decides nothing, so the bound runs from when the loop runs again.
   */
  private checkQuorumTimeliness(v: NodeView, l: Leadership): void {
    if (!this.opts.checkQuorum || v.frozen) return;
    const voters = v.voters.join(',');
    if (voters !== l.voters) {
      l.voters = voters;
      l.votersSinceMs = v.nowMs;
    }
    const heard: number[] = [];
    for (const p of v.voters) {
      if (p === v.id) heard.push(v.nowMs);
      else {
        if (!l.heardMs.has(p)) l.heardMs.set(p, v.nowMs); // new in the configuration: counts as heard
        heard.push(l.heardMs.get(p)!);
      }
    }
    if (heard.length === 0) return;
    heard.sort((a, b) => b - a);
    const quorum = Math.floor(v.voters.length / 2) + 1;
    const quorumHeardMs = Math.max(heard[quorum - 1] ?? Number.NEGATIVE_INFINITY, l.sinceMs);
    const { tickMs, electionTicks, timerLatenessMaxMs } = this.opts;
    const slackMs = 2 * tickMs + 2 * timerLatenessMaxMs + 1;
    const deadlineMs =
      Math.max(quorumHeardMs + electionTicks * tickMs, v.lastUnfrozenAtMs, l.votersSinceMs) + slackMs;
    this.checksRun.quorumChecks++;
    if (v.nowMs > deadlineMs) {
      this.fail(
        'check-quorum timeliness',
        `${v.id} still leads term ${v.term} ${(v.nowMs - quorumHeardMs).toFixed(1)} ms (its clock) after it last heard from a quorum`,
      );
    }
  }

  /** A lease read is stale if any node has already committed past the lease holder. */
  /**
   * Lease exclusivity (§6.4.1): while a leader holds a valid lease — one it would serve a read
   * from at this instant, by its own clock — no node leads a later term. Checked after every
   * event over every running node, so a broken promise is caught whether or not a client
   * happened to read in the window. `holders` are the running, unfrozen leaders with a lease.
   */
  checkLeaseExclusivity(
    holders: readonly { id: NodeId; term: Term }[],
    leaders: readonly { id: NodeId; term: Term }[],
  ): void {
    for (const h of holders) {
      const later = leaders.find((l) => l.term > h.term);
      if (later) {
        this.fail(
          'lease exclusivity',
          `${h.id} holds a lease in term ${h.term} while ${later.id} leads term ${later.term}`,
        );
        return;
      }
    }
  }

  onLeaseRead(id: NodeId, index: Index): void {
    if (index < this.maxCommit) {
      this.fail(
        'lease read freshness',
        `${id} granted a lease read at commit ${index}, but index ${this.maxCommit} is committed`,
      );
    }
    const l = this.leadership.get(id);
    if (!l) return;
    const a = this.activeToken;
    if (a && compareFencingTokens(l.token, a.token) < 0) {
      this.fail(
        'fencing token order',
        `${id} (token ${tokenText(l.token)}) served a lease read after ${a.id}'s token ${tokenText(a.token)} ${a.why}`,
      );
    }
    this.noteActive(l, 'served a lease read');
  }
}
