// Real sockets, real TLS 1.3, on 127.0.0.1: two TlsTransports talk to each other, and hand-driven
// clients try every way of getting in that must be refused.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { Message, NodeId } from '../../src/raft/types.js';
import { FrameDecoder, encodeFrame } from '../../src/transport/codec.js';
import { makeHello, type RefusalReason } from '../../src/transport/handshake.js';
import { TlsTransport, type TlsTransportOptions } from '../../src/transport/tcp.js';
import {
  RawPeer,
  Recorder,
  captureLogger,
  heartbeat,
  makeCerts,
  waitFor,
  type CertDirs,
  type LogLine,
} from './fixtures.js';

const clusterId = 'test-cluster';
const id = (s: string): NodeId => s as NodeId;

let certs: CertDirs;
const open: { close(): Promise<void> }[] = [];

before(async () => {
  certs = await makeCerts();
});
after(async () => {
  await certs.cleanup();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

interface Node {
  transport: TlsTransport;
  recorder: Recorder;
  lines: LogLine[];
  port: number;
}

async function startNode(
  nodeId: string,
  peers: Record<string, string> = {},
  extra: Partial<TlsTransportOptions> = {},
): Promise<Node> {
  const { logger, lines } = captureLogger();
  const transport = new TlsTransport({
    nodeId: id(nodeId),
    clusterId,
    bindHost: '127.0.0.1',
    bindPort: 0,
    peers: new Map(Object.entries(peers).map(([k, v]) => [id(k), v])),
    tls: certs.nodes[nodeId]!,
    logger,
    ...extra,
  });
  const recorder = new Recorder();
  await transport.start(recorder);
  open.push(transport);
  return { transport, recorder, lines, port: transport.address().port };
}

/**
 * Two nodes n1 and n2, each dialling the other. n1 also knows n3, at an address where nothing
 * listens, so that tests can speak to n1 as n3 without disturbing n2's connection.
 */
async function startPair(extra: Partial<TlsTransportOptions> = {}): Promise<[Node, Node]> {
  const a = await startNode('n1', {}, extra);
  const b = await startNode('n2', { n1: `127.0.0.1:${a.port}` }, extra);
  a.transport.setPeers(
    new Map([
      [id('n2'), `127.0.0.1:${b.port}`],
      [id('n3'), '127.0.0.1:1'],
    ]),
  );
  await waitFor('both links open', () => linkOpen(a, 'n2') && linkOpen(b, 'n1'));
  return [a, b];
}

const linkOpen = (n: Node, peer: string): boolean => n.transport.stats().peers[peer]?.state === 'open';

/** Sends until the message arrives: sends to a peer whose link is not up yet are dropped by design. */
async function deliver(from: Node, to: Node, msg: Message): Promise<void> {
  const before = to.recorder.messages.length;
  await waitFor(`${msg.type} ${msg.from} -> ${msg.to}`, () => {
    if (to.recorder.messages.length > before) return true;
    from.transport.send(msg);
    return false;
  });
  assert.deepEqual(to.recorder.messages.at(-1), msg);
}

function refusalLine(n: Node, reason: RefusalReason): LogLine | undefined {
  return n.lines.find((l) => l.msg === 'peer connection refused' && l.reason === reason);
}

/** A hand-driven client that has passed the handshake as `as` (certificate and hello agree). */
async function handshakenPeer(port: number, as: string): Promise<RawPeer> {
  const raw = await RawPeer.connect(port, certs.nodes[as]!);
  raw.sendFrame(makeHello(clusterId, id(as)));
  await waitFor('server hello', () => raw.frames.length > 0);
  assert.equal((raw.frames[0] as { nodeId: string }).nodeId, 'n1');
  return raw;
}

/** The refusal is logged once with its reason, counted, and the node keeps serving its good peer. */
async function assertRefusedAndStillServing(a: Node, b: Node, reason: RefusalReason): Promise<LogLine> {
  const line = await waitFor(`refusal "${reason}" logged`, () => refusalLine(a, reason));
  assert.equal(line.level, 40, 'logged at warn');
  assert.equal(a.transport.stats().refused[reason], 1);
  await deliver(b, a, heartbeat('n2', 'n1', 99));
  await deliver(a, b, heartbeat('n1', 'n2', 98));
  return line;
}

describe('TlsTransport', () => {
  test('two nodes exchange messages both ways over mutual TLS 1.3', async () => {
    const [a, b] = await startPair();
    const propose: Message = {
      type: 'propose',
      from: id('n1'),
      to: id('n2'),
      term: 2,
      data: new Uint8Array([0, 1, 2, 255]),
      requestId: 'r-1',
    };
    await deliver(a, b, propose);
    assert.ok(b.recorder.messages.at(-1)!.type === 'propose');
    assert.ok((b.recorder.messages.at(-1) as typeof propose).data instanceof Uint8Array);
    await deliver(b, a, heartbeat('n2', 'n1'));
    assert.ok(a.transport.stats().framesSent >= 1);
    assert.ok(b.transport.stats().framesReceived >= 1);
  });

  test('a client certificate from another CA is refused at the TLS handshake', async () => {
    const [a, b] = await startPair();
    const raw = await RawPeer.connect(a.port, certs.foreignN2);
    await raw.closed;
    const line = await assertRefusedAndStillServing(a, b, 'tls-handshake-failed');
    assert.equal(line.detail, 'client certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test('a hello claiming another node id than the certificate names is refused', async () => {
    const [a, b] = await startPair();
    const raw = await RawPeer.connect(a.port, certs.nodes['n3']!);
    raw.sendFrame(makeHello(clusterId, id('n2')));
    await raw.closed;
    assert.deepEqual(raw.frames[0], {
      refused: 'node-id-mismatch',
      detail: 'hello claims node "n2" but the certificate names node "n3"',
    });
    await assertRefusedAndStillServing(a, b, 'node-id-mismatch');
  });

  test('a node that is not in the peer set is refused', async () => {
    const a = await startNode('n1');
    const b = await startNode('n2', { n1: `127.0.0.1:${a.port}` });
    a.transport.setPeers(new Map([[id('n2'), `127.0.0.1:${b.port}`]]));
    const raw = await RawPeer.connect(a.port, certs.nodes['n3']!);
    raw.sendFrame(makeHello(clusterId, id('n3')));
    await raw.closed;
    await assertRefusedAndStillServing(a, b, 'unknown-peer');
  });

  test('removing a peer closes its connections and refuses it from then on', async () => {
    const [a, b] = await startPair();
    a.transport.setPeers(new Map());
    await waitFor('n2 sees its link to n1 drop', () => b.recorder.downs.includes(id('n1')));
    assert.deepEqual(a.transport.stats().peers, {});
    a.transport.send(heartbeat('n1', 'n2'));
    assert.equal(a.transport.stats().droppedByReason.unknownPeer, 1);
    await waitFor('n2 reconnecting is refused', () => refusalLine(a, 'unknown-peer'));
  });

  test('a newer connection from the same peer replaces the older one without a peer-down signal', async () => {
    const [a, b] = await startPair();
    const raw = await handshakenPeer(a.port, 'n2'); // n1 now drops n2's older connection
    await waitFor('n2 sees its link to n1 drop', () => b.recorder.downs.includes(id('n1')));
    assert.deepEqual(a.recorder.downs, [], 'n1 does not report n2 down: n2 just connected');
    raw.socket.destroy();
    await deliver(b, a, heartbeat('n2', 'n1', 5)); // n2 reconnects by itself
  });

  test('a different cluster id is refused and the reason is sent to the peer', async () => {
    const [a, b] = await startPair();
    const raw = await RawPeer.connect(a.port, certs.nodes['n2']!);
    raw.sendFrame(makeHello('other-cluster', id('n2')));
    await raw.closed;
    assert.equal((raw.frames[0] as { refused: string }).refused, 'cluster-mismatch');
    const line = await assertRefusedAndStillServing(a, b, 'cluster-mismatch');
    assert.match(String(line.detail), /"other-cluster" differs from ours "test-cluster"/);
  });

  test('an unsupported protocol version is refused', async () => {
    const [a, b] = await startPair();
    const raw = await RawPeer.connect(a.port, certs.nodes['n2']!);
    raw.sendFrame({ ...makeHello(clusterId, id('n2')), v: 2 });
    await raw.closed;
    assert.equal((raw.frames[0] as { refused: string }).refused, 'unsupported-version');
    const line = await assertRefusedAndStillServing(a, b, 'unsupported-version');
    assert.match(String(line.detail), /version 2 is not supported/);
  });

  test('an oversize frame is refused from its length header alone', async () => {
    const frameBytesMax = 64 * 1024;
    const [a, b] = await startPair({ frameBytesMax });
    const raw = await handshakenPeer(a.port, 'n3');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(frameBytesMax + 1);
    raw.sendBytes(header); // no payload follows: the refusal cannot depend on buffering it
    await raw.closed;
    await assertRefusedAndStillServing(a, b, 'frame-too-large');
  });

  test('garbage bytes after the handshake close the connection with bad-frame', async () => {
    const [a, b] = await startPair();
    const raw = await handshakenPeer(a.port, 'n3');
    // A complete frame whose payload is an array header promising two items and holding one.
    raw.sendBytes(Buffer.from([0, 0, 0, 2, 0x92, 0x01]));
    await raw.closed;
    const line = await assertRefusedAndStillServing(a, b, 'bad-frame');
    assert.match(String(line.detail), /undecodable MessagePack/);
  });

  test('a well-formed frame that is not a valid message is refused naming the field', async () => {
    const [a, b] = await startPair();
    const raw = await handshakenPeer(a.port, 'n3');
    raw.sendFrame({ ...heartbeat('n3', 'n1'), seq: -4 });
    await raw.closed;
    const line = await assertRefusedAndStillServing(a, b, 'bad-message');
    assert.equal(line.detail, 'peer frame: field seq: expected non-negative integer');
  });

  test('a message that claims another sender than the connection is refused', async () => {
    const [a, b] = await startPair();
    const raw = await handshakenPeer(a.port, 'n3');
    raw.sendFrame(heartbeat('n2', 'n1'));
    await raw.closed;
    await assertRefusedAndStillServing(a, b, 'sender-mismatch');
    assert.ok(
      !a.recorder.messages.some((m) => m.from === 'n2' && m.term === 3 && (m as { seq: number }).seq === 1),
    );
  });

  test('a truncated frame followed by close is logged as truncated-frame', async () => {
    const [a, b] = await startPair();
    const raw = await handshakenPeer(a.port, 'n3');
    const partial = encodeFrame(heartbeat('n3', 'n1')).subarray(0, 9);
    raw.socket.end(partial);
    await raw.closed;
    await assertRefusedAndStillServing(a, b, 'truncated-frame');
  });

  test('a server whose certificate names another node than the one dialled is never used', async () => {
    const b = await startNode('n2');
    // n1 believes n3 lives at n2's address.
    const a = await startNode('n1', { n3: `127.0.0.1:${b.port}` }, { reconnectDelayMaxMs: 50 });
    const line = await waitFor('connect failure logged', () =>
      a.lines.find((l) => l.msg === 'peer link connect failed'),
    );
    assert.match(String(line.reason), /node-id-mismatch: server certificate names node "n2", not "n3"/);
    a.transport.send(heartbeat('n1', 'n3'));
    assert.equal(a.transport.stats().droppedByReason.peerDown, 1);
    assert.equal(b.recorder.messages.length, 0);
  });

  test('onPeerDown fires on both sides of a closed peer, promptly', async () => {
    const [a, b] = await startPair();
    const started = Date.now();
    await b.transport.close();
    await waitFor('onPeerDown(n2) at n1', () => a.recorder.downs.includes(id('n2')));
    assert.ok(Date.now() - started < 1000, 'well before any election timeout');
    assert.deepEqual(b.recorder.downs, [], 'the closing node does not report its own peers down');
  });

  test('a node reconnects after its peer restarts on the same port', async () => {
    const [a, b] = await startPair({ reconnectDelayMaxMs: 100 });
    await deliver(a, b, heartbeat('n1', 'n2', 1));
    await b.transport.close();
    await waitFor('n1 sees n2 down', () => a.recorder.downs.includes(id('n2')));
    a.transport.send(heartbeat('n1', 'n2', 2));
    assert.ok(a.transport.stats().droppedByReason.peerDown >= 1, 'sends to a down peer are dropped');
    const b2 = await startNode('n2', { n1: `127.0.0.1:${a.port}` }, { bindPort: b.port });
    assert.equal(b2.port, b.port);
    await deliver(a, b2, heartbeat('n1', 'n2', 3));
    await deliver(b2, a, heartbeat('n2', 'n1', 4));
  });

  test('a peer that stops reading makes send() drop instead of queueing without bound', async () => {
    const peerQueueMax = 8;
    // A stand-in for n2 that completes the handshake and then never reads again.
    const server = tls.createServer({
      ...certs.nodes['n2']!,
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
    });
    const sockets: tls.TLSSocket[] = [];
    server.on('secureConnection', (socket) => {
      sockets.push(socket);
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const _ of decoder.frames(chunk)) {
          socket.write(encodeFrame(makeHello(clusterId, id('n2'))));
          socket.pause();
          return;
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    open.push({
      close: () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
    });
    const port = (server.address() as { port: number }).port;
    const a = await startNode('n1', { n2: `127.0.0.1:${port}` }, { peerQueueMax });
    await waitFor('link open', () => linkOpen(a, 'n2'));

    const data = new Uint8Array(256 * 1024);
    let attempted = 0;
    await waitFor(
      'sends dropped for a full queue',
      async () => {
        for (let i = 0; i < 4; i++) {
          a.transport.send({
            type: 'propose',
            from: id('n1'),
            to: id('n2'),
            term: 1,
            data,
            requestId: `${attempted}`,
          });
          attempted++;
        }
        const peer = a.transport.stats().peers['n2']!;
        assert.ok(peer.queuedFrames <= peerQueueMax, `queued ${peer.queuedFrames} > ${peerQueueMax}`);
        // Let the socket flush what it can into the kernel before the next burst.
        await new Promise((r) => setImmediate(r));
        return peer.queuedFrames === peerQueueMax && a.transport.stats().droppedByReason.queueFull > 0;
      },
      20_000,
    );
    const stats = a.transport.stats();
    assert.equal(stats.framesSent + stats.droppedByReason.queueFull, attempted);
    // Stalled: everything more is dropped, and the buffered bytes do not grow.
    const bytesBefore = stats.peers['n2']!.queuedBytes;
    for (let i = 0; i < 100; i++) {
      a.transport.send({ type: 'propose', from: id('n1'), to: id('n2'), term: 1, data, requestId: 'x' });
    }
    const after = a.transport.stats();
    assert.equal(after.droppedByReason.queueFull, stats.droppedByReason.queueFull + 100);
    assert.equal(after.peers['n2']!.queuedBytes, bytesBefore);
  });

  test('close() resolves with every connection closed and the port released', async () => {
    const [a, b] = await startPair();
    await a.transport.close();
    await b.transport.close();
    const again = await startNode('n1', {}, { bindPort: a.port });
    assert.equal(again.port, a.port);
  });
});
