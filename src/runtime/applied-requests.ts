// Exactly-once application of proposals (thesis §6.3). A proposal can reach the log twice: a
// forwarded proposal duplicated on the way, or re-sent by a follower after a leader change. The
// runtime remembers the request ids of the last `appliedRequestsMax` applied entries, with the
// state machine's result for each, and skips a repeat. The table is replicated state: every node
// builds it from the same log, and it travels inside snapshots, so that a node restored from a
// snapshot skips exactly what the others skip — and can still answer a client whose entry it
// received inside that snapshot (the saved response of §6.3), instead of letting it time out.
import { Packr } from 'msgpackr';
import { HaError } from '../errors.js';

/** Request ids remembered; a duplicate arriving later than this many applies would apply twice. */
export const appliedRequestsMax = 16_384;

const packr = new Packr({ useRecords: false });

// Envelope version 3 (written): magic "aenv" | 3 | table length (u32 BE) | MessagePack {ids,
// results} | the state machine's snapshot bytes as they are. The state machine's part is not
// re-encoded, so a snapshot made in chunks is wrapped by putting a small head in front of them.
// Versions 1 and 2 (read only) were one MessagePack map holding the state machine's bytes.
const envelopeMagic = Buffer.from('aenv', 'ascii');
const envelopeHeadBytes = envelopeMagic.length + 1 + 4;

export class AppliedRequests {
  /** Request id -> the state machine's result (undefined when none was recorded). */
  private results = new Map<string, unknown>();

  has(id: string): boolean {
    return this.results.has(id);
  }

  /** The result saved when `id` was applied (undefined if not remembered or none saved). */
  result(id: string): unknown {
    return this.results.get(id);
  }

  add(id: string, result?: unknown): void {
    this.results.set(id, result);
    if (this.results.size > appliedRequestsMax) {
      // A Map iterates in insertion order: the first is the oldest.
      const oldest = this.results.keys().next().value as string;
      this.results.delete(oldest);
    }
  }

  /** Wraps the state machine's snapshot together with the table. */
  wrapSnapshot(stateMachineData: Uint8Array): Uint8Array {
    return Buffer.concat([this.snapshotHead(), stateMachineData]);
  }

  /** The table as it is now, as the head of a snapshot; the state machine's bytes follow it. */
  snapshotHead(): Uint8Array {
    const table = packr.pack({ ids: [...this.results.keys()], results: [...this.results.values()] });
    const head = Buffer.alloc(envelopeHeadBytes + table.length);
    envelopeMagic.copy(head, 0);
    head[envelopeMagic.length] = 3;
    head.writeUInt32BE(table.length, envelopeMagic.length + 1);
    head.set(table, envelopeHeadBytes);
    return head;
  }

  /** Restores the table and returns the state machine's part of the snapshot. */
  unwrapSnapshot(data: Uint8Array): Uint8Array {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length >= envelopeHeadBytes && buf.subarray(0, envelopeMagic.length).equals(envelopeMagic)) {
      return this.unwrapV3(buf);
    }
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (err) {
      throw new HaError(
        'HA_ERR_STORAGE_CORRUPT',
        `snapshot envelope is undecodable: ${(err as Error).message}`,
      );
    }
    const d = decoded as { v?: unknown; sm?: unknown; ids?: unknown; results?: unknown };
    // Version 1 (before results were saved) carries ids only.
    const results = d.v === 1 ? [] : d.results;
    if (
      (d.v !== 1 && d.v !== 2) ||
      !(d.sm instanceof Uint8Array) ||
      !Array.isArray(d.ids) ||
      !d.ids.every((x) => typeof x === 'string') ||
      !Array.isArray(results) ||
      (d.v === 2 && results.length !== d.ids.length)
    ) {
      throw new HaError('HA_ERR_STORAGE_CORRUPT', 'snapshot envelope has an unexpected shape');
    }
    const ids = d.ids as string[];
    this.results = new Map(ids.map((id, i) => [id, results[i] as unknown]));
    return d.sm;
  }

  private unwrapV3(buf: Buffer): Uint8Array {
    const bad = (why: string): HaError => new HaError('HA_ERR_STORAGE_CORRUPT', `snapshot envelope: ${why}`);
    if (buf[envelopeMagic.length] !== 3) throw bad(`unsupported version ${buf[envelopeMagic.length]}`);
    const tableBytes = buf.readUInt32BE(envelopeMagic.length + 1);
    if (envelopeHeadBytes + tableBytes > buf.length) throw bad('table runs past the end');
    let table: unknown;
    try {
      table = packr.unpack(buf.subarray(envelopeHeadBytes, envelopeHeadBytes + tableBytes));
    } catch (err) {
      throw bad(`table is undecodable: ${(err as Error).message}`);
    }
    const t = table as { ids?: unknown; results?: unknown };
    if (
      !Array.isArray(t.ids) ||
      !t.ids.every((x) => typeof x === 'string') ||
      !Array.isArray(t.results) ||
      t.results.length !== t.ids.length
    ) {
      throw bad('table has an unexpected shape');
    }
    const results = t.results as unknown[];
    this.results = new Map((t.ids as string[]).map((id, i) => [id, results[i]]));
    return buf.subarray(envelopeHeadBytes + tableBytes);
  }
}
