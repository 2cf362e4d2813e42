// Snapshots in chunks (thesis §5.3: InstallSnapshot carries `offset` and `done`; here each chunk
// also carries the CRC-32 of the prefix it completes). The rules: the leader has one chunk in
// flight per follower and resumes from what the follower says it holds; the follower keeps
// chunks only in order, and installs only a whole snapshot whose checksum matches.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32 } from '../../src/raft/crc32.js';
import type { Message, SnapshotChunkMsg } from '../../src/raft/index.js';
import { Cluster, encode, ids } from './harness.js';

const [a, b, c] = ids('a', 'b', 'c');

/** A 3-node cluster with one follower cut off while the leader writes and compacts. */
function lagging(
  chunkBytes: number,
  writes = 30,
): { cluster: Cluster; leader: typeof a; behind: typeof a; size: number } {
  const cluster = new Cluster([a, b, c], { overrides: { snapshotChunkBytes: chunkBytes } });
  const leader = cluster.electLeader();
  const behind = [a, b, c].find((n) => n !== leader)!;
  cluster.isolated.add(behind);
  for (let i = 0; i < writes; i++) cluster.propose(leader, `value-${i}`);
  cluster.tick(1);
  const st = cluster.node(leader).status();
  const data = encode(JSON.stringify(cluster.applied.get(leader)));
  cluster.node(leader).compact(st.applied, data);
  return { cluster, leader, behind, size: data.length };
}

const chunks = (m: Message): m is SnapshotChunkMsg => m.type === 'snapshotChunk';

/**
 * The harness asks its drop rule twice per message (when sent and when delivered); `observe`
 * sees each message once, when sent, and may then drop or alter it.
 */
function observe(cluster: Cluster, fn: (m: Message) => boolean): void {
  const seen = new WeakSet<Message>();
  const verdicts = new WeakMap<Message, boolean>();
  cluster.dropIf = (m) => {
    if (!seen.has(m)) {
      seen.add(m);
      verdicts.set(m, fn(m));
    }
    return verdicts.get(m)!;
  };
}

describe('snapshots in chunks (§5.3)', () => {
  it('the core CRC-32 is zlib’s, also when continued across pieces', () => {
    const data = encode('The quick brown fox jumps over the lazy dog, '.repeat(50));
    assert.equal(crc32(data), zlibCrc32(data));
    assert.equal(crc32(data.subarray(100), crc32(data.subarray(0, 100))), zlibCrc32(data));
  });

  it('a follower receives the snapshot chunk by chunk, one in flight, and installs it when whole', () => {
    const { cluster, leader, behind, size } = lagging(16);
    let inFlight = 0;
    let inFlightMax = 0;
    const seen: number[] = [];
    observe(cluster, (m) => {
      if (chunks(m) && m.to === behind) {
        seen.push(m.offset);
        inFlightMax = Math.max(inFlightMax, ++inFlight);
      }
      if (m.type === 'snapshotChunkResp' || (m.type === 'appendResp' && m.from === behind)) inFlight = 0;
      return false;
    });
    cluster.isolated.delete(behind);
    cluster.tickUntil(
      () => cluster.node(behind).status().snapshotIndex === cluster.node(leader).status().snapshotIndex,
    );
    assert.equal(inFlightMax, 1, 'one chunk in flight');
    assert.deepEqual(
      seen,
      Array.from({ length: Math.ceil(size / 16) }, (_, i) => i * 16),
      'chunks in order, each once',
    );
    cluster.propose(leader, 'after');
    cluster.tick(2);
    assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
  });

  it('a lost chunk is sent again from what the follower holds (found by the next heartbeat answer)', () => {
    const { cluster, leader, behind } = lagging(16);
    let dropped = 0;
    observe(cluster, (m) => chunks(m) && m.offset === 48 && dropped++ < 2);
    cluster.isolated.delete(behind);
    cluster.tickUntil(
      () => cluster.node(behind).status().snapshotIndex === cluster.node(leader).status().snapshotIndex,
    );
    assert.equal(dropped, 3, 'two copies lost, the third arrived');
    assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
  });

  it('a damaged chunk is refused: the follower starts over and installs only the intact snapshot', () => {
    const { cluster, leader, behind } = lagging(16);
    let damaged = false;
    const rewinds: number[] = [];
    observe(cluster, (m) => {
      if (chunks(m) && m.offset === 32 && !damaged) {
        damaged = true;
        const bad = new Uint8Array(m.data);
        bad[0] ^= 0xff;
        (m as { data: Uint8Array }).data = bad;
      }
      if (m.type === 'snapshotChunkResp' && m.rewind) rewinds.push(m.received);
      return false;
    });
    cluster.isolated.delete(behind);
    cluster.tickUntil(
      () => cluster.node(behind).status().snapshotIndex === cluster.node(leader).status().snapshotIndex,
    );
    assert.deepEqual(rewinds, [0], 'the follower dropped what it held and asked from the start');
    assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
  });

  it('duplicated and out-of-order chunks are ignored and answered with the follower’s position', () => {
    const { cluster, leader, behind } = lagging(16);
    const replay: SnapshotChunkMsg[] = [];
    const rewinds: number[] = [];
    const held = 3 * 16;
    // Chunks from offset 48 on are held back, so the follower stops at 48 bytes.
    observe(cluster, (m) => {
      if (m.type === 'snapshotChunkResp' && m.rewind) rewinds.push(m.received);
      if (!chunks(m) || m.to !== behind) return false;
      replay.push(m);
      return m.offset >= held;
    });
    cluster.isolated.delete(behind);
    cluster.tickUntil(() => replay.some((m) => m.offset === held));
    cluster.node(behind).step(replay[0]); // an old chunk again
    cluster.node(behind).step({ ...replay[0], offset: held + 16 }); // a chunk past a gap
    cluster.settle();
    assert.deepEqual(rewinds, [held, held], 'both answered with the 48 bytes held');
    assert.equal(cluster.node(behind).status().snapshotIndex, 0, 'nothing installed');
    cluster.dropIf = null;
    cluster.tickUntil(
      () => cluster.node(behind).status().snapshotIndex === cluster.node(leader).status().snapshotIndex,
    );
    assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
  });

  it('after a dropped connection the leader starts again and the follower resumes where it was', () => {
    const { cluster, leader, behind, size } = lagging(16, 60);
    const offsets: number[] = [];
    let cut = true;
    observe(cluster, (m) => {
      if (!chunks(m) || m.to !== behind) return false;
      offsets.push(m.offset);
      return cut && m.offset >= 80;
    });
    cluster.isolated.delete(behind);
    cluster.tickUntil(() => offsets.includes(80));
    // The connection drops; the leader forgets where the transfer was.
    cluster.node(leader).peerDisconnected(behind);
    cut = false;
    const before = offsets.length;
    cluster.tickUntil(
      () => cluster.node(behind).status().snapshotIndex === cluster.node(leader).status().snapshotIndex,
    );
    const after = offsets.slice(before);
    // The first chunk again (the leader does not know what survived), then on from 80.
    assert.equal(after[0], 0);
    assert.equal(after[1], 80);
    assert.equal(after.length, 1 + Math.ceil((size - 80) / 16), 'only the missing chunks after the first');
    assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
  });

  it('a chunk that runs past the announced size is refused', () => {
    const { cluster, behind } = lagging(16);
    const replay: SnapshotChunkMsg[] = [];
    observe(cluster, (m) => {
      if (!chunks(m) || m.to !== behind) return false;
      replay.push(m);
      return true;
    });
    cluster.isolated.delete(behind);
    cluster.tickUntil(() => replay.length > 0);
    const first = replay[0];
    const over = new Uint8Array(first.total + 1);
    cluster.node(behind).step({ ...first, data: over, crc: crc32(over) });
    const rd = cluster.node(behind).ready();
    const resp = rd.messages.find((m) => m.type === 'snapshotChunkResp');
    assert.ok(resp && resp.type === 'snapshotChunkResp' && resp.rewind && resp.received === 0);
    assert.equal(cluster.node(behind).status().snapshotIndex, 0);
  });

  for (const keepLostMatch of [false, true]) {
    it(`a follower whose log was wiped gets the snapshot (Raft assumes durable logs; the leader notices)${keepLostMatch ? ': not with the match kept (mutation)' : ''}`, () => {
      const cluster = new Cluster([a, b, c], {
        overrides: { snapshotChunkBytes: 64, mutations: { keepLostMatch } },
      });
      const leader = cluster.electLeader();
      for (let i = 0; i < 20; i++) cluster.propose(leader, `value-${i}`);
      cluster.tick(2);
      const behind = [a, b, c].find((n) => n !== leader)!;
      const st = cluster.node(leader).status();
      cluster.node(leader).compact(st.applied, encode(JSON.stringify(cluster.applied.get(leader))));
      // The follower acknowledged everything, then comes back with an empty data directory.
      const config = { voters: [a, b, c], learners: [] };
      cluster.add(behind, config, 99, { overrides: { snapshotChunkBytes: 64 } });
      cluster.node(leader).peerDisconnected(behind);
      const caughtUp = (): boolean => cluster.node(behind).status().snapshotIndex === st.applied;
      if (keepLostMatch) {
        cluster.tick(50);
        assert.equal(caughtUp(), false, 'the leader probes above the empty log for ever');
        return;
      }
      cluster.tickUntil(caughtUp, 50);
      cluster.propose(leader, 'after');
      cluster.tick(2);
      assert.deepEqual(cluster.applied.get(behind), cluster.applied.get(leader));
    });
  }
});
