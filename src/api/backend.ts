// What the HTTP API needs from a node. The ClusterManager implements it; the server talks to
// nothing else. Any node accepts any request: forwarding to the leader happens behind this
// interface (through Raft), never in HTTP, so a client may use whichever node it reaches.
//
// Contract for implementers:
// - Every async method honours `deadlineMs` (an absolute Date.now() value): it settles by then,
//   with HA_ERR_TIMEOUT if the outcome is unknown. The server also stops waiting at the deadline.
// - Failures a client can cause or must handle are HaError values (src/errors.ts); anything else
//   thrown is reported as HA_ERR_INTERNAL.

export type Consistency = 'linearizable' | 'stale';

export interface MemberStatus {
  nodeId: string;
  address: string;
  role: 'leader' | 'follower' | 'candidate' | 'learner' | 'unknown';
  reachable: boolean;
  /** Milliseconds since this node last heard from the member; null if never. */
  lastContactMs: number | null;
  /** Highest log index known replicated on the member (leader only); null elsewhere. */
  matchIndex: number | null;
  /** Entries the member is behind the leader's last index (leader only); null elsewhere. */
  lagEntries: number | null;
  /** How the leader replicates to it (leader only): probe, replicate, or snapshot; null elsewhere. */
  replication: 'probe' | 'replicate' | 'snapshot' | null;
  /** While a snapshot is being sent to it: its index and the bytes confirmed of the total. */
  snapshotTransfer: { index: number; sentBytes: number; totalBytes: number } | null;
}

export interface NodeStatusView {
  nodeId: string;
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  /** The (term, index) that established the current leadership, if known. */
  fencingToken: { term: number; index: number } | null;
  members: MemberStatus[];
}

export interface KvEntryView {
  key: string;
  value: string;
  version: number;
  revision: number;
}

export interface KvHistoryItem {
  version: number;
  /** null for a deletion. */
  value: string | null;
  revision: number;
  deleted: boolean;
}

/** Which page of a listing to read. */
export interface KvListRange {
  /** Most items to return; 1..listLimitMax (validated by the server). */
  limit: number;
  /** Exclusive cursor: only keys after this one. Absent: from the first key with the prefix. */
  after?: string;
}

export interface KvListPageView {
  /** Keys with the prefix after the cursor, in key order; at most `limit`. */
  items: KvEntryView[];
  /** True when more keys with the prefix follow the last item. */
  more: boolean;
  /** The revision of the one state every item was read from. */
  revision: number;
}

export interface ApiBackend {
  status(): NodeStatusView;
  isLeader(): boolean;
  /** null when the key does not exist. */
  kvGet(key: string, consistency: Consistency, deadlineMs: number): Promise<KvEntryView | null>;
  /** Throws HA_ERR_VERSION_MISMATCH (details.currentVersion), HA_ERR_TIMEOUT, HA_ERR_NO_QUORUM, ... */
  kvPut(
    key: string,
    value: string,
    ifVersion: number | undefined,
    deadlineMs: number,
  ): Promise<{ key: string; version: number; revision: number }>;
  /** Throws HA_ERR_NOT_FOUND or HA_ERR_VERSION_MISMATCH, besides the usual availability errors. */
  kvDelete(
    key: string,
    ifVersion: number | undefined,
    deadlineMs: number,
  ): Promise<{ key: string; revision: number }>;
  /** One page, read from one state (one read barrier, one synchronous read of the store). */
  kvList(
    prefix: string,
    range: KvListRange,
    consistency: Consistency,
    deadlineMs: number,
  ): Promise<KvListPageView>;
  kvHistory(key: string, deadlineMs: number): Promise<KvHistoryItem[]>;
  /** `to` undefined: the leader picks the most up-to-date voter. */
  transferLeader(to: string | undefined, deadlineMs: number): Promise<{ leaderId: string }>;
}
