// The public library surface of anya-ha. Everything else is internal.
export { ClusterManager } from './cluster/cluster-manager.js';
export type {
  ClusterManagerOptions,
  ClusterStatus,
  KvGetOptions,
  KvListPageOptions,
  KvPutOptions,
} from './cluster/cluster-manager.js';
export { HaError, errorTable, type HaErrorCode } from './errors.js';
export { compareFencingTokens } from './raft/index.js';
export type { FencingToken, NodeId, Role } from './raft/types.js';
export type { AgentConfig, AgentConfigInput } from './cluster/config.js';
