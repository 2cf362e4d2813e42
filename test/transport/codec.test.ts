import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HaError } from '../../src/errors.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { FrameDecoder, encodeFrame, frameHeaderBytes, parseMessage } from '../../src/transport/codec.js';

const n = (s: string): NodeId => s as NodeId;
const base = { from: n('n1'), to: n('n2'), term: 5 };
const config = { voters: [n('n1'), n('n2'), n('n3')], learners: [n('n4')] };

/** One message of every type, with every optional field somewhere. */
const samples: Message[] = [
  { ...base, type: 'preVote', lastLogIndex: 10, lastLogTerm: 4 },
  { ...base, type: 'preVoteResp', reject: true },
  { ...base, type: 'vote', lastLogIndex: 10, lastLogTerm: 4, transfer: false },
  { ...base, type: 'voteResp', reject: false },
  {
    ...base,
    type: 'append',
    prevLogIndex: 9,
    prevLogTerm: 4,
    entries: [
      { index: 10, term: 5, type: 'noop' },
      { index: 11, term: 5, type: 'normal', data: new Uint8Array([1, 2, 3]), requestId: 'req-1' },
      { index: 12, term: 5, type: 'config', config },
    ],
    commit: 9,
    seq: 3,
    tick: 100,
  },
  { ...base, type: 'appendResp', reject: false, matchIndex: 12, hintIndex: 0, seq: 3, tick: 100 },
  { ...base, type: 'heartbeat', commit: 9, seq: 4, tick: 101 },
  { ...base, type: 'heartbeatResp', seq: 4, tick: 101 },
  {
    ...base,
    type: 'snapshot',
    snapshot: { meta: { index: 50, term: 4, config }, data: new Uint8Array(1000).fill(7) },
    seq: 5,
    tick: 102,
  },
  { ...base, type: 'timeoutNow' },
  { ...base, type: 'propose', data: new Uint8Array(0), requestId: 'req-2' },
  { ...base, type: 'readIndex', ctx: 'ctx-1' },
  { ...base, type: 'readIndexResp', ctx: 'ctx-1', index: -1 },
  {
    ...base,
    type: 'snapshotChunk',
    meta: { index: 50, term: 4, config },
    offset: 1024,
    total: 4096,
    crc: 0xfedcba98,
    data: new Uint8Array(1024).fill(3),
    seq: 6,
    tick: 103,
  },
  {
    ...base,
    type: 'snapshotChunkResp',
    index: 50,
    snapshotTerm: 4,
    received: 2048,
    rewind: true,
    seq: 6,
    tick: 103,
  },
];

function decodeAll(decoder: FrameDecoder, chunks: Uint8Array[]): unknown[] {
  const out: unknown[] = [];
  for (const c of chunks) for (const f of decoder.frames(c)) out.push(f);
  return out;
}

function badField(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HaError);
    assert.equal(err.code, 'HA_ERR_BAD_REQUEST');
    assert.equal(err.message, message);
    return true;
  });
}

describe('frame codec', () => {
  test('every message type round-trips through a frame unchanged, byte strings as Uint8Array', () => {
    const decoder = new FrameDecoder();
    const frames = decodeAll(
      decoder,
      samples.map((m) => encodeFrame(m)),
    );
    assert.deepEqual(frames.map(parseMessage), samples);
    assert.equal(decoder.partial, false);
  });

  test('a frame is a 4-byte big-endian length followed by that many payload bytes', () => {
    const frame = encodeFrame({ a: 1 });
    assert.equal(frame.readUInt32BE(0), frame.length - frameHeaderBytes);
    // Plain MessagePack map (no msgpackr records): fixmap of one entry, "a", 1.
    assert.deepEqual([...frame.subarray(frameHeaderBytes)], [0x81, 0xa1, 0x61, 0x01]);
  });

  test('frames split across chunks, down to one byte per chunk, decode whole', () => {
    const bytes = Buffer.concat(samples.map((m) => encodeFrame(m)));
    const oneByteChunks = [...bytes].map((b) => Uint8Array.of(b));
    const frames = decodeAll(new FrameDecoder(), oneByteChunks);
    assert.deepEqual(frames.map(parseMessage), samples);
  });

  test('several frames in one chunk all decode, in order', () => {
    const decoder = new FrameDecoder();
    const frames = decodeAll(decoder, [Buffer.concat(samples.map((m) => encodeFrame(m)))]);
    assert.equal(frames.length, samples.length);
    assert.deepEqual(frames.map(parseMessage), samples);
  });

  test('a frame split mid-header across chunks waits for the rest', () => {
    const frame = encodeFrame(samples[0]);
    const decoder = new FrameDecoder();
    assert.deepEqual(decodeAll(decoder, [frame.subarray(0, 2)]), []);
    assert.equal(decoder.partial, true);
    assert.deepEqual(decodeAll(decoder, [frame.subarray(2, 7), frame.subarray(7)]).map(parseMessage), [
      samples[0],
    ]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('an oversize length is rejected from the header alone, before any payload is buffered', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 1024 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    assert.throws(
      () => decodeAll(decoder, [header]),
      (err: unknown) =>
        err instanceof HaError &&
        err.code === 'HA_ERR_PAYLOAD_TOO_LARGE' &&
        err.details['reason'] === 'frame-too-large' &&
        /length 1025 bytes exceeds frameBytesMax 1024/.test(err.message),
    );
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(decoder.failed, true);
    assert.throws(() => decodeAll(decoder, [encodeFrame({})]), /exceeds frameBytesMax/, 'stays failed');
  });

  test('a frame of exactly frameBytesMax is accepted', () => {
    const payload = { d: new Uint8Array(100) };
    const frame = encodeFrame(payload);
    const decoder = new FrameDecoder({ frameBytesMax: frame.length - frameHeaderBytes });
    assert.equal(decodeAll(decoder, [frame]).length, 1);
  });

  test('good frames before a bad one are still delivered', () => {
    const decoder = new FrameDecoder();
    const got: unknown[] = [];
    assert.throws(() => {
      for (const f of decoder.frames(
        Buffer.concat([encodeFrame({ ok: 1 }), Buffer.from([0, 0, 0, 1, 0x92])]),
      )) {
        got.push(f);
      }
    }, /undecodable MessagePack payload/);
    assert.deepEqual(got, [{ ok: 1 }]);
  });

  test('undecodable payloads and empty frames raise bad-frame errors, not crashes', () => {
    for (const bytes of [
      [0, 0, 0, 0],
      [0, 0, 0, 2, 0x92, 0x01],
      [0, 0, 0, 3, 0xa5, 0x61, 0x62],
    ]) {
      assert.throws(
        () => decodeAll(new FrameDecoder(), [Buffer.from(bytes)]),
        (err: unknown) =>
          err instanceof HaError &&
          err.code === 'HA_ERR_BAD_REQUEST' &&
          err.details['reason'] === 'bad-frame',
      );
    }
  });

  test('encodeFrame refuses a payload above frameBytesMax', () => {
    assert.throws(
      () => encodeFrame({ d: new Uint8Array(2000) }, 1000),
      (err: unknown) => err instanceof HaError && err.code === 'HA_ERR_PAYLOAD_TOO_LARGE',
    );
  });
});

describe('parseMessage', () => {
  const append = samples[4] as Extract<Message, { type: 'append' }>;

  test('names the offending field inside entries', () => {
    const entries = [...append.entries, { index: 13, term: -1, type: 'noop' }];
    badField(
      () => parseMessage({ ...append, entries }),
      'peer frame: field entries[3].term: expected non-negative integer',
    );
  });

  test('rejects unknown message types', () => {
    assert.throws(
      () => parseMessage({ ...base, type: 'gossip' }),
      (err: unknown) =>
        err instanceof HaError &&
        err.code === 'HA_ERR_BAD_REQUEST' &&
        err.message.startsWith('peer frame: field type: expected one of preVote, preVoteResp, vote,'),
    );
  });

  test('rejects non-integer, negative, unsafe and non-number values where indexes belong', () => {
    for (const bad of [1.5, -1, 2 ** 53, '3', null, Number.NaN, Number.POSITIVE_INFINITY]) {
      badField(
        () => parseMessage({ ...samples[6], commit: bad }),
        'peer frame: field commit: expected non-negative integer',
      );
    }
  });

  test('rejects entries that do not follow prevLogIndex consecutively', () => {
    const entries = [append.entries[0], { ...append.entries[1], index: 12 }];
    badField(
      () => parseMessage({ ...append, entries }),
      'peer frame: field entries[1].index: expected 11 (consecutive after prevLogIndex)',
    );
  });

  test('rejects a config entry without its configuration, and bad node ids in it', () => {
    badField(
      () => parseMessage({ ...append, entries: [{ index: 10, term: 5, type: 'config' }] }),
      'peer frame: field entries[0].config: expected map',
    );
    badField(
      () =>
        parseMessage({
          ...append,
          entries: [{ index: 10, term: 5, type: 'config', config: { voters: ['n1', 7], learners: [] } }],
        }),
      'peer frame: field entries[0].config.voters[1]: expected node id',
    );
  });

  test('rejects data that is not a byte string', () => {
    badField(
      () => parseMessage({ ...samples[10], data: 'abc' }),
      'peer frame: field data: expected byte string',
    );
    badField(
      () => parseMessage({ ...samples[8], snapshot: { meta: { index: 1, term: 1, config }, data: [1] } }),
      'peer frame: field snapshot.data: expected byte string',
    );
  });

  test('rejects frames that are not maps, and missing senders', () => {
    for (const frame of [null, 3, 'heartbeat', [samples[6]], new Uint8Array(3)]) {
      badField(() => parseMessage(frame), 'peer frame: field (frame): expected map');
    }
    const { from: _from, ...noFrom } = samples[6]!;
    badField(
      () => parseMessage(noFrom),
      'peer frame: field from: expected node id (string of 1 to 255 characters)',
    );
  });

  test('readIndexResp accepts index -1 (not served) but nothing below', () => {
    assert.equal((parseMessage(samples[12]) as { index: number }).index, -1);
    badField(
      () => parseMessage({ ...samples[12], index: -2 }),
      'peer frame: field index: expected integer >= -1',
    );
  });

  test('drops fields that do not belong to the message type', () => {
    const parsed = parseMessage({ ...samples[9], extra: 'x' });
    assert.deepEqual(parsed, samples[9]);
  });

  test('refuses a snapshot chunk that runs past its total or carries a checksum wider than 32 bits', () => {
    badField(
      () => parseMessage({ ...samples[13], offset: 3500 }),
      'peer frame: field data: expected at most total - offset (596) bytes',
    );
    badField(
      () => parseMessage({ ...samples[13], crc: 2 ** 32 }),
      'peer frame: field crc: expected a 32-bit checksum',
    );
    badField(
      () => parseMessage({ ...samples[14], rewind: 'yes' }),
      'peer frame: field rewind: expected boolean',
    );
  });
});
