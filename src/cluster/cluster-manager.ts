// The library API: one node of an anya-ha cluster inside a Node.js service. The agent
// (`anya-ha agent`) is this same class plus an HTTP API server and signal handling.
//
//   const cm = new ClusterManager({ nodeId: 'node-1', discovery: { static: { nodes: [...] } },
//                                   bindAddress: '127.0.0.1:7800', dataDir, tls });
//   await cm.initialize();   // opens storage, checks the config
//   await cm.joinCluster();  // starts the transport and the Raft runtime
//   cm.on('leader-changed', (leaderId, term) => ...);
//   await cm.kv.put('k', 'v', { ifVersion: 0 });
//   await cm.shutdown();     // a leader hands over first
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { HaError } from '../errors.js';
import { mulberry32 } from '../raft/index.js';
import type { FencingToken, NodeId, Prng, RaftStatus, Role } from '../raft/types.js';
import { systemClock } from '../runtime/clock.js';
import { RaftNode, type ReadConsistency } from '../runtime/raft-node.js';
import { encodeKvCommand } from '../state/kv-commands.js';
import { KvStore } from '../state/kv.js';
import type {
  KvCommand,
  KvDeleteOk,
  KvEntry,
  KvHistoryEntry,
  KvListPage,
  KvPutOk,
  KvResult,
  KvTxnOk,
} from '../state/kv-types.js';
import { validateKey, validateValue } from '../state/kv-types.js';
import { SqliteStorage } from '../storage/sqlite.js';
import { TlsTransport } from '../transport/tcp.js';
import { loadTlsFiles } from '../transport/peer-identity.js';
import { configFromOptions, type AgentConfig, type AgentConfigInput } from './config.js';
import { createMetrics, type Metrics } from './metrics.js';
import type {
  ApiBackend,
  Consistency,
  KvEntryView,
  KvHistoryItem,
  MemberStatus,
  NodeStatusView,
} from '../api/backend.js';

export type ClusterManagerOptions = AgentConfigInput & {
  /** A pino logger; by default JSON lines on stderr at `logLevel`. */
  readonly logger?: Logger;
};

export interface ClusterStatus extends NodeStatusView {
  /** Same as leaderId: the name the library API has used from the start. */
  readonly currentLeader: string | null;
  readonly nodes: MemberStatus[];
}

export interface KvPutOptions {
  /** 0: the key must not exist; n: its version must be n. */
  readonly ifVersion?: number;
  readonly timeoutMs?: number;
}

export interface KvGetOptions {
  readonly consistency?: Consistency;
  readonly timeoutMs?: number;
}

export interface KvListPageOptions extends KvGetOptions {
  /** Exclusive cursor: only keys after this one (the last key of the previous page). */
  readonly after?: string;
}

/** How long a leader waits for a successor before it stops anyway on shutdown. */
const shutdownTransferTimeoutMs = 2000;
/** How often per-peer reachability gauges are refreshed from the node's status. */
const peerMetricsIntervalMs = 1000;
/** A follower behind the leader whose match has not moved for this long is logged as an error. */
const peerStuckMs = 10_000;

interface PeerWatch {
  match: number;
  sinceMs: number;
  warnedMs: number;
  lostLogs: number;
  state: string;
}
/** Entries returned by one list call. */
const kvListMax = 10_000;

export class ClusterManager extends EventEmitter {
  readonly config: AgentConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  private node: RaftNode<KvResult> | null = null;
  private readonly kvStore: KvStore;
  private readonly addresses: Map<NodeId, string>;
  private state: 'new' | 'initialized' | 'running' | 'stopped' = 'new';
  private lastLeader: NodeId | null = null;
  /** Leader only: what it last saw of each follower, to say when one is not catching up. */
  private readonly peerWatch = new Map<string, PeerWatch>();
  private reachabilityTimer: NodeJS.Timeout | null = null;
  private transport: TlsTransport | null = null;

  /** Options are validated like node.yaml; the agent passes its already-parsed config. */
  constructor(options: ClusterManagerOptions | { readonly config: AgentConfig; readonly logger?: Logger }) {
    super();
    const { logger } = options;
    if ('config' in options) {
      this.config = options.config;
    } else {
      const { logger: _unused, ...input } = options;
      this.config = configFromOptions(input);
    }
    // stderr, as documented: a library must not write into its host's stdout.
    this.logger =
      logger ??
      pino({ level: this.config.logLevel, base: { node: this.config.nodeId } }, pino.destination(2));
    this.kvStore = new KvStore({ historyBytesMax: this.config.historyBytesMax });
    this.addresses = new Map(this.config.nodes.map((n) => [n.id, n.address]));
    this.metrics = createMetrics({
      nodeId: this.config.nodeId,
      status: () => this.status(),
      historyBytes: () => this.kvStore.historyBytes,
    });
  }

  /** Opens durable state (creating the data dir) and loads the TLS material. */
  async initialize(): Promise<void> {
    if (this.state !== 'new') throw new HaError('HA_ERR_BAD_REQUEST', `initialize() called twice`);
    const cfg = this.config;
    mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    const storage = SqliteStorage.open(join(cfg.dataDir, 'raft.db'));
    const tls = await loadTlsFiles(cfg.tls);
    const peers = new Map(cfg.nodes.filter((n) => n.id !== cfg.nodeId).map((n) => [n.id, n.address]));
    const transport = (this.transport = new TlsTransport({
      nodeId: cfg.nodeId,
      clusterId: cfg.clusterId,
      bindHost: cfg.bindHost,
      bindPort: cfg.bindPort,
      peers,
      tls,
      logger: this.logger.child({ component: 'transport' }),
    }));
    const voters = cfg.nodes.map((n) => n.id).filter((id) => !cfg.learners.includes(id));
    const seed = randomInt(2 ** 31);
    const prng: Prng = mulberry32(seed);
    this.node = new RaftNode<KvResult>({
      id: cfg.nodeId,
      bootstrap: { voters, learners: [...cfg.learners] },
      tickMs: cfg.tickIntervalMs,
      raft: { electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks },
      storage,
      transport,
      stateMachine: this.kvStore,
      clock: systemClock,
      prng,
      bootId: randomBytes(6).toString('hex'),
      snapshotEntries: cfg.snapshotEntries,
      hooks: {
        onPersist: (_b, ms) => this.metrics.observeFsync(ms / 1000),
        onProposalDone: (ms, result) => this.metrics.observeProposal(ms / 1000, result),
        onPeerRtt: (peer, ms) => this.metrics.setPeerRtt(peer, ms / 1000),
        onRoleChange: (role, leader, term) => this.onRoleChange(role, leader, term),
        onCompacted: (index, bytes, ms) => {
          this.metrics.observeSnapshot(bytes, ms / 1000);
          this.logger.info(
            { index, bytes, storeMs: Math.round(ms * 10) / 10 },
            'snapshot stored, log compacted',
          );
        },
        onCompactionFailed: (err) => {
          this.metrics.observeSnapshot(null, 0);
          this.logger.warn({ err: err.message }, 'snapshot for log compaction failed; the log is kept');
        },
      },
    });
    this.state = 'initialized';
  }

  /** Starts the peer listener, connections and the Raft runtime. */
  async joinCluster(): Promise<void> {
    if (this.state === 'new') await this.initialize();
    if (this.state !== 'initialized')
      throw new HaError('HA_ERR_BAD_REQUEST', `joinCluster() in state ${this.state}`);
    await this.node!.start();
    this.state = 'running';
    this.reachabilityTimer = setInterval(() => this.updatePeerMetrics(), peerMetricsIntervalMs);
    this.reachabilityTimer.unref();
    this.logger.info({ bind: `${this.config.bindHost}:${this.config.bindPort}` }, 'node started');
  }

  /** Leaves cleanly: a leader hands leadership to the most up-to-date voter first. */
  async shutdown(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    const node = this.node!;
    // Hand over only if some other voter is reachable: with every peer gone there is nobody to
    // take over, and waiting for one would only delay the exit.
    const st = node.status();
    const voterReachable = st.peers.some(
      (p) => p.voter && p.lastContactTicks * this.config.tickIntervalMs < this.config.electionTimeoutMs,
    );
    if (this.state === 'running' && st.role === 'leader' && voterReachable) {
      try {
        const to = await node.transferLeadership(null, shutdownTransferTimeoutMs);
        this.logger.info({ to }, 'leadership handed over before shutdown');
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'leadership hand-over failed; stopping anyway');
      }
    }
    this.state = 'stopped';
    if (this.reachabilityTimer) clearInterval(this.reachabilityTimer);
    await node.stop();
    this.logger.info('node stopped');
  }

  isLeader(): boolean {
    return this.node?.status().role === 'leader';
  }

  /** The fencing token of this node's current leadership, or null when it does not lead. */
  fencingToken(): FencingToken | null {
    return this.node?.status().fencingToken ?? null;
  }

  async getStatus(): Promise<ClusterStatus> {
    const st = this.status();
    return { ...st, currentLeader: st.leaderId, nodes: st.members };
  }

  status(): NodeStatusView {
    const cfg = this.config;
    if (!this.node) {
      return {
        nodeId: cfg.nodeId,
        role: 'unknown',
        term: 0,
        leaderId: null,
        commitIndex: 0,
        appliedIndex: 0,
        fencingToken: null,
        members: [],
      };
    }
    const st = this.node.status();
    return {
      nodeId: cfg.nodeId,
      role: st.role === 'preCandidate' ? 'candidate' : st.role,
      term: st.term,
      leaderId: st.leader,
      commitIndex: st.commit,
      appliedIndex: this.node.appliedIndex,
      fencingToken: st.fencingToken ? { term: st.fencingToken.term, index: st.fencingToken.index } : null,
      members: this.members(st),
    };
  }

  private members(st: RaftStatus): MemberStatus[] {
    const tickMs = this.config.tickIntervalMs;
    const all = [...st.config.voters, ...st.config.learners];
    return all.map((id) => {
      const isLearner = st.config.learners.includes(id);
      const peer = st.peers.find((p) => p.id === id);
      const self = id === this.config.nodeId;
      const role: MemberStatus['role'] =
        id === st.leader
          ? 'leader'
          : isLearner
            ? 'learner'
            : self
              ? st.role === 'leader'
                ? 'leader'
                : 'follower'
              : st.leader
                ? 'follower'
                : 'unknown';
      const lastContactMs = self ? 0 : peer ? peer.lastContactTicks * tickMs : null;
      return {
        nodeId: id,
        address: this.addresses.get(id) ?? '',
        role,
        reachable:
          self || (peer !== undefined && peer.lastContactTicks * tickMs < this.config.electionTimeoutMs),
        lastContactMs,
        matchIndex: self ? st.lastIndex : (peer?.match ?? null),
        lagEntries: self
          ? st.role === 'leader'
            ? 0
            : null
          : peer
            ? Math.max(0, st.lastIndex - peer.match)
            : null,
        replication: peer?.state ?? null,
        snapshotTransfer: peer?.snapshot
          ? { index: peer.snapshot.index, sentBytes: peer.snapshot.sent, totalBytes: peer.snapshot.total }
          : null,
      };
    });
  }

  private updatePeerMetrics(): void {
    const st = this.node?.status();
    const nowMs = Date.now();
    for (const m of st ? this.members(st) : []) {
      if (m.nodeId === this.config.nodeId) continue;
      this.metrics.setPeerReachable(m.nodeId, m.reachable);
      this.metrics.setPeerLag(m.nodeId, m.lagEntries);
    }
    if (st === undefined || st.role !== 'leader') {
      this.peerWatch.clear();
      return;
    }
    // The leader says when a follower is not being brought up to date: a silent lag is how a
    // replica gets lost for good.
    for (const p of st.peers) {
      const lag = Math.max(0, st.lastIndex - p.match);
      const w = this.peerWatch.get(p.id) ?? {
        match: p.match,
        sinceMs: nowMs,
        warnedMs: 0,
        lostLogs: p.lostLogs,
        state: p.state,
      };
      if (p.lostLogs > w.lostLogs) {
        this.logger.warn(
          { peer: p.id, lostLogs: p.lostLogs },
          'follower no longer holds entries it acknowledged (data directory wiped or restored); bringing it up to date from the start',
        );
      }
      if (p.state === 'snapshot' && w.state !== 'snapshot' && p.snapshot) {
        this.logger.info(
          { peer: p.id, index: p.snapshot.index, bytes: p.snapshot.total },
          'follower is behind the compacted log; sending it a snapshot',
        );
      }
      if (p.match > w.match || lag === 0) {
        w.match = p.match;
        w.sinceMs = nowMs;
      } else if (nowMs - w.sinceMs >= peerStuckMs && nowMs - w.warnedMs >= peerStuckMs) {
        w.warnedMs = nowMs;
        this.logger.error(
          {
            peer: p.id,
            lagEntries: lag,
            match: p.match,
            state: p.state,
            lastContactMs: p.lastContactTicks * this.config.tickIntervalMs,
            snapshot: p.snapshot,
          },
          `follower is not catching up: no progress for ${Math.round((nowMs - w.sinceMs) / 1000)} s`,
        );
      }
      w.lostLogs = p.lostLogs;
      w.state = p.state;
      this.peerWatch.set(p.id, w);
    }
  }

  private onRoleChange(role: Role, leader: NodeId | null, term: number): void {
    this.logger.info({ role, leader, term }, 'role changed');
    if (role === 'candidate') this.metrics.onElection();
    this.emit('role-changed', role, term);
    if (leader !== null && leader !== this.lastLeader) {
      this.lastLeader = leader;
      this.metrics.onLeaderChange();
      this.emit('leader-changed', leader, term);
    }
  }

  private running(): RaftNode<KvResult> {
    if (this.state !== 'running' || !this.node) {
      throw new HaError('HA_ERR_SHUTTING_DOWN', `node ${this.config.nodeId} is not running (${this.state})`);
    }
    return this.node;
  }

  private timeout(ms: number | undefined): number {
    return ms ?? this.config.requestTimeoutMs;
  }

  private async readBarrier(consistency: Consistency, timeoutMs: number): Promise<void> {
    const mode: ReadConsistency = consistency === 'stale' ? 'stale' : 'linearizable';
    await this.running().read(mode, timeoutMs);
  }

  private async write(cmd: KvCommand, timeoutMs: number): Promise<KvPutOk | KvDeleteOk | KvTxnOk> {
    const result = await this.running().propose(encodeKvCommand(cmd), timeoutMs);
    if (result.ok) return result;
    switch (result.code) {
      case 'HA_ERR_VERSION_MISMATCH':
        throw new HaError(
          'HA_ERR_VERSION_MISMATCH',
          `key "${result.key}" has version ${result.currentVersion}`,
          { currentVersion: result.currentVersion },
        );
      case 'HA_ERR_NOT_FOUND':
        throw new HaError('HA_ERR_NOT_FOUND', `key "${result.key}" does not exist`);
      default:
        throw new HaError('HA_ERR_BAD_REQUEST', result.message);
    }
  }

  /** The replicated KV store. Writes go through the leader from any node; reads are
   * linearizable unless `consistency: 'stale'` is asked for. */
  readonly kv = {
    get: async (key: string, opts: KvGetOptions = {}): Promise<KvEntry | null> => {
      checkKey(key);
      await this.readBarrier(opts.consistency ?? 'linearizable', this.timeout(opts.timeoutMs));
      return this.kvStore.get(key);
    },
    put: async (
      key: string,
      value: string,
      opts: KvPutOptions = {},
    ): Promise<{ key: string; version: number; revision: number }> => {
      checkKey(key);
      const bad = validateValue(value);
      if (bad) throw new HaError('HA_ERR_BAD_REQUEST', bad);
      const r = await this.write(
        { op: 'put', key, value, ifVersion: opts.ifVersion },
        this.timeout(opts.timeoutMs),
      );
      if (!('version' in r)) throw new HaError('HA_ERR_INTERNAL', 'put returned no version');
      return { key, version: r.version, revision: r.revision };
    },
    delete: async (key: string, opts: KvPutOptions = {}): Promise<{ key: string; revision: number }> => {
      checkKey(key);
      const r = await this.write(
        { op: 'delete', key, ifVersion: opts.ifVersion },
        this.timeout(opts.timeoutMs),
      );
      return { key, revision: r.revision };
    },
    /**
     * Every key under `prefix`, up to kvListMax (10,000); a prefix holding more is refused with
     * HA_ERR_BAD_REQUEST rather than cut short in silence: page it with listPage.
     */
    list: async (prefix: string, opts: KvGetOptions = {}): Promise<KvEntry[]> => {
      await this.readBarrier(opts.consistency ?? 'linearizable', this.timeout(opts.timeoutMs));
      const page = this.kvStore.listPage(prefix, kvListMax);
      if (page.more) {
        throw new HaError(
          'HA_ERR_BAD_REQUEST',
          `prefix "${prefix}" holds more than ${kvListMax} keys: read it with kv.listPage(prefix, limit, { after })`,
        );
      }
      return page.entries;
    },
    /** One page of at most `limit` keys (1..kvListLimitMax), every entry as of the page's revision. */
    listPage: async (prefix: string, limit: number, opts: KvListPageOptions = {}): Promise<KvListPage> => {
      await this.readBarrier(opts.consistency ?? 'linearizable', this.timeout(opts.timeoutMs));
      // Synchronous after the barrier: the whole page comes from one state.
      return this.kvStore.listPage(prefix, limit, opts.after);
    },
    history: async (key: string, opts: KvGetOptions = {}): Promise<KvHistoryEntry[]> => {
      checkKey(key);
      await this.readBarrier(opts.consistency ?? 'linearizable', this.timeout(opts.timeoutMs));
      return this.kvStore.history(key);
    },
  };

  /** Hands leadership to `to` (or the most up-to-date voter). Callable on any node: a
   * follower cannot transfer, so it answers with the leader's id in the error. */
  async transferLeadership(to?: string, timeoutMs?: number): Promise<string> {
    const target = to === undefined ? null : (to as NodeId);
    if (target !== null && !this.addresses.has(target)) {
      throw new HaError('HA_ERR_BAD_REQUEST', `field "to": unknown node id "${to}"`);
    }
    return this.running().transferLeadership(target, this.timeout(timeoutMs));
  }

  /** The HTTP API's view of this node. */
  apiBackend(): ApiBackend {
    const ms = (deadlineMs: number): number => Math.max(1, deadlineMs - Date.now());
    const view = (e: KvEntry): KvEntryView => ({
      key: e.key,
      value: e.value,
      version: e.version,
      revision: e.revision,
    });
    return {
      status: () => this.status(),
      isLeader: () => this.isLeader(),
      kvGet: async (key, consistency, deadlineMs) => {
        const e = await this.kv.get(key, { consistency, timeoutMs: ms(deadlineMs) });
        return e ? view(e) : null;
      },
      kvPut: (key, value, ifVersion, deadlineMs) =>
        this.kv.put(key, value, { ifVersion, timeoutMs: ms(deadlineMs) }),
      kvDelete: (key, ifVersion, deadlineMs) => this.kv.delete(key, { ifVersion, timeoutMs: ms(deadlineMs) }),
      kvList: async (prefix, { limit, after }, consistency, deadlineMs) => {
        const page = await this.kv.listPage(prefix, limit, { after, consistency, timeoutMs: ms(deadlineMs) });
        return { items: page.entries.map(view), more: page.more, revision: page.revision };
      },
      kvHistory: async (key, deadlineMs): Promise<KvHistoryItem[]> =>
        (await this.kv.history(key, { timeoutMs: ms(deadlineMs) })).map((h) => ({
          version: h.version,
          value: h.deleted ? null : h.value,
          revision: h.revision,
          deleted: h.deleted,
        })),
      transferLeader: async (to, deadlineMs) => ({
        leaderId: await this.transferLeadership(to, ms(deadlineMs)),
      }),
    };
  }
}

function checkKey(key: string): void {
  const bad = validateKey(key);
  if (bad) throw new HaError('HA_ERR_BAD_REQUEST', bad);
}
