// A tiny in-memory cluster for the raft core tests: it performs each Ready as the runtime would
// (persist trivially, send, apply, advance), delivers messages in FIFO order, and can cut links.

import {
  RaftCore,
  defaultRaftOptions,
  mulberry32,
  nodeId,
  type ClusterConfig,
  type Entry,
  type Message,
  type NodeId,
  type RaftOptions,
  type ProposalFailure,
  type ReadFailure,
  type ReadState,
} from '../../src/raft/index.js';

export const ids = (...names: string[]): NodeId[] => names.map(nodeId);

export const encode = (s: string): Uint8Array => new TextEncoder().encode(s);
export const decode = (b: Uint8Array | undefined): string => (b ? new TextDecoder().decode(b) : '');

export interface ClusterOptions {
  seed?: number;
  learners?: NodeId[];
  overrides?: Partial<RaftOptions>;
  /** Per-node overrides (e.g. mutations on one node). */
  perNode?: Record<string, Partial<RaftOptions>>;
}

export class Cluster {
  readonly nodes = new Map<NodeId, RaftCore>();
  /** The applied state machine of each node: the data of applied normal entries, in order. */
  readonly applied = new Map<NodeId, string[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  readonly proposalFailures = new Map<NodeId, ProposalFailure[]>();
  readonly readFailures = new Map<NodeId, ReadFailure[]>();
  /** Every message sent, for determinism checks. */
  readonly trace: string[] = [];
  /** Nodes whose traffic is dropped both ways. */
  readonly isolated = new Set<NodeId>();
  /** Nodes that neither tick nor process anything (crashed). */
  readonly stopped = new Set<NodeId>();
  /** Extra drop rule; return true to drop. */
  dropIf: ((m: Message) => boolean) | null = null;
  private queue: Message[] = [];

  constructor(voters: NodeId[], opts: ClusterOptions = {}) {
    const config: ClusterConfig = { voters, learners: opts.learners ?? [] };
    const seed = opts.seed ?? 1;
    [...voters, ...(opts.learners ?? [])].forEach((id, i) => this.add(id, config, seed * 7919 + i, opts));
  }

  add(id: NodeId, config: ClusterConfig, seed: number, opts: ClusterOptions = {}): RaftCore {
    const options = defaultRaftOptions(id, mulberry32(seed), { ...opts.overrides, ...opts.perNode?.[id] });
    const core = new RaftCore(options, {
      hardState: { term: 0, votedFor: null, commit: 0 },
      snapshot: { meta: { index: 0, term: 0, config }, data: new Uint8Array() },
      entries: [],
      applied: 0,
    });
    this.nodes.set(id, core);
    this.applied.set(id, []);
    this.readStates.set(id, []);
    this.proposalFailures.set(id, []);
    this.readFailures.set(id, []);
    return core;
  }

  node(id: NodeId | string): RaftCore {
    const n = this.nodes.get(id as NodeId);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private cut(m: Message): boolean {
    return (
      this.isolated.has(m.from) ||
      this.isolated.has(m.to) ||
      this.stopped.has(m.to) ||
      !this.nodes.has(m.to) ||
      (this.dropIf?.(m) ?? false)
    );
  }

  /** Performs every pending Ready and delivers every message until the cluster is quiet. */
  settle(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round++) {
      let busy = false;
      for (const [id, core] of this.nodes) {
        if (this.stopped.has(id) || !core.hasReady()) continue;
        busy = true;
        const rd = core.ready();
        if (rd.snapshot) this.applied.set(id, JSON.parse(decode(rd.snapshot.data)) as string[]);
        for (const m of rd.messages) {
          this.trace.push(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? decode(v) : v)));
          if (!this.cut(m)) this.queue.push(m);
        }
        for (const e of rd.committedEntries) this.apply(id, e);
        this.readStates.get(id)!.push(...rd.readStates);
        this.readFailures.get(id)!.push(...rd.readFailures);
        this.proposalFailures.get(id)!.push(...rd.proposalFailures);
        core.advance(rd);
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        if (!this.cut(m)) this.node(m.to).step(m);
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error('cluster did not settle');
  }

  private apply(id: NodeId, e: Entry): void {
    if (e.type === 'normal') this.applied.get(id)!.push(decode(e.data));
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const [id, core] of this.nodes) if (!this.stopped.has(id)) core.tick();
      this.settle();
    }
  }

  /** Ticks until `pred` holds; returns the ticks it took, or throws after ticksMax. */
  tickUntil(pred: () => boolean, ticksMax = 500): number {
    for (let t = 0; t <= ticksMax; t++) {
      this.settle();
      if (pred()) return t;
      this.tick();
    }
    throw new Error('condition not reached');
  }

  leaders(): NodeId[] {
    return [...this.nodes]
      .filter(([id, n]) => !this.stopped.has(id) && n.status().role === 'leader')
      .map(([id]) => id);
  }

  /** The unique live leader, waiting for one if needed. */
  electLeader(ticksMax = 500): NodeId {
    this.tickUntil(() => this.leaders().filter((l) => !this.isolated.has(l)).length === 1, ticksMax);
    return this.leaders().find((l) => !this.isolated.has(l))!;
  }

  propose(leader: NodeId, data: string): void {
    const res = this.node(leader).propose(encode(data), data);
    if (!res.ok) throw new Error(`propose failed: ${res.code}`);
    this.settle();
  }
}
