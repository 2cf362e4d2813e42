// Validation of Raft messages decoded from a peer frame (DESIGN.md §7: validate at the edge, trust
// typed values inside). The result is a fresh object holding only the fields of its message type,
// so nothing a peer adds rides along into the core.
import { HaError } from '../errors.js';
import type {
  ClusterConfig,
  Entry,
  EntryType,
  Message,
  MessageType,
  NodeId,
  ProposeErrorCode,
  Snapshot,
  SnapshotChunkMsg,
  SnapshotMeta,
} from '../raft/types.js';

/** Node ids are short names; a longer one in a frame is garbage, not a node. */
export const nodeIdLengthMax = 255;

const messageTypes: ReadonlySet<string> = new Set<MessageType>([
  'preVote',
  'preVoteResp',
  'vote',
  'voteResp',
  'append',
  'appendResp',
  'heartbeat',
  'heartbeatResp',
  'snapshot',
  'snapshotChunk',
  'snapshotChunkResp',
  'timeoutNow',
  'propose',
  'proposeResp',
  'readIndex',
  'readIndexResp',
]);
const entryTypes: ReadonlySet<string> = new Set<EntryType>(['normal', 'noop', 'config']);
const proposeErrorCodes: ReadonlySet<string> = new Set<ProposeErrorCode>([
  'HA_ERR_NOT_LEADER',
  'HA_ERR_TRANSFER_IN_PROGRESS',
  'HA_ERR_BUSY',
  'HA_ERR_CONFIG_CHANGE_PENDING',
  'HA_ERR_BAD_REQUEST',
]);

type Obj = Readonly<Record<string, unknown>>;

function fail(path: string, expected: string): never {
  throw new HaError('HA_ERR_BAD_REQUEST', `peer frame: field ${path}: expected ${expected}`, {
    field: path,
    reason: 'bad-message',
  });
}

/** A plain map as MessagePack decodes it; arrays, byte strings and extension objects are not. */
export function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const at = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}.${key}`);

function uint(o: Obj, key: string, prefix: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    fail(at(prefix, key), 'non-negative integer');
  return v;
}

function bool(o: Obj, key: string, prefix: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') fail(at(prefix, key), 'boolean');
  return v;
}

function str(o: Obj, key: string, prefix: string): string {
  const v = o[key];
  if (typeof v !== 'string') fail(at(prefix, key), 'string');
  return v;
}

function bytes(o: Obj, key: string, prefix: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) fail(at(prefix, key), 'byte string');
  // The decoder returns Buffers; hand the core the plain Uint8Array the sender had (same memory).
  return Object.getPrototypeOf(v) === Uint8Array.prototype
    ? v
    : new Uint8Array(v.buffer, v.byteOffset, v.length);
}

function isNodeId(v: unknown): v is NodeId {
  return typeof v === 'string' && v.length > 0 && v.length <= nodeIdLengthMax;
}

function node(o: Obj, key: string, prefix: string): NodeId {
  const v = o[key];
  if (!isNodeId(v)) fail(at(prefix, key), `node id (string of 1 to ${nodeIdLengthMax} characters)`);
  return v;
}

function obj(o: Obj, key: string, prefix: string): Obj {
  const v = o[key];
  if (!isPlainObject(v)) fail(at(prefix, key), 'map');
  return v;
}

function nodeList(o: Obj, key: string, prefix: string): NodeId[] {
  const v = o[key];
  const path = at(prefix, key);
  if (!Array.isArray(v)) fail(path, 'array of node ids');
  return v.map((id: unknown, i) => {
    if (!isNodeId(id)) fail(`${path}[${i}]`, 'node id');
    return id;
  });
}

function clusterConfig(o: Obj, key: string, prefix: string): ClusterConfig {
  const c = obj(o, key, prefix);
  const path = at(prefix, key);
  return { voters: nodeList(c, 'voters', path), learners: nodeList(c, 'learners', path) };
}

function entry(v: unknown, path: string, expectedIndex: number): Entry {
  if (!isPlainObject(v)) fail(path, 'map');
  const index = uint(v, 'index', path);
  // Entries in one append are consecutive after prevLogIndex; the log-matching check in the core
  // relies on it.
  if (index !== expectedIndex) fail(`${path}.index`, `${expectedIndex} (consecutive after prevLogIndex)`);
  const term = uint(v, 'term', path);
  const type = v['type'];
  if (typeof type !== 'string' || !entryTypes.has(type)) fail(`${path}.type`, 'one of normal, noop, config');
  const out: { -readonly [K in keyof Entry]: Entry[K] } = { index, term, type: type as EntryType };
  if (v['data'] !== undefined) out.data = bytes(v, 'data', path);
  if (v['requestId'] !== undefined) out.requestId = str(v, 'requestId', path);
  if (type === 'config') out.config = clusterConfig(v, 'config', path);
  return out;
}

function entries(o: Obj, prevLogIndex: number): Entry[] {
  const v = o['entries'];
  if (!Array.isArray(v)) fail('entries', 'array of entries');
  return v.map((e: unknown, i) => entry(e, `entries[${i}]`, prevLogIndex + 1 + i));
}

function snapshot(o: Obj, key: string): Snapshot {
  const s = obj(o, key, '');
  return { meta: snapshotMeta(s, 'meta', key), data: bytes(s, 'data', key) };
}

function snapshotMeta(o: Obj, key: string, prefix: string): SnapshotMeta {
  const meta = obj(o, key, prefix);
  const metaPath = at(prefix, key);
  return {
    index: uint(meta, 'index', metaPath),
    term: uint(meta, 'term', metaPath),
    config: clusterConfig(meta, 'config', metaPath),
  };
}

function snapshotChunk(f: Obj, base: { from: NodeId; to: NodeId; term: number }): SnapshotChunkMsg {
  const total = uint(f, 'total', '');
  const offset = uint(f, 'offset', '');
  const data = bytes(f, 'data', '');
  const crc = uint(f, 'crc', '');
  if (crc > 0xffffffff) fail('crc', 'a 32-bit checksum');
  if (offset + data.length > total) fail('data', `at most total - offset (${total - offset}) bytes`);
  return {
    type: 'snapshotChunk',
    ...base,
    meta: snapshotMeta(f, 'meta', ''),
    offset,
    total,
    crc,
    data,
    seq: uint(f, 'seq', ''),
    tick: uint(f, 'tick', ''),
  };
}

/**
 * Checks that a decoded frame is a well-formed Message and returns a clean copy. Throws
 * HaError HA_ERR_BAD_REQUEST naming the first bad field, e.g.
 * "peer frame: field entries[3].term: expected non-negative integer".
 */
export function parseMessage(frame: unknown): Message {
  if (!isPlainObject(frame)) fail('(frame)', 'map');
  const type = frame['type'];
  if (typeof type !== 'string' || !messageTypes.has(type)) {
    fail('type', `one of ${[...messageTypes].join(', ')}`);
  }
  const from = node(frame, 'from', '');
  const to = node(frame, 'to', '');
  const term = uint(frame, 'term', '');
  const f = frame;
  const t = type as MessageType;
  switch (t) {
    case 'preVote':
      return {
        type: t,
        from,
        to,
        term,
        lastLogIndex: uint(f, 'lastLogIndex', ''),
        lastLogTerm: uint(f, 'lastLogTerm', ''),
      };
    case 'vote':
      return {
        type: t,
        from,
        to,
        term,
        lastLogIndex: uint(f, 'lastLogIndex', ''),
        lastLogTerm: uint(f, 'lastLogTerm', ''),
        transfer: bool(f, 'transfer', ''),
      };
    case 'preVoteResp':
    case 'voteResp':
      return { type: t, from, to, term, reject: bool(f, 'reject', '') };
    case 'append': {
      const prevLogIndex = uint(f, 'prevLogIndex', '');
      return {
        type: t,
        from,
        to,
        term,
        prevLogIndex,
        prevLogTerm: uint(f, 'prevLogTerm', ''),
        entries: entries(f, prevLogIndex),
        commit: uint(f, 'commit', ''),
        seq: uint(f, 'seq', ''),
        tick: uint(f, 'tick', ''),
      };
    }
    case 'appendResp':
      return {
        type: t,
        from,
        to,
        term,
        reject: bool(f, 'reject', ''),
        matchIndex: uint(f, 'matchIndex', ''),
        hintIndex: uint(f, 'hintIndex', ''),
        seq: uint(f, 'seq', ''),
        tick: uint(f, 'tick', ''),
      };
    case 'heartbeat':
      return {
        type: t,
        from,
        to,
        term,
        commit: uint(f, 'commit', ''),
        seq: uint(f, 'seq', ''),
        tick: uint(f, 'tick', ''),
      };
    case 'heartbeatResp':
      return { type: t, from, to, term, seq: uint(f, 'seq', ''), tick: uint(f, 'tick', '') };
    case 'snapshot':
      return {
        type: t,
        from,
        to,
        term,
        snapshot: snapshot(f, 'snapshot'),
        seq: uint(f, 'seq', ''),
        tick: uint(f, 'tick', ''),
      };
    case 'snapshotChunk':
      return snapshotChunk(f, { from, to, term });
    case 'snapshotChunkResp':
      return {
        type: t,
        from,
        to,
        term,
        index: uint(f, 'index', ''),
        snapshotTerm: uint(f, 'snapshotTerm', ''),
        received: uint(f, 'received', ''),
        rewind: bool(f, 'rewind', ''),
        seq: uint(f, 'seq', ''),
        tick: uint(f, 'tick', ''),
      };
    case 'timeoutNow':
      return { type: t, from, to, term };
    case 'propose':
      return { type: t, from, to, term, data: bytes(f, 'data', ''), requestId: str(f, 'requestId', '') };
    case 'proposeResp': {
      const code = f['code'];
      if (typeof code !== 'string' || !proposeErrorCodes.has(code)) {
        fail('code', `one of ${[...proposeErrorCodes].join(', ')}`);
      }
      return { type: t, from, to, term, requestId: str(f, 'requestId', ''), code: code as ProposeErrorCode };
    }
    case 'readIndex':
      return { type: t, from, to, term, ctx: str(f, 'ctx', '') };
    case 'readIndexResp': {
      const index = f['index'];
      // -1 means "the leader could not serve this read" (see ReadIndexRespMsg).
      if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < -1) {
        fail('index', 'integer >= -1');
      }
      return { type: t, from, to, term, ctx: str(f, 'ctx', ''), index };
    }
  }
}
