// Byte encodings for what the SQLite store keeps in BLOB columns, and the checksum every row
// carries. Decoders throw a plain Error naming what is wrong; the store wraps it in an HaError that
// names the table and row, which only it knows.
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { ClusterConfig, Entry, EntryType, Index, NodeId, Term } from '../raft/types.js';

// Plain maps, no record extension: a stored row must decode on its own, long after the process
// that wrote it, without structure definitions that lived in another row or process.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

// Stored as integers: the codes are part of the on-disk format (schema version 1), so a new entry
// type gets a new code and existing codes never change meaning.
const entryTypeCodes: Readonly<Record<EntryType, number>> = { normal: 0, noop: 1, config: 2 };
const entryTypesByCode: readonly EntryType[] = ['normal', 'noop', 'config'];

export const entryTypeCode = (type: EntryType): number => entryTypeCodes[type];

export function entryTypeFromCode(code: number): EntryType {
  const type = entryTypesByCode[code];
  if (type === undefined) throw new Error(`unknown entry type code ${code}`);
  return type;
}

/** The optional parts of an entry; index, term and type have columns of their own. */
interface EntryPayload {
  d?: Uint8Array;
  r?: string;
  c?: ClusterConfig;
}

export function encodeEntryPayload(entry: Entry): Uint8Array {
  const payload: EntryPayload = {};
  if (entry.data !== undefined) payload.d = entry.data;
  if (entry.requestId !== undefined) payload.r = entry.requestId;
  if (entry.config !== undefined)
    payload.c = { voters: entry.config.voters, learners: entry.config.learners };
  return packr.pack(payload);
}

export function decodeEntry(index: Index, term: Term, typeCode: number, payloadBytes: Uint8Array): Entry {
  const type = entryTypeFromCode(typeCode);
  const payload: unknown = packr.unpack(payloadBytes);
  if (!isPlainObject(payload)) throw new Error('entry payload is not a map');
  const { d, r, c } = payload;
  if (d !== undefined && !(d instanceof Uint8Array)) throw new Error('entry data is not bytes');
  if (r !== undefined && typeof r !== 'string') throw new Error('entry requestId is not a string');
  // Keys that were absent when written stay absent, so that a reloaded entry equals the original.
  return {
    index,
    term,
    type,
    ...(d !== undefined && { data: plainBytes(d) }),
    ...(r !== undefined && { requestId: r }),
    ...(c !== undefined && { config: toClusterConfig(c) }),
  };
}

export function encodeConfig(config: ClusterConfig): Uint8Array {
  return packr.pack({ voters: config.voters, learners: config.learners });
}

export function decodeConfig(bytes: Uint8Array): ClusterConfig {
  return toClusterConfig(packr.unpack(bytes));
}

/**
 * The stored Uint8Array, not the Buffer subclass the SQLite driver and the decoder hand out: a
 * reloaded value then compares equal to the original. A view, not a copy (snapshots are large).
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export type ChecksumField = number | string | null | Uint8Array;

/**
 * CRC-32 over every column of a row (except the checksum itself), so that a damaged index, term
 * or vote is caught as surely as a damaged payload. Each field is tagged and length-prefixed:
 * moving a byte from one field into its neighbour changes the checksum.
 */
export function rowChecksum(fields: readonly ChecksumField[]): number {
  let crc = 0;
  for (const field of fields) {
    if (field === null) {
      crc = crc32(tagNull, crc);
    } else if (typeof field === 'number') {
      const header = new DataView(new ArrayBuffer(9));
      header.setUint8(0, tagNumber);
      header.setFloat64(1, field);
      crc = crc32(header, crc);
    } else {
      const bytes = typeof field === 'string' ? textEncoder.encode(field) : field;
      const header = new DataView(new ArrayBuffer(5));
      header.setUint8(0, typeof field === 'string' ? tagString : tagBytes);
      header.setUint32(1, bytes.byteLength);
      crc = crc32(bytes, crc32(header, crc));
    }
  }
  return crc;
}

const tagNumber = 1;
const tagString = 2;
const tagBytes = 3;
const tagNull = new Uint8Array([0]);
const textEncoder = new TextEncoder();

function toClusterConfig(value: unknown): ClusterConfig {
  if (!isPlainObject(value)) throw new Error('cluster config is not a map');
  return { voters: toNodeIds(value.voters, 'voters'), learners: toNodeIds(value.learners, 'learners') };
}

function toNodeIds(value: unknown, field: string): NodeId[] {
  if (!Array.isArray(value) || !value.every((id) => typeof id === 'string')) {
    throw new Error(`cluster config ${field} is not a list of node ids`);
  }
  return value as NodeId[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}
