import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { leaseTicksFor } from '../../src/raft/index.js';
import { Cluster, ids } from './harness.js';

const [a, b, c] = ids('a', 'b', 'c');
const others = (leader: string) => [a, b, c].filter((n) => n !== leader);

describe('ReadIndex (§6.4)', () => {
  it('a read is confirmed with the commit index once a quorum acknowledged the heartbeat', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.propose(leader, 'x');
    const commit = cluster.node(leader).status().commit;
    assert.deepEqual(cluster.node(leader).readIndex('r1'), { ok: true });
    assert.deepEqual(cluster.readStates.get(leader), [], 'not confirmed before any acknowledgement');
    cluster.settle();
    assert.deepEqual(cluster.readStates.get(leader), [{ ctx: 'r1', index: commit }]);
  });

  it('reads that arrive before the next Ready share one heartbeat round', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.propose(leader, 'x');
    const heartbeatsBefore = cluster.trace.filter((t) => t.includes('"type":"heartbeat"')).length;
    for (let i = 0; i < 20; i++) assert.deepEqual(cluster.node(leader).readIndex(`r${i}`), { ok: true });
    cluster.settle();
    const heartbeats =
      cluster.trace.filter((t) => t.includes('"type":"heartbeat"')).length - heartbeatsBefore;
    assert.equal(heartbeats, 2, 'one round: one heartbeat to each follower');
    assert.equal(cluster.readStates.get(leader)!.length, 20, 'all 20 confirmed by it');
  });

  it('a leader cut off from the quorum never confirms, and fails the read when it steps down', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    for (const n of others(leader)) cluster.isolated.add(n);
    assert.deepEqual(cluster.node(leader).readIndex('r1'), { ok: true });
    cluster.tickUntil(() => cluster.node(leader).status().role !== 'leader');
    assert.deepEqual(cluster.readStates.get(leader), []);
    assert.deepEqual(cluster.readFailures.get(leader), [{ ctx: 'r1', code: 'HA_ERR_NOT_LEADER' }]);
  });

  it('one acknowledgement plus the leader is a quorum of three', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.isolated.add(others(leader)[0]);
    cluster.node(leader).readIndex('r1');
    cluster.settle();
    assert.equal(cluster.readStates.get(leader)!.length, 1);
  });

  it('a new leader holds reads until it has committed an entry of its term', () => {
    const cluster = new Cluster([a, b, c], { overrides: { preVote: false } });
    cluster.dropIf = (m) => m.type === 'appendResp';
    cluster.node(a).campaign();
    cluster.settle();
    assert.equal(cluster.node(a).status().role, 'leader');
    const noopIndex = cluster.node(a).status().fencingToken!.index;
    assert.ok(cluster.node(a).status().commit < noopIndex);
    assert.deepEqual(cluster.node(a).readIndex('early'), { ok: true });
    cluster.settle();
    assert.deepEqual(cluster.readStates.get(a), [], 'held back although heartbeats were acknowledged');
    cluster.dropIf = null;
    cluster.tick(2);
    assert.deepEqual(cluster.readStates.get(a), [{ ctx: 'early', index: noopIndex }]);
  });

  it('a follower forwards the read and serves it with the leader index', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.propose(leader, 'x');
    const f = others(leader)[0];
    assert.deepEqual(cluster.node(f).readIndex('fr'), { ok: true });
    cluster.settle();
    assert.deepEqual(cluster.readStates.get(f), [{ ctx: 'fr', index: cluster.node(leader).status().commit }]);
  });

  it('a node without a leader refuses; pending reads are bounded by pendingReadsMax', () => {
    const lonely = new Cluster([a, b, c]);
    assert.deepEqual(lonely.node(a).readIndex('x'), { ok: false, code: 'HA_ERR_NOT_LEADER', leader: null });
    const cluster = new Cluster([a, b, c], { overrides: { pendingReadsMax: 2 } });
    const leader = cluster.electLeader();
    for (const n of others(leader)) cluster.isolated.add(n);
    cluster.node(leader).readIndex('1');
    cluster.node(leader).readIndex('2');
    assert.deepEqual(cluster.node(leader).readIndex('3'), { ok: false, code: 'HA_ERR_BUSY', leader });
  });

  it('a single voter confirms reads at once', () => {
    const cluster = new Cluster([a]);
    cluster.electLeader();
    cluster.node(a).readIndex('solo');
    cluster.settle();
    assert.equal(cluster.readStates.get(a)!.length, 1);
  });
});

describe('leader lease (§6.4.1)', () => {
  // Leases are served only without fast failover (a follower that sees a reset votes at once).
  const noFastFailover = { fastFailover: false } as const;

  it('leaseTicksFor keeps the lease shorter than the election timeout by the drift margin', () => {
    assert.equal(leaseTicksFor(10, 0.1), 8);
    assert.equal(leaseTicksFor(100, 0.05), 94);
    assert.equal(leaseTicksFor(1, 0.5), 0);
    for (const e of [2, 5, 10, 50])
      for (const d of [0.01, 0.1, 0.3]) assert.ok(leaseTicksFor(e, d) < e * (1 - d));
  });

  it('is valid while a quorum acknowledges, and expires within leaseTicks of isolation', () => {
    const cluster = new Cluster([a, b, c], { overrides: noFastFailover });
    const leader = cluster.electLeader();
    cluster.tick(3);
    const res = cluster.node(leader).leaseRead();
    assert.deepEqual(res, { ok: true, index: cluster.node(leader).status().commit });
    cluster.isolated.add(leader);
    const leaseTicks = 8; // leaseTicksFor(10, 0.1)
    const ticks = cluster.tickUntil(() => !cluster.node(leader).leaseRead().ok);
    assert.ok(ticks <= leaseTicks, `lease expired after ${ticks} ticks`);
    // No one else can have been elected while it was valid: followers were still sticky.
    assert.deepEqual(
      cluster.leaders().filter((l) => l !== leader),
      [],
    );
  });

  it('a leader forgets a disconnected peer, so connection resets cannot keep the lease alive', () => {
    const cluster = new Cluster([a, b, c], { overrides: noFastFailover });
    const leader = cluster.electLeader();
    cluster.tick(3);
    assert.equal(cluster.node(leader).status().leaseValid, true);
    for (const n of others(leader)) {
      cluster.isolated.add(n);
      cluster.node(leader).peerDisconnected(n);
    }
    assert.equal(cluster.node(leader).status().leaseValid, false);
  });

  it('a follower has no lease', () => {
    const cluster = new Cluster([a, b, c], { overrides: noFastFailover });
    const leader = cluster.electLeader();
    cluster.tick(3);
    const f = others(leader)[0];
    assert.deepEqual(cluster.node(f).leaseRead(), { ok: false, code: 'HA_ERR_NOT_LEADER', leader });
  });

  for (const leaseFactor of [1, 5]) {
    it(`an isolated leader's lease ${leaseFactor === 1 ? 'has expired' : 'is still valid (mutation leaseFactor, what the simulator must catch)'} when another leader is elected`, () => {
      const cluster = new Cluster([a, b, c], {
        overrides: { ...noFastFailover, checkQuorum: false, mutations: { leaseFactor } },
      });
      const leader = cluster.electLeader();
      cluster.tick(3);
      cluster.isolated.add(leader);
      cluster.tickUntil(() => cluster.leaders().length === 2);
      assert.equal(cluster.node(leader).status().leaseValid, leaseFactor !== 1);
    });
  }
});
