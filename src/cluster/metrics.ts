// Prometheus metrics of one node, in a registry of its own: several nodes can live in one process
// (tests, `anya-ha up`, the library embedded twice) without their series colliding.
//
// Gauges that mirror live state (role, term, commit and applied index) read the node's status at
// scrape time through collect(), so they can never drift from what /v1/status reports. Events the
// status does not hold (elections, proposals, fsyncs, peer round trips) arrive through the hook
// methods, called by the runtime and cluster layers.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The part of a node's status that the metrics read; NodeStatusView satisfies it. */
export interface MetricsStatusSource {
  role: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
}

/** Outcome of a proposal. A closed set, so that the label's cardinality stays bounded. */
export type ProposalResult = 'committed' | 'rejected' | 'timeout' | 'not_leader';

export interface Metrics {
  readonly registry: Registry;
  /** The Content-Type of text(): the Prometheus text exposition format. */
  readonly contentType: string;
  text(): Promise<string>;
  onLeaderChange(): void;
  onElection(): void;
  observeProposal(seconds: number, result: ProposalResult): void;
  observeFsync(seconds: number): void;
  /** A compaction snapshot was stored (bytes = the state's encoded size) or failed (null). */
  observeSnapshot(bytes: number | null, seconds: number): void;
  setPeerRtt(peer: string, seconds: number): void;
  setPeerReachable(peer: string, reachable: boolean): void;
  /** Entries the peer is behind the leader (null: not the leader, the series is dropped). */
  setPeerLag(peer: string, entries: number | null): void;
  /** Drops a departed peer's series; peer labels are bounded by the membership, not by history. */
  removePeer(peer: string): void;
}

export interface MetricsOptions {
  nodeId: string;
  status: () => MetricsStatusSource;
  /** Bytes of retained past KV versions. */
  historyBytes?: () => number;
}

const prefix = 'anya_ha_';

/** Every role the role gauge reports; the current one is 1, the others 0. */
export const metricRoles = ['leader', 'follower', 'candidate', 'learner', 'unknown'] as const;

// From 100 µs (a local, already-durable commit) to 5 s (beyond any request deadline).
const proposalBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
// From 50 µs (write cache) to 1 s (a disk in trouble).
const fsyncBucketsSeconds = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: opts.nodeId });
  collectDefaultMetrics({ register: registry, prefix });
  const registers = [registry];

  new Gauge({
    name: `${prefix}role`,
    help: 'Current Raft role of this node: 1 for the current role, 0 for the others.',
    labelNames: ['role'],
    registers,
    collect() {
      const current = opts.status().role;
      const known = (metricRoles as readonly string[]).includes(current) ? current : 'unknown';
      for (const role of metricRoles) this.set({ role }, role === known ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}term`,
    help: 'Current Raft term of this node.',
    registers,
    collect() {
      this.set(opts.status().term);
    },
  });
  new Gauge({
    name: `${prefix}commit_index`,
    help: 'Highest log index known committed.',
    registers,
    collect() {
      this.set(opts.status().commitIndex);
    },
  });
  new Gauge({
    name: `${prefix}applied_index`,
    help: 'Highest log index applied to the state machines.',
    registers,
    collect() {
      this.set(opts.status().appliedIndex);
    },
  });

  new Gauge({
    name: `${prefix}kv_history_bytes`,
    help: 'Bytes of retained past KV versions (bounded by historyBytesMax).',
    registers,
    collect() {
      this.set(opts.historyBytes?.() ?? 0);
    },
  });

  const leaderChanges = new Counter({
    name: `${prefix}leader_changes_total`,
    help: 'Times this node saw the leader change (including to no leader).',
    registers,
  });
  const elections = new Counter({
    name: `${prefix}elections_total`,
    help: 'Elections this node started (as candidate).',
    registers,
  });
  const proposals = new Counter({
    name: `${prefix}proposals_total`,
    help: 'Proposals submitted on this node, by outcome.',
    labelNames: ['result'],
    registers,
  });
  const proposalDuration = new Histogram({
    name: `${prefix}proposal_duration_seconds`,
    help: 'Time from proposal to its outcome.',
    labelNames: ['result'],
    buckets: proposalBucketsSeconds,
    registers,
  });
  const fsyncDuration = new Histogram({
    name: `${prefix}fsync_duration_seconds`,
    help: 'Time to make one Ready batch durable.',
    buckets: fsyncBucketsSeconds,
    registers,
  });
  const snapshotBytes = new Gauge({
    name: `${prefix}snapshot_bytes`,
    help: 'Size of the newest compaction snapshot: the encoded size of the state at its index.',
    registers,
  });
  const snapshots = new Counter({
    name: `${prefix}snapshots_total`,
    help: 'Compaction snapshots made, by outcome (stored or failed).',
    labelNames: ['result'],
    registers,
  });
  const snapshotDuration = new Histogram({
    name: `${prefix}snapshot_store_duration_seconds`,
    help: 'Time to make a compaction snapshot durable (file write, fsync, record).',
    buckets: proposalBucketsSeconds,
    registers,
  });
  const peerRtt = new Gauge({
    name: `${prefix}peer_rtt_seconds`,
    help: 'Last measured round-trip time to a peer.',
    labelNames: ['peer'],
    registers,
  });
  const peerReachable = new Gauge({
    name: `${prefix}peer_reachable`,
    help: '1 if the peer is reachable from this node, 0 if not.',
    labelNames: ['peer'],
    registers,
  });

  const peerLag = new Gauge({
    name: `${prefix}peer_lag_entries`,
    help: 'Entries a peer is behind the leader (reported by the leader only).',
    labelNames: ['peer'],
    registers,
  });

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    onLeaderChange: () => leaderChanges.inc(),
    onElection: () => elections.inc(),
    observeProposal(seconds, result) {
      proposals.inc({ result });
      proposalDuration.observe({ result }, seconds);
    },
    observeFsync: (seconds) => fsyncDuration.observe(seconds),
    observeSnapshot(bytes, seconds) {
      snapshots.inc({ result: bytes === null ? 'failed' : 'stored' });
      if (bytes === null) return;
      snapshotBytes.set(bytes);
      snapshotDuration.observe(seconds);
    },
    setPeerRtt: (peer, seconds) => peerRtt.set({ peer }, seconds),
    setPeerReachable: (peer, reachable) => peerReachable.set({ peer }, reachable ? 1 : 0),
    setPeerLag(peer, entries) {
      if (entries === null) peerLag.remove({ peer });
      else peerLag.set({ peer }, entries);
    },
    removePeer(peer) {
      peerRtt.remove({ peer });
      peerReachable.remove({ peer });
      peerLag.remove({ peer });
    },
  };
}
