import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NodeId } from '../../src/raft/types.js';
import { checkHello, makeHello, parseRefusal, protocolVersion } from '../../src/transport/handshake.js';

const n = (s: string): NodeId => s as NodeId;
const server = { clusterId: 'c1', certNodeId: 'n2', knownPeers: new Set([n('n2'), n('n3')]) };

const reasonOf = (frame: unknown, expect = server): string => {
  const r = checkHello(frame, expect);
  return r.ok ? 'ok' : r.reason;
};

describe('handshake', () => {
  test('a hello from a known peer whose certificate names it is accepted as is', () => {
    const hello = makeHello('c1', n('n2'), ['snapshots']);
    assert.deepEqual(checkHello(hello, server), { ok: true, hello });
    assert.equal(hello.v, protocolVersion);
  });

  test('an unsupported version is refused before any other field is read', () => {
    assert.equal(reasonOf({ v: 99, anything: 'else' }), 'unsupported-version');
  });

  test('each mismatch is refused with its own reason', () => {
    const hello = makeHello('c1', n('n2'));
    assert.equal(reasonOf({ ...hello, clusterId: 'c2' }), 'cluster-mismatch');
    assert.equal(reasonOf({ ...hello, nodeId: 'n3' }), 'node-id-mismatch');
    assert.equal(reasonOf(hello, { ...server, certNodeId: null as unknown as string }), 'node-id-mismatch');
    assert.equal(reasonOf(makeHello('c1', n('n4')), { ...server, certNodeId: 'n4' }), 'unknown-peer');
  });

  test('the client side refuses a server that is not the node it dialled', () => {
    const r = checkHello(makeHello('c1', n('n3')), {
      clusterId: 'c1',
      certNodeId: 'n3',
      dialledNodeId: n('n2'),
    });
    assert.deepEqual(r, {
      ok: false,
      reason: 'node-id-mismatch',
      detail: 'dialled node "n2" but node "n3" answered',
    });
  });

  test('malformed hellos are refused as bad-handshake', () => {
    const hello = makeHello('c1', n('n2'));
    for (const frame of [
      null,
      [],
      { ...hello, v: '1' },
      { ...hello, clusterId: 7 },
      { ...hello, nodeId: '' },
      { ...hello, capabilities: 'all' },
      { ...hello, capabilities: [1] },
      { ...hello, capabilities: new Array(65).fill('x') },
    ]) {
      assert.equal(reasonOf(frame), 'bad-handshake', JSON.stringify(frame));
    }
  });

  test('a refusal frame is recognised and a hello is not', () => {
    assert.deepEqual(parseRefusal({ refused: 'cluster-mismatch', detail: 'why' }), {
      reason: 'cluster-mismatch',
      detail: 'why',
    });
    assert.equal(parseRefusal(makeHello('c1', n('n2'))), null);
  });

  test('makeHello refuses an empty cluster id', () => {
    assert.throws(() => makeHello('', n('n1')), /clusterId/);
  });
});
