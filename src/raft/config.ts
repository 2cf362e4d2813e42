// Membership (thesis §4.1, §4.2). One server changes per entry, so the old and new majorities
// always overlap. A configuration takes effect on a server as soon as its entry is in that
// server's log, committed or not (§4.1); truncating the entry reverts to the previous one.

import type { ClusterConfig, ConfChange, NodeId } from './types.js';

export function isVoter(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id);
}

export function isMember(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

/** Voters then learners, in configuration order (deterministic iteration). */
export function members(config: ClusterConfig): NodeId[] {
  return [...config.voters, ...config.learners];
}

/**
 * The configuration after `change`, or null when the change is a no-op, does not fit the node's
 * current role, or would leave no voter (the caller answers HA_ERR_BAD_REQUEST).
 */
export function applyConfChange(config: ClusterConfig, change: ConfChange): ClusterConfig | null {
  const n = change.node;
  const voter = config.voters.includes(n);
  const learner = config.learners.includes(n);
  const without = (list: readonly NodeId[]): NodeId[] => list.filter((x) => x !== n);
  let next: ClusterConfig;
  switch (change.type) {
    case 'addLearner':
      if (voter || learner) return null;
      next = { voters: [...config.voters], learners: [...config.learners, n] };
      break;
    case 'addVoter':
      if (voter) return null;
      next = { voters: [...config.voters, n], learners: without(config.learners) };
      break;
    case 'demote':
      if (!voter) return null;
      next = { voters: without(config.voters), learners: [...config.learners, n] };
      break;
    case 'remove':
      if (!voter && !learner) return null;
      next = { voters: without(config.voters), learners: without(config.learners) };
      break;
  }
  return next.voters.length === 0 ? null : next;
}
