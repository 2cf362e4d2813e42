// The runtime drives the real core over an in-memory network on a simulated clock: proposals
// resolve from any node, errors carry codes, a frozen leader cannot serve a lease read, and a
// duplicated proposal is applied once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode } from '../../src/runtime/raft-node.js';
import type { Clock, TimerHandle } from '../../src/runtime/clock.js';
import { mulberry32 } from '../../src/raft/index.js';
import { nodeId, type Mutations, type NodeId, type RaftOptions } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { KvStore } from '../../src/state/kv.js';
import { encodeKvCommand } from '../../src/state/kv-commands.js';
import type { KvResult } from '../../src/state/kv-types.js';
import { HaError } from '../../src/errors.js';
import { AppliedRequests } from '../../src/runtime/applied-requests.js';
import { Scheduler, type EventHandle } from '../../sim/scheduler.js';

interface Harness {
  scheduler: Scheduler;
  nodes: Map<NodeId, RaftNode<KvResult>>;
  kvs: Map<NodeId, KvStore>;
  network: MemoryNetwork;
  /** Per-node clock offset: a frozen node's clock jumps when it resumes. */
  offsetMs: Map<NodeId, number>;
  run(ms: number): void;
  leader(): RaftNode<KvResult> | null;
}

interface HarnessOptions {
  /** Every timer fires this much late, as on a busy event loop. */
  readonly timerLateMs?: number;
  readonly mutations?: Mutations;
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'prng'>>;
  readonly trace?: (line: string) => void;
}

function cluster(size: number, seed = 1, hopts: HarnessOptions = {}): Harness {
  const scheduler = new Scheduler();
  const network = new MemoryNetwork({ schedule: (deliver) => void scheduler.after(200, deliver) });
  const ids = Array.from({ length: size }, (_, i) => nodeId(`n${i + 1}`));
  const nodes = new Map<NodeId, RaftNode<KvResult>>();
  const kvs = new Map<NodeId, KvStore>();
  const offsetMs = new Map<NodeId, number>();
  for (const [i, id] of ids.entries()) {
    offsetMs.set(id, 0);
    const clock: Clock = {
      nowMs: () => scheduler.nowMs + offsetMs.get(id)!,
      setTimeout: (fn, ms) =>
        // Zero-delay timers are setImmediate in production: never late.
        scheduler.after((ms + (ms > 0 ? (hopts.timerLateMs ?? 0) : 0)) * 1000, fn) as unknown as TimerHandle,
      clearTimeout: (h) => (h as unknown as EventHandle).cancel(),
    };
    const kv = new KvStore();
    const node = new RaftNode<KvResult>({
      id,
      bootstrap: { voters: ids, learners: [] },
      tickMs: 10,
      raft: { electionTicks: 10, heartbeatTicks: 2, ...hopts.raft },
      mutations: hopts.mutations,
      hooks: {
        onRoleChange: (role, leader, term) =>
          hopts.trace?.(`${scheduler.nowMs.toFixed(1)} ${id} ${role} term ${term} leader ${leader}`),
      },
      storage: new MemoryStorage(),
      transport: network.transport(id),
      stateMachine: kv,
      clock,
      prng: mulberry32(seed * 100 + i),
      bootId: 'b1',
      snapshotEntries: 1000,
    });
    void node.start();
    nodes.set(id, node);
    kvs.set(id, kv);
  }
  return {
    scheduler,
    nodes,
    kvs,
    network,
    offsetMs,
    run: (ms) => scheduler.runUntil(scheduler.nowUs + ms * 1000),
    leader: () => [...nodes.values()].find((n) => n.status().role === 'leader') ?? null,
  };
}

function propose(h: Harness, node: RaftNode<KvResult>, key: string, value: string, timeoutMs = 500) {
  let outcome: { err: HaError | null; result?: KvResult } | null = null;
  node.proposeCb(encodeKvCommand({ op: 'put', key, value }), timeoutMs, (err, result) => {
    outcome = { err, result };
  });
  return () => outcome;
}

test('a proposal made on a follower is forwarded and resolves with the result applied there', () => {
  const h = cluster(3);
  h.run(1000);
  const leader = h.leader();
  assert.ok(leader, 'a leader was elected');
  const follower = [...h.nodes.values()].find((n) => n !== leader)!;
  const outcome = propose(h, follower, 'k', 'v1');
  h.run(100);
  const o = outcome();
  assert.ok(o, 'the proposal completed');
  assert.equal(o.err, null);
  assert.deepEqual(o.result, { ok: true, key: 'k', version: 1, revision: 1 });
  for (const kv of h.kvs.values()) {
    h.run(100);
    assert.equal(kv.get('k')?.value, 'v1');
  }
});

test('before any leader exists a proposal fails at once with HA_ERR_NOT_LEADER', () => {
  const h = cluster(3);
  const node = h.nodes.get(nodeId('n1'))!;
  const outcome = propose(h, node, 'k', 'v');
  const o = outcome();
  assert.ok(o && o.err instanceof HaError);
  assert.equal(o.err.code, 'HA_ERR_NOT_LEADER');
});

test('a proposal on a leader cut off from its quorum times out instead of succeeding', () => {
  const h = cluster(3);
  h.run(1000);
  const leader = h.leader()!;
  h.network.isolate(leader.id);
  const outcome = propose(h, leader, 'k', 'lost?', 300);
  h.run(400);
  const o = outcome();
  assert.ok(o && o.err instanceof HaError);
  assert.ok(['HA_ERR_TIMEOUT', 'HA_ERR_NO_QUORUM'].includes(o.err.code), o.err.code);
});

test('a linearizable read on a follower waits for the leader-confirmed index', () => {
  const h = cluster(3);
  h.run(1000);
  const leader = h.leader()!;
  propose(h, leader, 'k', 'v2');
  h.run(50);
  const follower = [...h.nodes.values()].find((n) => n !== leader)!;
  let index: number | null = null;
  follower.readCb('linearizable', 500, (err, i) => {
    assert.equal(err, null);
    index = i!;
  });
  h.run(100);
  assert.ok(index !== null && index >= 2);
  assert.equal(h.kvs.get(follower.id)!.get('k')?.value, 'v2');
});

test('a leader whose process was frozen past its lease does not grant a lease read on waking', () => {
  const h = cluster(3);
  h.run(1000);
  const leader = h.leader()!;
  let granted = false;
  leader.readCb('lease', 100, (err) => (granted = err === null));
  h.run(1);
  assert.equal(granted, true, 'a fresh leader grants lease reads');
  // Freeze: the clock jumps 500 ms ahead while no timer of the leader has run yet.
  h.network.isolate(leader.id);
  h.offsetMs.set(leader.id, 500);
  let served = false;
  let indexServed = -1;
  leader.readCb('lease', 50, (err, i) => {
    served = err === null;
    indexServed = i ?? -1;
  });
  assert.equal(served, false, `a frozen leader served a lease read at index ${indexServed}`);
});

test('a request id applied once is skipped when its entry appears again, also after a snapshot', () => {
  const table = new AppliedRequests();
  table.add('n1/b1/1');
  assert.ok(table.has('n1/b1/1'));
  const restored = new AppliedRequests();
  const sm = new Uint8Array([1, 2, 3]);
  assert.deepEqual([...restored.unwrapSnapshot(table.wrapSnapshot(sm))], [...sm]);
  assert.ok(restored.has('n1/b1/1'));
  assert.throws(
    () => restored.unwrapSnapshot(new Uint8Array([0xc1])),
    (e: HaError) => e.code === 'HA_ERR_STORAGE_CORRUPT',
  );
});

for (const broken of [false, true]) {
  test(`under steady traffic and late timers a minority leader steps down within its election timeout${broken ? ' (mutation catchUpOnMessages: it does not)' : ''}`, () => {
    // Timers fire 3 ms late and a follower on the leader's side keeps answering appends, so
    // most ticks are owed when a message arrives rather than when the tick timer fires.
    const h = cluster(5, 3, {
      timerLateMs: 3,
      mutations: { catchUpOnMessages: broken },
      trace: process.env.TRACE ? (l) => console.log(l) : undefined,
    });
    h.run(1000);
    const leader = h.leader()!;
    const ids = [...h.nodes.keys()];
    const buddy = ids.find((id) => id !== leader.id)!;
    for (const x of ids) {
      for (const y of ids) {
        const sideX = x === leader.id || x === buddy;
        const sideY = y === leader.id || y === buddy;
        if (sideX !== sideY) h.network.disconnect(x, y);
      }
    }
    const cutAtMs = h.scheduler.nowMs;
    let steppedDownAtMs: number | null = null;
    for (let i = 0; i < 10000 && steppedDownAtMs === null; i++) {
      if (leader.status().role === 'leader') propose(h, leader, `k${i}`, 'v', 50);
      h.run(0.1);
      if (leader.status().role !== 'leader') steppedDownAtMs = h.scheduler.nowMs;
    }
    // check-quorum: electionTicks (10) of 10 ms after the last contact from a quorum, plus the
    // timer lateness and a tick of rounding.
    const boundMs = 10 * 10 + 2 * 10 + 10;
    const tookMs = steppedDownAtMs === null ? Infinity : steppedDownAtMs - cutAtMs;
    if (broken) assert.ok(tookMs > boundMs, `the broken runtime stepped down after ${tookMs} ms`);
    else assert.ok(tookMs <= boundMs, `stepped down after ${tookMs} ms, bound ${boundMs} ms`);
  });
}

test('a linearizable read on a follower survives a leader change: it is asked again of the new leader', () => {
  const h = cluster(3, 5);
  h.run(1000);
  const leader = h.leader()!;
  const follower = [...h.nodes.values()].find((n) => n !== leader)!;
  // The read goes out, then the leader is cut off before it can confirm.
  h.network.isolate(leader.id);
  let outcome: { err: HaError | null; index?: number } | null = null;
  follower.readCb('linearizable', 2000, (err, index) => (outcome = { err, index }));
  h.run(1500);
  assert.ok(outcome, 'the read completed within its deadline');
  const o = outcome as { err: HaError | null; index?: number };
  assert.equal(o.err, null, `read failed: ${o.err?.code}`);
  assert.notEqual(h.leader(), leader, 'served under a new leader');
});

test('a proposal forwarded to a leader that is transferring leadership fails at once, not at its deadline', () => {
  const h = cluster(3, 7);
  h.run(1000);
  const leader = h.leader()!;
  const [follower, target] = [...h.nodes.values()].filter((n) => n !== leader);
  h.network.isolate(target.id); // the transfer cannot finish
  h.network.reconnect(leader.id, follower.id);
  leader.transferLeadershipCb(target.id, 5000, () => {});
  h.run(1);
  const outcome = propose(h, follower, 'k', 'v', 5000);
  h.run(20);
  const o = outcome();
  assert.ok(o, 'the follower answered within 20 ms');
  assert.ok(o.err instanceof HaError);
  assert.equal(o.err.code, 'HA_ERR_TRANSFER_IN_PROGRESS');
});

test('a saved result survives the snapshot, so a client whose entry arrived inside one is answered (§6.3)', () => {
  const table = new AppliedRequests();
  table.add('n7/b3/58', { ok: true, key: 'b', version: 4, revision: 172 });
  const restored = new AppliedRequests();
  restored.unwrapSnapshot(table.wrapSnapshot(new Uint8Array([9])));
  assert.deepEqual(restored.result('n7/b3/58'), { ok: true, key: 'b', version: 4, revision: 172 });
  // A version-1 envelope (ids only, written before results were saved) still loads.
  const v1 = new AppliedRequests();
  const sm = v1.unwrapSnapshot(new Uint8Array(Buffer.from('83a17601a2736dc40109a3696473' + '91a17a', 'hex')));
  assert.deepEqual([...sm], [9]);
  assert.ok(v1.has('z'));
  assert.equal(v1.result('z'), undefined);
});

test('a stop right after the term rose in memory keeps the newer term: a restart does not go back', async () => {
  const scheduler = new Scheduler();
  const network = new MemoryNetwork({ schedule: (deliver) => void scheduler.after(200, deliver) });
  const ids = [nodeId('n1'), nodeId('n2'), nodeId('n3')];
  const storage = new MemoryStorage();
  const clock: Clock = {
    nowMs: () => scheduler.nowMs,
    setTimeout: (fn, ms) => scheduler.after(ms * 1000, fn) as unknown as TimerHandle,
    clearTimeout: (h) => (h as unknown as EventHandle).cancel(),
  };
  const node = new RaftNode<KvResult>({
    id: ids[0],
    bootstrap: { voters: ids, learners: [] },
    tickMs: 10,
    // Without pre-vote a campaign raises the term and votes at once.
    raft: { preVote: false },
    storage,
    transport: network.transport(ids[0]),
    stateMachine: new KvStore(),
    clock,
    prng: mulberry32(1),
    bootId: 'b1',
    snapshotEntries: 1000,
  });
  await node.start();
  // The term rises in memory; the Ready that would persist it has not run when the stop comes.
  node.campaign();
  const termInMemory = node.status().term;
  assert.equal(termInMemory, 1);
  assert.equal(storage.load({ voters: ids, learners: [] }).hardState.term, 0, 'not durable yet');
  await node.stop();
  const reloaded = storage.load({ voters: ids, learners: [] });
  assert.equal(reloaded.hardState.term, termInMemory);
  assert.equal(reloaded.hardState.votedFor, ids[0]);
});
