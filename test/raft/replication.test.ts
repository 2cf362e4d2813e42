import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  RaftCore,
  defaultRaftOptions,
  mulberry32,
  type Entry,
  type Message,
  type Mutations,
  type NodeId,
} from '../../src/raft/index.js';
import { Cluster, encode, ids } from './harness.js';

const [a, b, c, d, e] = ids('a', 'b', 'c', 'd', 'e');
const entry = (index: number, term: number): Entry => ({ index, term, type: 'noop' });

function core(
  id: NodeId,
  entries: Entry[],
  term: number,
  voters: NodeId[],
  opts: Parameters<typeof defaultRaftOptions>[2] = {},
): RaftCore {
  return new RaftCore(defaultRaftOptions(id, mulberry32(5), opts), {
    hardState: { term, votedFor: null, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, config: { voters, learners: [] } }, data: new Uint8Array() },
    entries,
    applied: 0,
  });
}

function drain(n: RaftCore): Message[] {
  const rd = n.ready();
  n.advance(rd);
  return [...rd.messages];
}

const append = (
  prevLogIndex: number,
  prevLogTerm: number,
  entries: Entry[],
  term = 3,
  commit = 0,
): Message => ({
  type: 'append',
  from: b,
  to: a,
  term,
  prevLogIndex,
  prevLogTerm,
  entries,
  commit,
  seq: 7,
  tick: 9,
});

describe('log matching (§5.3)', () => {
  const follower = () => core(a, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], 2, [a, b, c]);

  it('rejects an append whose previous entry is missing, hinting its last index', () => {
    const f = follower();
    f.step(append(6, 2, [entry(7, 3)]));
    const [resp] = drain(f);
    assert.ok(resp.type === 'appendResp');
    assert.equal(resp.reject, true);
    assert.equal(resp.hintIndex, 4);
    assert.equal(resp.seq, 7, 'echoes seq');
    assert.equal(resp.tick, 9, 'echoes tick');
  });

  it('rejects an append whose previous entry has another term, hinting before that term', () => {
    const f = follower();
    f.step(append(4, 3, [entry(5, 3)]));
    const [resp] = drain(f);
    assert.ok(resp.type === 'appendResp' && resp.reject);
    assert.equal(resp.hintIndex, 2, 'the term-2 run starts at 3');
    assert.equal(f.status().lastIndex, 4, 'nothing appended');
  });

  it('truncates from the first conflicting entry and persists from there', () => {
    const f = follower();
    drain(f);
    f.step(append(2, 1, [entry(3, 3)]));
    const rd = f.ready();
    assert.deepEqual(
      rd.entries.map((x) => [x.index, x.term]),
      [[3, 3]],
    );
    f.advance(rd);
    const resp = rd.messages[0];
    assert.ok(resp.type === 'appendResp' && !resp.reject);
    assert.equal(resp.matchIndex, 3);
    assert.equal(f.status().lastIndex, 3);
  });

  it('keeps matching entries (a duplicate or reordered append truncates nothing)', () => {
    const f = follower();
    f.step(append(1, 1, [entry(2, 1), entry(3, 2)], 2));
    drain(f);
    assert.equal(f.status().lastIndex, 4, 'entry 4 survives');
  });

  it('commits min(leader commit, last new entry) and never moves commit backwards', () => {
    const f = follower();
    f.step(append(2, 1, [entry(3, 2)], 2, 100));
    assert.equal(f.status().commit, 3);
    f.step(append(1, 1, [], 2, 1));
    assert.equal(f.status().commit, 3);
  });

  it('with mutation skipPrevCheck the mismatched previous entry is accepted (the check is what guards)', () => {
    const f = core(a, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], 2, [a, b, c], {
      mutations: { skipPrevCheck: true },
    });
    f.step(append(4, 3, [entry(5, 3)]));
    const [resp] = drain(f);
    assert.ok(resp.type === 'appendResp' && !resp.reject);
  });
});

describe('conflicting entries in a cluster (§5.3)', () => {
  it('the uncommitted entries of a deposed leader are replaced by the log of the new leader', () => {
    const cluster = new Cluster([a, b, c]);
    const old = cluster.electLeader();
    cluster.tick(2);
    cluster.isolated.add(old);
    for (let i = 0; i < 3; i++) assert.ok(cluster.node(old).propose(encode(`lost${i}`), `l${i}`).ok);
    cluster.settle();
    const next = cluster.electLeader();
    cluster.propose(next, 'kept');
    cluster.isolated.delete(old);
    cluster.tick(5);
    for (const n of [a, b, c]) assert.deepEqual(cluster.applied.get(n), ['kept'], `${n}`);
    assert.equal(cluster.node(old).status().lastIndex, cluster.node(next).status().lastIndex);
  });
});

describe('commit rule (§3.6.2, Figure 3.7 / "Figure 8")', () => {
  // S1 led term 2 and wrote index 2 on S1, S2. S5 led term 3 and wrote its own index 2. S1 now
  // wins term 4 (votes of S2, S3) and copies its term-2 entry to S3: a majority holds it.
  function figure8(mutations?: Mutations) {
    const voters = ids('s1', 's2', 's3', 's4', 's5');
    const [s1, s2, s3] = voters;
    const leader = core(s1, [entry(1, 1), entry(2, 2)], 3, voters, { preVote: false, mutations });
    leader.advance(leader.ready());
    for (let i = 0; i < 30 && leader.status().role !== 'candidate'; i++) leader.tick();
    for (const v of [s2, s3]) leader.step({ type: 'voteResp', from: v, to: s1, term: 4, reject: false });
    assert.equal(leader.status().role, 'leader');
    leader.advance(leader.ready()); // the term-4 no-op (index 3) is durable on S1 only
    const ack = (from: NodeId, matchIndex: number) =>
      leader.step({
        type: 'appendResp',
        from,
        to: s1,
        term: 4,
        reject: false,
        matchIndex,
        hintIndex: 0,
        seq: 0,
        tick: 0,
      });
    return { leader, ack, s2, s3 };
  }

  it('a leader does not commit an old-term entry by counting replicas', () => {
    const { leader, ack, s2, s3 } = figure8();
    ack(s2, 2);
    ack(s3, 2);
    assert.equal(leader.status().commit, 0, 'index 2 (term 2) is on S1, S2, S3 but not committed');
    ack(s2, 3);
    ack(s3, 3);
    assert.equal(leader.status().commit, 3, 'committing the term-4 entry commits index 2 indirectly');
  });

  it('why: a later leader (S5, last term 3) may still overwrite that index', () => {
    const s2 = core(ids('s2')[0], [entry(1, 1), entry(2, 2)], 4, ids('s1', 's2', 's3', 's4', 's5'));
    s2.step({
      type: 'append',
      from: ids('s5')[0],
      to: ids('s2')[0],
      term: 5,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [entry(2, 3)],
      commit: 0,
      seq: 0,
      tick: 0,
    });
    assert.equal(s2.ready().entries[0].term, 3, 'index 2 replaced');
  });

  it('with mutation commitOldTerms the old-term entry is committed by counting replicas', () => {
    const { leader, ack, s2, s3 } = figure8({ commitOldTerms: true });
    ack(s2, 2);
    ack(s3, 2);
    assert.equal(leader.status().commit, 2);
  });
});

describe('replication', () => {
  it('every node applies the same entries in the same order', () => {
    const cluster = new Cluster([a, b, c, d, e]);
    const leader = cluster.electLeader();
    for (let i = 0; i < 200; i++) cluster.node(leader).propose(encode(`v${i}`), `r${i}`);
    cluster.tick(3);
    const expected = Array.from({ length: 200 }, (_, i) => `v${i}`);
    for (const id of [a, b, c, d, e]) assert.deepEqual(cluster.applied.get(id), expected, `${id}`);
  });

  it('batches appends by entriesPerAppendMax and appendBytesMax', () => {
    const cluster = new Cluster([a, b, c], { overrides: { entriesPerAppendMax: 4, appendBytesMax: 10 } });
    const leader = cluster.electLeader();
    const before = cluster.trace.length;
    for (let i = 0; i < 12; i++) cluster.node(leader).propose(encode('xxxx'), `r${i}`);
    cluster.settle();
    const appends = cluster.trace
      .slice(before)
      .map((s) => JSON.parse(s) as { type: string; entries?: unknown[] })
      .filter((m) => m.type === 'append' && (m.entries?.length ?? 0) > 0);
    assert.ok(
      appends.every((m) => m.entries!.length <= 2),
      '2 x 4 bytes fit in 10, 3 do not',
    );
    cluster.tick(2);
    assert.equal(cluster.applied.get(a)!.length, 12);
  });

  it('a follower that missed entries catches up after the partition heals', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const lagging = [a, b, c].find((n) => n !== leader)!;
    cluster.isolated.add(lagging);
    for (let i = 0; i < 100; i++) cluster.propose(leader, `v${i}`);
    cluster.isolated.delete(lagging);
    cluster.tick(5);
    assert.equal(cluster.applied.get(lagging)!.length, 100);
  });

  it('recovers from a lost pipelined append without a disconnect report', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    cluster.tick(3);
    const f = [a, b, c].find((n) => n !== leader)!;
    let dropped = false;
    cluster.dropIf = (m) => {
      if (!dropped && m.type === 'append' && m.to === f && m.entries.length > 0) return (dropped = true);
      return false;
    };
    cluster.propose(leader, 'lost');
    cluster.tick(25);
    assert.deepEqual(cluster.applied.get(f), ['lost']);
  });

  it('refuses proposals beyond uncommittedEntriesMax with HA_ERR_BUSY', () => {
    const cluster = new Cluster([a, b, c], { overrides: { uncommittedEntriesMax: 5 } });
    const leader = cluster.electLeader();
    for (const n of [a, b, c]) if (n !== leader) cluster.isolated.add(n);
    const results = Array.from({ length: 6 }, (_, i) => cluster.node(leader).propose(encode('x'), `r${i}`));
    assert.ok(results.slice(0, 5).every((r) => r.ok));
    assert.deepEqual(results[5], { ok: false, code: 'HA_ERR_BUSY', leader });
  });

  it('a follower forwards proposals to the leader', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const f = [a, b, c].find((n) => n !== leader)!;
    assert.deepEqual(cluster.node(f).propose(encode('fwd'), 'r1'), { ok: true, forwarded: true });
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(leader), ['fwd']);
  });

  it('a node without a known leader answers HA_ERR_NOT_LEADER', () => {
    const n = core(a, [], 0, [a, b, c]);
    assert.deepEqual(n.propose(encode('x'), 'r'), { ok: false, code: 'HA_ERR_NOT_LEADER', leader: null });
  });
});

describe('snapshots (§5.3 InstallSnapshot)', () => {
  it('a follower behind the compaction point receives and installs the snapshot, then follows the log', () => {
    const cluster = new Cluster([a, b, c]);
    const leader = cluster.electLeader();
    const lagging = [a, b, c].find((n) => n !== leader)!;
    cluster.isolated.add(lagging);
    for (let i = 0; i < 20; i++) cluster.propose(leader, `v${i}`);
    cluster.tick(1);
    const st = cluster.node(leader).status();
    cluster.node(leader).compact(st.applied, encode(JSON.stringify(cluster.applied.get(leader))));
    assert.equal(cluster.node(leader).status().snapshotIndex, st.applied);
    cluster.isolated.delete(lagging);
    cluster.tick(3);
    const fs = cluster.node(lagging).status();
    assert.equal(fs.snapshotIndex, st.applied);
    assert.ok(fs.commit >= st.applied);
    cluster.propose(leader, 'after');
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(lagging), cluster.applied.get(leader));
    assert.equal(cluster.applied.get(lagging)!.length, 21);
  });

  it('compact ignores an index at or below the current snapshot', () => {
    const cluster = new Cluster([a]);
    const leader = cluster.electLeader();
    cluster.propose(leader, 'x');
    cluster.node(a).compact(2, encode('[]'));
    cluster.node(a).compact(1, encode('[]'));
    assert.equal(cluster.node(a).status().snapshotIndex, 2);
  });
});

describe('robustness', () => {
  it('step never throws on arbitrary well-typed messages', () => {
    const rnd = mulberry32(99);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd.next() * xs.length)];
    const num = (max: number) => Math.floor(rnd.next() * max);
    const cluster = new Cluster([a, b, c]);
    cluster.electLeader();
    for (let i = 0; i < 3000; i++) {
      const to = pick([a, b, c]);
      const from = pick([a, b, c, d].filter((x) => x !== to));
      const term = num(6);
      const base = { from, to, term };
      const ents = (prev: number): Entry[] =>
        Array.from({ length: num(3) }, (_, k) => entry(prev + 1 + k, term));
      const prev = num(8);
      const msgs: Message[] = [
        { ...base, type: 'preVote', lastLogIndex: num(8), lastLogTerm: num(6) },
        { ...base, type: 'preVoteResp', reject: rnd.next() < 0.5 },
        { ...base, type: 'vote', lastLogIndex: num(8), lastLogTerm: num(6), transfer: rnd.next() < 0.5 },
        { ...base, type: 'voteResp', reject: rnd.next() < 0.5 },
        {
          ...base,
          type: 'append',
          prevLogIndex: prev,
          prevLogTerm: num(6),
          entries: ents(prev),
          commit: num(10),
          seq: num(5),
          tick: num(50),
        },
        {
          ...base,
          type: 'appendResp',
          reject: rnd.next() < 0.5,
          matchIndex: num(10),
          hintIndex: num(10),
          seq: num(5),
          tick: num(50),
        },
        { ...base, type: 'heartbeat', commit: num(10), seq: num(5), tick: num(50) },
        { ...base, type: 'heartbeatResp', seq: num(5), tick: num(50) },
        { ...base, type: 'timeoutNow' },
        { ...base, type: 'propose', data: encode('f'), requestId: 'q' },
        { ...base, type: 'readIndex', ctx: 'c' },
        { ...base, type: 'readIndexResp', ctx: 'c', index: num(5) - 1 },
      ];
      const m = pick(msgs);
      assert.doesNotThrow(() => {
        cluster.node(to).step(m);
        cluster.node(to).advance(cluster.node(to).ready());
      }, JSON.stringify(m));
      if (i % 50 === 0) cluster.tick();
    }
  });
});
