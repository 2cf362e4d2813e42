import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, NodeId } from '../../src/raft/types.js';
import { MemoryNetwork, type MemoryTransport } from '../../src/transport/memory.js';
import { Recorder, heartbeat } from './fixtures.js';

const n = (s: string): NodeId => s as NodeId;

interface Member {
  t: MemoryTransport;
  r: Recorder;
}

async function cluster(net: MemoryNetwork, ids: string[]): Promise<Record<string, Member>> {
  const out: Record<string, Member> = {};
  for (const id of ids) {
    const m = { t: net.transport(n(id)), r: new Recorder() };
    await m.t.start(m.r);
    out[id] = m;
  }
  return out;
}

describe('MemoryNetwork', () => {
  test('messages arrive only when the test drains the queue, in send order', async () => {
    const net = new MemoryNetwork();
    const { a, b } = await cluster(net, ['a', 'b']);
    a!.t.send(heartbeat('a', 'b', 1));
    a!.t.send(heartbeat('a', 'b', 2));
    assert.equal(b!.r.messages.length, 0, 'nothing is delivered synchronously');
    assert.equal(net.pending, 2);
    assert.equal(net.deliverAll(1), 1);
    assert.deepEqual(
      b!.r.messages.map((m) => (m as { seq: number }).seq),
      [1],
    );
    assert.equal(net.flush(), 1);
    assert.deepEqual(
      b!.r.messages.map((m) => (m as { seq: number }).seq),
      [1, 2],
    );
  });

  test('the receiver gets a copy: mutating it cannot change the sender', async () => {
    const net = new MemoryNetwork();
    const { a, b } = await cluster(net, ['a', 'b']);
    const data = new Uint8Array([1, 2, 3]);
    const msg: Message = { type: 'propose', from: n('a'), to: n('b'), term: 1, data, requestId: 'r' };
    a!.t.send(msg);
    net.flush();
    const got = b!.r.messages[0] as typeof msg;
    assert.deepEqual(got, msg);
    got.data[0] = 99;
    assert.equal(data[0], 1);
  });

  test('disconnect fires onPeerDown on both ends and drops traffic both ways, including in flight', async () => {
    const net = new MemoryNetwork();
    const { a, b, c } = await cluster(net, ['a', 'b', 'c']);
    a!.t.send(heartbeat('a', 'b', 1)); // in flight when the link is cut
    net.disconnect(n('a'), n('b'));
    a!.t.send(heartbeat('a', 'b', 2));
    b!.t.send(heartbeat('b', 'a', 3));
    a!.t.send(heartbeat('a', 'c', 4));
    net.flush();
    assert.deepEqual(a!.r.downs, ['b']);
    assert.deepEqual(b!.r.downs, ['a']);
    assert.equal(b!.r.messages.length, 0);
    assert.equal(a!.r.messages.length, 0);
    assert.equal(c!.r.messages.length, 1, 'other links are unaffected');
    assert.equal(net.stats().dropped, 3);

    net.reconnect(n('a'), n('b'));
    a!.t.send(heartbeat('a', 'b', 5));
    net.flush();
    assert.equal(b!.r.messages.length, 1);
  });

  test('isolate cuts every link of a node and heal restores them', async () => {
    const net = new MemoryNetwork();
    const { a, b, c } = await cluster(net, ['a', 'b', 'c']);
    net.isolate(n('a'));
    net.flush();
    assert.deepEqual(a!.r.downs.sort(), ['b', 'c']);
    assert.equal(net.connected(n('b'), n('c')), true);
    net.heal();
    a!.t.send(heartbeat('a', 'c'));
    net.flush();
    assert.equal(c!.r.messages.length, 1);
    assert.deepEqual(b!.r.downs, ['a']);
  });

  test('a closed node is reported down to its peers and a restarted one gets nothing sent before', async () => {
    const net = new MemoryNetwork();
    const { a, b } = await cluster(net, ['a', 'b']);
    a!.t.send(heartbeat('a', 'b', 1));
    await b!.t.close();
    net.flush();
    assert.deepEqual(a!.r.downs, ['b']);
    const b2 = new Recorder();
    await net.transport(n('b')).start(b2);
    a!.t.send(heartbeat('a', 'b', 2));
    net.flush();
    assert.deepEqual(
      b2.messages.map((m) => (m as { seq: number }).seq),
      [2],
    );
    assert.equal(b!.r.messages.length, 0);
  });

  test('a custom scheduler decides when deliveries run', async () => {
    const scheduled: (() => void)[] = [];
    const net = new MemoryNetwork({ schedule: (deliver) => scheduled.push(deliver) });
    const { a, b } = await cluster(net, ['a', 'b']);
    a!.t.send(heartbeat('a', 'b', 1));
    a!.t.send(heartbeat('a', 'b', 2));
    assert.equal(scheduled.length, 2);
    scheduled[1]!(); // reorder: the scheduler may deliver in any order
    scheduled[0]!();
    assert.deepEqual(
      b!.r.messages.map((m) => (m as { seq: number }).seq),
      [2, 1],
    );
  });

  test('the built-in queue is bounded: beyond pendingMax messages are dropped', async () => {
    const net = new MemoryNetwork({ pendingMax: 3 });
    const { a, b } = await cluster(net, ['a', 'b']);
    for (let i = 0; i < 5; i++) a!.t.send(heartbeat('a', 'b', i));
    assert.equal(net.pending, 3);
    net.flush();
    assert.equal(b!.r.messages.length, 3);
    assert.deepEqual(net.stats(), { sent: 5, delivered: 3, dropped: 2 });
  });

  test('messages to unknown or not-started nodes are dropped', async () => {
    const net = new MemoryNetwork();
    const { a } = await cluster(net, ['a']);
    net.transport(n('b')); // created but never started
    a!.t.send(heartbeat('a', 'b'));
    a!.t.send(heartbeat('a', 'zz'));
    assert.equal(net.pending, 0);
    assert.equal(net.stats().dropped, 2);
  });

  test('flush refuses to spin forever on nodes that answer every message', async () => {
    const net = new MemoryNetwork();
    const ta = net.transport(n('a'));
    const tb = net.transport(n('b'));
    await ta.start({
      onMessage: (m) => ta.send(heartbeat('a', 'b', (m as { seq: number }).seq + 1)),
      onPeerDown() {},
    });
    await tb.start({
      onMessage: (m) => tb.send(heartbeat('b', 'a', (m as { seq: number }).seq + 1)),
      onPeerDown() {},
    });
    ta.send(heartbeat('a', 'b', 0));
    assert.throws(() => net.flush(100), /still 1 pending after 100 deliveries/);
  });

  test('a node cannot hold two open transports, nor send messages of another node', async () => {
    const net = new MemoryNetwork();
    const { a } = await cluster(net, ['a']);
    assert.throws(() => net.transport(n('a')), /already has an open transport/);
    assert.throws(() => a!.t.send(heartbeat('b', 'a')), /message from b sent through it/);
  });
});
