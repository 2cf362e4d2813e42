import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  compareFencingTokens,
  type ConfChange,
  type FencingToken,
  type NodeId,
} from '../../src/raft/index.js';
import { Cluster, ids } from './harness.js';

const [a, b, c, d, e] = ids('a', 'b', 'c', 'd', 'e');

function changeAndCommit(cluster: Cluster, leader: NodeId, change: ConfChange): void {
  const res = cluster.node(leader).proposeConfChange(change, `cc-${change.type}-${change.node}`);
  assert.ok(res.ok, JSON.stringify(res));
  cluster.tick(3);
}

describe('learners (§4.2.1)', () => {
  it('a learner receives the log but never campaigns, and does not count for commit', () => {
    const cluster = new Cluster([a, b, c], { learners: [d] });
    const leader = cluster.electLeader();
    cluster.propose(leader, 'x');
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(d), ['x']);
    // Cut the learner off for long: it stays a follower.
    cluster.isolated.add(d);
    cluster.tick(100);
    assert.equal(cluster.node(d).status().role, 'follower');
    cluster.isolated.delete(d);
    // Leader plus learner are not a quorum of three voters.
    for (const v of [a, b, c]) if (v !== leader) cluster.isolated.add(v);
    const commit = cluster.node(leader).status().commit;
    cluster.node(leader).propose(new Uint8Array([1]), 'y');
    cluster.settle();
    assert.equal(cluster.node(leader).status().commit, commit);
    const peer = cluster
      .node(leader)
      .status()
      .peers.find((p) => p.id === d)!;
    assert.equal(peer.voter, false);
    assert.ok(peer.match > commit, 'the learner did acknowledge');
  });
});

describe('single-server membership changes (§4.1)', () => {
  it('adds a voter, refusing a second change while the first is uncommitted', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.tick(2);
    cluster.add(d, { voters: [a, b, c], learners: [] }, 77);
    const first = cluster.node(leader).proposeConfChange({ type: 'addVoter', node: d }, 'cc1');
    assert.ok(first.ok);
    // In effect on the leader at once, before commit.
    assert.deepEqual(cluster.node(leader).status().config.voters, [a, b, c, d]);
    assert.deepEqual(cluster.node(leader).proposeConfChange({ type: 'addLearner', node: e }, 'cc2'), {
      ok: false,
      code: 'HA_ERR_CONFIG_CHANGE_PENDING',
      leader,
    });
    cluster.tick(3);
    for (const n of [a, b, c, d]) assert.deepEqual(cluster.node(n).status().config.voters, [a, b, c, d]);
    cluster.propose(leader, 'after');
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(d), ['after']);
  });

  it('promotes a learner, demotes and removes voters one at a time', () => {
    const cluster = new Cluster([a, b, c], { learners: [d] });
    const leader = cluster.electLeader();
    cluster.tick(2);
    const follower = [a, b, c].find((n) => n !== leader)!;
    changeAndCommit(cluster, leader, { type: 'addVoter', node: d });
    assert.deepEqual(cluster.node(leader).status().config, { voters: [a, b, c, d], learners: [] });
    changeAndCommit(cluster, leader, { type: 'demote', node: follower });
    assert.deepEqual(cluster.node(leader).status().config.learners, [follower]);
    changeAndCommit(cluster, leader, { type: 'remove', node: follower });
    const config = cluster.node(leader).status().config;
    assert.equal(config.voters.length, 3);
    assert.deepEqual(config.learners, []);
    assert.equal(
      cluster
        .node(leader)
        .status()
        .peers.some((p) => p.id === follower),
      false,
    );
  });

  it('refuses no-op changes and changes that leave no voter', () => {
    const cluster = new Cluster([a]);
    cluster.electLeader();
    const bad = { ok: false, code: 'HA_ERR_BAD_REQUEST', leader: a };
    assert.deepEqual(cluster.node(a).proposeConfChange({ type: 'addVoter', node: a }, 'x'), bad);
    assert.deepEqual(cluster.node(a).proposeConfChange({ type: 'remove', node: b }, 'x'), bad);
    assert.deepEqual(cluster.node(a).proposeConfChange({ type: 'remove', node: a }, 'x'), bad);
    assert.deepEqual(cluster.node(a).proposeConfChange({ type: 'demote', node: a }, 'x'), bad);
  });

  it('followers answer HA_ERR_NOT_LEADER with a hint', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const f = [a, b, c].find((n) => n !== leader)!;
    assert.deepEqual(cluster.node(f).proposeConfChange({ type: 'addLearner', node: d }, 'x'), {
      ok: false,
      code: 'HA_ERR_NOT_LEADER',
      leader,
    });
  });

  it('a removed leader keeps leading until the change commits, then steps down (§4.2.2)', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.tick(2);
    const res = cluster.node(leader).proposeConfChange({ type: 'remove', node: leader }, 'bye');
    assert.ok(res.ok);
    assert.equal(cluster.node(leader).status().role, 'leader', 'still leading while uncommitted');
    cluster.settle();
    assert.notEqual(cluster.node(leader).status().role, 'leader');
    const rest = [a, b, c].filter((n) => n !== leader);
    for (const n of rest)
      assert.ok(cluster.node(n).status().commit >= (res.ok && !res.forwarded ? res.index : 0));
    const next = cluster.electLeader();
    assert.ok(rest.includes(next));
    cluster.propose(next, 'z');
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(rest[0]), ['z']);
  });
});

describe('leadership transfer (§3.10)', () => {
  it('the target becomes leader in the next term, with no other election', () => {
    const cluster = new Cluster([a, b, c, d, e]);
    const leader = cluster.electLeader();
    cluster.tick(2);
    const term = cluster.node(leader).status().term;
    const target = [a, b, c, d, e].find((n) => n !== leader)!;
    assert.deepEqual(cluster.node(leader).transferLeadership(target), { ok: true, to: target });
    cluster.settle();
    assert.deepEqual(cluster.leaders(), [target]);
    for (const n of cluster.nodes.values()) assert.equal(n.status().term, term + 1);
  });

  it('brings a lagging target up to date first, refusing proposals meanwhile', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const target = [a, b, c].find((n) => n !== leader)!;
    cluster.isolated.add(target);
    cluster.propose(leader, 'x');
    cluster.isolated.delete(target);
    assert.deepEqual(cluster.node(leader).transferLeadership(null), {
      ok: true,
      to: [a, b, c].find((n) => n !== leader && n !== target)!,
    });
    cluster.settle();
    // A second transfer to the lagging node:
    const now = cluster.leaders()[0];
    cluster.tick(1);
    assert.deepEqual(cluster.node(now).transferLeadership(target), { ok: true, to: target });
    assert.deepEqual(cluster.node(now).propose(new Uint8Array(), 'p'), {
      ok: false,
      code: 'HA_ERR_TRANSFER_IN_PROGRESS',
      leader: now,
    });
    cluster.settle();
    assert.deepEqual(cluster.leaders(), [target]);
    assert.deepEqual(cluster.applied.get(target), ['x']);
  });

  it('refuses self, non-voters, and a second transfer; aborts after electionTicks', () => {
    const cluster = new Cluster([a, b, c], { learners: [d] });
    const leader = cluster.electLeader();
    const node = cluster.node(leader);
    assert.equal(node.transferLeadership(leader).ok, false);
    assert.deepEqual(node.transferLeadership(d), { ok: false, code: 'HA_ERR_BAD_REQUEST', leader });
    const target = [a, b, c].find((n) => n !== leader)!;
    cluster.stopped.add(target); // never answers
    cluster.isolated.add(target);
    assert.ok(node.transferLeadership(target).ok);
    assert.deepEqual(node.transferLeadership(target), {
      ok: false,
      code: 'HA_ERR_TRANSFER_IN_PROGRESS',
      leader,
    });
    cluster.tick(10);
    assert.equal(node.status().transferee, null);
    assert.ok(node.propose(new Uint8Array(), 'p').ok);
  });
});

describe('fencing tokens', () => {
  it('compare lexicographically by (term, index)', () => {
    assert.ok(compareFencingTokens({ term: 2, index: 1 }, { term: 1, index: 9 }) > 0);
    assert.ok(compareFencingTokens({ term: 2, index: 3 }, { term: 2, index: 4 }) < 0);
    assert.equal(compareFencingTokens({ term: 2, index: 3 }, { term: 2, index: 3 }), 0);
  });

  it('increase across leaderships and exist only while leader', () => {
    const cluster = new Cluster([a, b, c]);
    const tokens: FencingToken[] = [];
    for (let round = 0; round < 4; round++) {
      const leader = cluster.electLeader();
      tokens.push(cluster.node(leader).status().fencingToken!);
      for (const n of [a, b, c]) if (n !== leader) assert.equal(cluster.node(n).status().fencingToken, null);
      cluster.isolated.add(leader);
      cluster.tickUntil(() => cluster.node(leader).status().role !== 'leader');
      cluster.isolated.delete(leader);
    }
    for (let i = 1; i < tokens.length; i++) assert.ok(compareFencingTokens(tokens[i], tokens[i - 1]) > 0);
  });
});
