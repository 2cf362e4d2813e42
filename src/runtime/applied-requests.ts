// Exactly-once application of proposals (thesis §6.3). A proposal can reach the log twice: a
// forwarded proposal duplicated on the way, or re-sent by a follower after a leader change. The
// runtime remembers the request ids of the last `appliedRequestsMax` applied entries and skips a
// repeat. The table is replicated state: every node builds it from the same log, and it travels
// inside snapshots, so that a node restored from a snapshot skips exactly what the others skip.
import { Packr } from 'msgpackr';
import { HaError } from '../errors.js';

/** Request ids remembered; a duplicate arriving later than this many applies would apply twice. */
export const appliedRequestsMax = 16_384;

const packr = new Packr({ useRecords: false });

export class AppliedRequests {
  private ids = new Set<string>();

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > appliedRequestsMax) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
  }

  /** Wraps the state machine's snapshot together with the table. */
  wrapSnapshot(stateMachineData: Uint8Array): Uint8Array {
    return packr.pack({ v: 1, sm: stateMachineData, ids: [...this.ids] });
  }

  /** Restores the table and returns the state machine's part of the snapshot. */
  unwrapSnapshot(data: Uint8Array): Uint8Array {
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (err) {
      throw new HaError(
        'HA_ERR_STORAGE_CORRUPT',
        `snapshot envelope is undecodable: ${(err as Error).message}`,
      );
    }
    const d = decoded as { v?: unknown; sm?: unknown; ids?: unknown };
    if (
      d.v !== 1 ||
      !(d.sm instanceof Uint8Array) ||
      !Array.isArray(d.ids) ||
      !d.ids.every((x) => typeof x === 'string')
    ) {
      throw new HaError('HA_ERR_STORAGE_CORRUPT', 'snapshot envelope has an unexpected shape');
    }
    this.ids = new Set(d.ids as string[]);
    return d.sm;
  }
}
