// Snapshot format of the KV store. Layout:
//
//   magic "akvs" (4 bytes) | format version (1 byte) | MessagePack body | CRC-32 of all before (4 bytes, BE)
//
// The body is [revision, appliedIndex, records], one record per key with retained history, sorted
// by key: [key, createRevision, entries], each entry [version, value, revision, deleted], oldest
// first. A key's current state is its last entry (live unless it is a tombstone), so values are
// stored once. Tuples and sorted keys make the bytes a function of the state alone.
//
// Decoding checks the checksum and every invariant the store relies on, and refuses anything else
// with HA_ERR_STORAGE_CORRUPT: a node never serves from a damaged snapshot.
import { crc32 } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import { HaError } from '../errors.js';
import { compareKeys, validateKey, validateValue, type KvHistoryEntry } from './kv-types.js';

export interface KvSnapshotRecord {
  readonly key: string;
  /** The createRevision of the live key; 0 when the key is deleted. */
  readonly createRevision: number;
  /** Oldest first; at least one. */
  readonly entries: readonly KvHistoryEntry[];
}

export interface KvSnapshotState {
  readonly revision: number;
  readonly appliedIndex: number;
  /** Sorted by key. */
  readonly records: readonly KvSnapshotRecord[];
}

const magic = Buffer.from('akvs', 'ascii');
const formatVersion = 1;
const headerBytes = magic.length + 1;
const checksumBytes = 4;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeKvSnapshot(state: KvSnapshotState): Uint8Array {
  const body = packr.pack([
    state.revision,
    state.appliedIndex,
    state.records.map((r) => [
      r.key,
      r.createRevision,
      r.entries.map((e) => [e.version, e.value, e.revision, e.deleted]),
    ]),
  ]);
  const out = Buffer.alloc(headerBytes + body.length + checksumBytes);
  magic.copy(out, 0);
  out[magic.length] = formatVersion;
  out.set(body, headerBytes);
  out.writeUInt32BE(crc32(out.subarray(0, headerBytes + body.length)), headerBytes + body.length);
  return out;
}

export function decodeKvSnapshot(data: Uint8Array): KvSnapshotState {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < headerBytes + checksumBytes || !buf.subarray(0, magic.length).equals(magic)) {
    throw corrupt('not a KV snapshot (bad magic or too short)');
  }
  if (buf[magic.length] !== formatVersion) {
    throw corrupt(
      `unsupported KV snapshot format ${buf[magic.length]}; this node reads format ${formatVersion}`,
    );
  }
  const bodyEnd = buf.length - checksumBytes;
  if (crc32(buf.subarray(0, bodyEnd)) !== buf.readUInt32BE(bodyEnd))
    throw corrupt('KV snapshot checksum mismatch');
  let body: unknown;
  try {
    body = unpackr.unpack(buf.subarray(headerBytes, bodyEnd));
  } catch (err) {
    throw corrupt(
      `KV snapshot body is not valid MessagePack: ${String((err as Error).message).slice(0, 120)}`,
    );
  }
  return parseBody(body);
}

function parseBody(body: unknown): KvSnapshotState {
  const [revision, appliedIndex, rawRecords] = expectTuple(body, 3, 'body');
  expectCount(revision, 'revision');
  expectCount(appliedIndex, 'appliedIndex');
  if (!Array.isArray(rawRecords)) throw corrupt('records: expected an array');
  const records: KvSnapshotRecord[] = [];
  let previousKey: string | undefined;
  for (let i = 0; i < rawRecords.length; i++) {
    const record = parseRecord(rawRecords[i], `records[${i}]`, revision);
    if (previousKey !== undefined && compareKeys(previousKey, record.key) >= 0) {
      throw corrupt(`records[${i}]: keys not strictly sorted`);
    }
    previousKey = record.key;
    records.push(record);
  }
  return { revision, appliedIndex, records };
}

function parseRecord(raw: unknown, field: string, revisionMax: number): KvSnapshotRecord {
  const [key, createRevision, rawEntries] = expectTuple(raw, 3, field);
  const keyProblem = validateKey(key);
  if (keyProblem !== null) throw corrupt(`${field}: ${keyProblem}`);
  expectCount(createRevision, `${field}.createRevision`);
  if (!Array.isArray(rawEntries) || rawEntries.length === 0)
    throw corrupt(`${field}: expected a non-empty entry list`);
  const entries: KvHistoryEntry[] = [];
  for (let i = 0; i < rawEntries.length; i++) {
    const where = `${field}.entries[${i}]`;
    const [version, value, revision, deleted] = expectTuple(rawEntries[i], 4, where);
    expectCount(version, `${where}.version`);
    expectCount(revision, `${where}.revision`);
    if (typeof deleted !== 'boolean') throw corrupt(`${where}.deleted: expected a boolean`);
    const valueProblem = validateValue(value);
    if (valueProblem !== null) throw corrupt(`${where}: ${valueProblem}`);
    const entry: KvHistoryEntry = { version, value: value as string, revision, deleted };
    checkEntryFollows(entries[i - 1], entry, where, revisionMax);
    entries.push(entry);
  }
  const last = entries[entries.length - 1];
  if (last.deleted ? createRevision !== 0 : createRevision < 1 || createRevision > last.revision) {
    throw corrupt(`${field}.createRevision: ${createRevision} does not fit the key's history`);
  }
  // When this incarnation's first put is still in the history, it names createRevision.
  const first = last.deleted ? undefined : entries[lastIncarnationStart(entries)];
  if (first !== undefined && first.version === 1 && first.revision !== createRevision) {
    throw corrupt(
      `${field}.createRevision: ${createRevision} differs from the creating entry's ${first.revision}`,
    );
  }
  return { key: key as string, createRevision, entries };
}

function checkEntryFollows(
  prev: KvHistoryEntry | undefined,
  e: KvHistoryEntry,
  where: string,
  revisionMax: number,
): void {
  if (e.revision < 1 || e.revision > revisionMax)
    throw corrupt(`${where}.revision: ${e.revision} out of 1..${revisionMax}`);
  if (e.deleted && (e.version !== 0 || e.value !== ''))
    throw corrupt(`${where}: a tombstone has version 0 and no value`);
  if (!e.deleted && e.version < 1) throw corrupt(`${where}.version: a put has version >= 1`);
  if (prev === undefined) return;
  if (e.revision <= prev.revision) throw corrupt(`${where}.revision: revisions must grow`);
  if (prev.deleted && e.deleted) throw corrupt(`${where}: two tombstones in a row`);
  const expected = prev.deleted ? 1 : prev.version + 1;
  if (!e.deleted && e.version !== expected)
    throw corrupt(`${where}.version: expected ${expected}, got ${e.version}`);
}

function lastIncarnationStart(entries: readonly KvHistoryEntry[]): number {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i].deleted) return i + 1;
  return 0;
}

function expectTuple(raw: unknown, length: number, field: string): unknown[] {
  if (!Array.isArray(raw) || raw.length !== length) throw corrupt(`${field}: expected a ${length}-tuple`);
  return raw;
}

function expectCount(raw: unknown, field: string): asserts raw is number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) {
    throw corrupt(`${field}: expected a non-negative integer`);
  }
}

function corrupt(message: string): HaError {
  return new HaError('HA_ERR_STORAGE_CORRUPT', message);
}
