// The rules behind four fixes: the lease against fast failover and restarts (§6.4.1 with
// §4.2.3), reads a runtime gave up on (§6.4), and proposals a leader refuses or already holds.
// Each test names the rule; the `mutations` variants show the broken behaviour it replaced.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RaftCore, defaultRaftOptions, mulberry32 } from '../../src/raft/index.js';
import type { Message, NodeId, RaftOptions } from '../../src/raft/types.js';
import { Cluster, ids } from './harness.js';

const [a, b, c] = ids('a', 'b', 'c');
const others = (leader: string): NodeId[] => [a, b, c].filter((n) => n !== leader);
const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('the lease and fast failover (§6.4.1, §4.2.3)', () => {
  it('a leader never serves lease reads while fast failover is on: a reset seen by one follower alone lets it vote at once', () => {
    const cluster = new Cluster([a, b, c], { overrides: { fastFailover: true } });
    const leader = cluster.electLeader();
    cluster.tick(3);
    assert.equal(cluster.node(leader).leaseRead().ok, false);
    assert.equal(cluster.node(leader).status().leaseValid, false);
  });

  for (const broken of [false, true]) {
    it(`a follower's one-sided reset elects a second leader ${broken ? 'while the first still serves by lease (mutation leaseWithFastFailover)' : 'and the first has no lease to serve from'}`, () => {
      const cluster = new Cluster([a, b, c], {
        overrides: { fastFailover: true, checkQuorum: true, mutations: { leaseWithFastFailover: broken } },
      });
      const leader = cluster.electLeader();
      cluster.tick(3);
      const [f, g] = others(leader);
      // g cannot reach the leader; only f sees a reset of its connection to the leader (the
      // leader sees nothing, and f's last acknowledgement still counts for its lease).
      cluster.dropIf = (m: Message) => (m.from === leader && m.to === g) || (m.from === g && m.to === leader);
      cluster.node(f).peerDisconnected(leader);
      cluster.node(g).campaign();
      cluster.settle();
      assert.equal(cluster.node(g).status().role, 'leader', 'f voted at once for g');
      assert.equal(cluster.node(leader).status().role, 'leader', 'the old leader has not heard yet');
      assert.equal(cluster.node(leader).leaseRead().ok, broken);
    });
  }

  it('without fast failover a follower that sees its leader connection drop keeps refusing votes until its election timeout', () => {
    const cluster = new Cluster([a, b, c], { overrides: { fastFailover: false } });
    const leader = cluster.electLeader();
    cluster.tick(3);
    const [f, g] = others(leader);
    cluster.node(f).peerDisconnected(leader);
    // g campaigns at once; f still honours its promise to the leader and does not help.
    cluster.isolated.add(leader);
    cluster.node(g).campaign();
    cluster.settle();
    assert.notEqual(cluster.node(g).status().role, 'leader');
    assert.equal(cluster.node(f).status().leader, leader);
  });

  for (const broken of [false, true]) {
    it(`a voter that may serve leases refuses votes for electionTicks after it starts ${broken ? '(mutation noBootStickiness grants at once)' : ''}`, () => {
      const opts: RaftOptions = defaultRaftOptions(a, mulberry32(1), {
        fastFailover: false,
        mutations: { noBootStickiness: broken },
      });
      // A restarted voter: it may have acknowledged a leader's heartbeat just before it crashed,
      // and that leader counts the acknowledgement for its lease.
      const voter = new RaftCore(opts, {
        hardState: { term: 3, votedFor: b, commit: 0 },
        snapshot: {
          meta: { index: 0, term: 0, config: { voters: [a, b, c], learners: [] } },
          data: new Uint8Array(),
        },
        entries: [],
        applied: 0,
      });
      const ask = (): Message | undefined => {
        voter.step({ type: 'preVote', from: c, to: a, term: 4, lastLogIndex: 0, lastLogTerm: 0 });
        const rd = voter.ready();
        voter.advance(rd);
        return rd.messages.find((m) => m.type === 'preVoteResp');
      };
      const first = ask();
      assert.ok(first && first.type === 'preVoteResp');
      assert.equal(first.reject, !broken);
      for (let i = 0; i < opts.electionTicks; i++) voter.tick();
      const later = ask();
      assert.ok(later && later.type === 'preVoteResp');
      assert.equal(later.reject, false, 'after electionTicks the promise has run out');
    });
  }
});

describe('reads a runtime gave up on (§6.4)', () => {
  it('a cancelled forwarded read frees its place in the bounded queue', () => {
    const cluster = new Cluster([a, b, c], { overrides: { pendingReadsMax: 2 } });
    const leader = cluster.electLeader();
    const f = others(leader)[0];
    // The readIndex messages are lost (a link reconnecting): no answer will ever come.
    cluster.dropIf = (m) => m.type === 'readIndex';
    assert.deepEqual(cluster.node(f).readIndex('r1'), { ok: true });
    assert.deepEqual(cluster.node(f).readIndex('r2'), { ok: true });
    assert.equal(cluster.node(f).readIndex('r3').ok, false, 'the queue is full');
    cluster.settle();
    cluster.node(f).cancelRead('r1');
    cluster.node(f).cancelRead('r2');
    cluster.dropIf = null;
    assert.deepEqual(cluster.node(f).readIndex('r4'), { ok: true });
    cluster.settle();
    assert.deepEqual(
      cluster.readStates.get(f)!.map((r) => r.ctx),
      ['r4'],
    );
  });
});

describe('proposals at a leader', () => {
  it('a leader refusing a forwarded proposal during a transfer tells the follower at once', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const [f, target] = others(leader);
    cluster.isolated.add(target); // the transfer cannot complete
    assert.equal(cluster.node(leader).transferLeadership(target).ok, true);
    assert.deepEqual(cluster.node(f).propose(encode('x'), 'req-1'), { ok: true, forwarded: true });
    cluster.settle();
    assert.deepEqual(cluster.proposalFailures.get(f), [
      { requestId: 'req-1', code: 'HA_ERR_TRANSFER_IN_PROGRESS' },
    ]);
  });

  it('a request id the leader already holds uncommitted is not appended twice', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    for (const n of others(leader)) cluster.isolated.add(n); // nothing commits
    const before = cluster.node(leader).status().lastIndex;
    cluster.node(leader).propose(encode('x'), 'req-1');
    cluster.node(leader).propose(encode('x'), 'req-1');
    assert.equal(cluster.node(leader).status().lastIndex, before + 1);
  });

  it('uncommitted entries are bounded in bytes as well as in count, and one entry always fits', () => {
    const cluster = new Cluster([a, b, c], { overrides: { uncommittedBytesMax: 1000 } });
    const leader = cluster.electLeader();
    for (const n of others(leader)) cluster.isolated.add(n);
    const big = new Uint8Array(1500);
    assert.equal(cluster.node(leader).propose(big, 'big').ok, true, 'one oversize entry is admitted');
    const r = cluster.node(leader).propose(new Uint8Array(10), 'small');
    assert.deepEqual(r, { ok: false, code: 'HA_ERR_BUSY', leader });
  });
});

describe('membership changes (§4.1)', () => {
  for (const broken of [false, true]) {
    it(`a new leader refuses a membership change until it has committed an entry of its term${broken ? ' (mutation confChangeBeforeTermCommit accepts it)' : ''}`, () => {
      const cluster = new Cluster([a, b, c], {
        overrides: { mutations: { confChangeBeforeTermCommit: broken } },
      });
      const old = cluster.electLeader();
      // The old leader is cut off; the next one wins its votes, but none of its appends arrive,
      // so its no-op stays uncommitted.
      cluster.isolated.add(old);
      cluster.dropIf = (m) => m.type === 'append' || m.type === 'appendResp';
      cluster.tickUntil(() => cluster.leaders().some((l) => l !== old));
      const next = cluster.leaders().find((l) => l !== old)!;
      const r = cluster.node(next).proposeConfChange({ type: 'addLearner', node: ids('d')[0] }, 'cc-1');
      if (broken) assert.equal(r.ok, true);
      else assert.deepEqual(r, { ok: false, code: 'HA_ERR_CONFIG_CHANGE_PENDING', leader: next });
    });
  }
});
