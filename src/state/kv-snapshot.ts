// Snapshot format of the KV store. Layout:
//
//   magic "akvs" (4 bytes) | format version (1 byte) | body | CRC-32 of all before (4 bytes, BE)
//
// Format 2 (written): the body is a sequence of MessagePack values: [revision, appliedIndex],
// then one record per key with retained history, sorted by key: [key, createRevision, entries],
// each entry [version, value, revision, deleted], oldest first; then the record count. A key's
// current state is its last entry (live unless it is a tombstone), so values are stored once.
// Being a sequence, it is written record by record (KvSnapshotWriter), so a large state is encoded
// in slices between other work (kv.ts snapshotStream) and never as one long task. Tuples and
// sorted keys make the bytes a function of the state alone.
// Format 1 (read only, written by earlier builds): the body is one value [revision, appliedIndex,
// records].
//
// Decoding checks the checksum and every invariant the store relies on, and refuses anything else
// with HA_ERR_STORAGE_CORRUPT: a node never serves from a damaged snapshot.
import assert from 'node:assert/strict';
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
const formatVersion = 2;
const formatVersionsRead = [1, 2];
const headerBytes = magic.length + 1;
const checksumBytes = 4;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Writes a format-2 snapshot as a series of chunks: header(), then records() any number of times
 * with records in strictly increasing key order, then finish(). The chunks concatenated are the
 * snapshot; the checksum is kept as they are made.
 */
export class KvSnapshotWriter {
  private crc = 0;
  private count = 0;
  private finished = false;

  constructor(
    private readonly revision: number,
    private readonly appliedIndex: number,
  ) {}

  header(): Uint8Array {
    const body = packr.pack([this.revision, this.appliedIndex]);
    const out = Buffer.alloc(headerBytes + body.length);
    magic.copy(out, 0);
    out[magic.length] = formatVersion;
    out.set(body, headerBytes);
    return this.out(out);
  }

  records(records: readonly KvSnapshotRecord[]): Uint8Array {
    const parts = records.map((r) =>
      packr.pack([
        r.key,
        r.createRevision,
        r.entries.map((e) => [e.version, e.value, e.revision, e.deleted]),
      ]),
    );
    this.count += records.length;
    return this.out(Buffer.concat(parts));
  }

  finish(): Uint8Array {
    assert(!this.finished, 'snapshot already finished');
    this.finished = true;
    const count = packr.pack(this.count);
    this.crc = crc32(count, this.crc);
    const out = Buffer.alloc(count.length + checksumBytes);
    out.set(count, 0);
    out.writeUInt32BE(this.crc, count.length);
    return out;
  }

  private out(chunk: Buffer): Uint8Array {
    assert(!this.finished, 'snapshot already finished');
    this.crc = crc32(chunk, this.crc);
    return chunk;
  }
}

/** The whole snapshot of `state` at once (tests, small states). */
export function encodeKvSnapshot(state: KvSnapshotState): Uint8Array {
  const writer = new KvSnapshotWriter(state.revision, state.appliedIndex);
  return Buffer.concat([writer.header(), writer.records(state.records), writer.finish()]);
}

export function decodeKvSnapshot(data: Uint8Array): KvSnapshotState {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < headerBytes + checksumBytes || !buf.subarray(0, magic.length).equals(magic)) {
    throw corrupt('not a KV snapshot (bad magic or too short)');
  }
  const version = buf[magic.length];
  if (!formatVersionsRead.includes(version)) {
    throw corrupt(
      `unsupported KV snapshot format ${version}; this node reads formats ${formatVersionsRead.join(', ')}`,
    );
  }
  const bodyEnd = buf.length - checksumBytes;
  if (crc32(buf.subarray(0, bodyEnd)) !== buf.readUInt32BE(bodyEnd))
    throw corrupt('KV snapshot checksum mismatch');
  let body: unknown;
  try {
    const bytes = buf.subarray(headerBytes, bodyEnd);
    body = version === 1 ? unpackr.unpack(bytes) : unpackr.unpackMultiple(bytes);
  } catch (err) {
    throw corrupt(
      `KV snapshot body is not valid MessagePack: ${String((err as Error).message).slice(0, 120)}`,
    );
  }
  return version === 1 ? parseBody(body) : parseSequence(body as unknown[]);
}

function parseSequence(values: unknown[]): KvSnapshotState {
  if (values.length < 2) throw corrupt('body: expected a header and a record count');
  const [revision, appliedIndex] = expectTuple(values[0], 2, 'header');
  const count = values[values.length - 1];
  expectCount(count, 'record count');
  if (count !== values.length - 2) {
    throw corrupt(`record count: says ${count}, the body holds ${values.length - 2}`);
  }
  return parseRecords(revision, appliedIndex, values.slice(1, -1));
}

function parseBody(body: unknown): KvSnapshotState {
  const [revision, appliedIndex, rawRecords] = expectTuple(body, 3, 'body');
  if (!Array.isArray(rawRecords)) throw corrupt('records: expected an array');
  return parseRecords(revision, appliedIndex, rawRecords);
}

function parseRecords(revision: unknown, appliedIndex: unknown, rawRecords: unknown[]): KvSnapshotState {
  expectCount(revision, 'revision');
  expectCount(appliedIndex, 'appliedIndex');
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
