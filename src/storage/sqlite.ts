// RaftStorage in a SQLite file (better-sqlite3): the production store. One transaction per
// persist() or compact(), so one fsync per Ready batch, never one per entry (DESIGN.md §4).
//
// Every row carries a CRC-32 over all of its columns. load() checks every row and the shape of the
// log (contiguous, starting right after the snapshot, terms never decreasing) and refuses a store
// that fails any check: a node must not vote or acknowledge from state it cannot trust.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { HaError } from '../errors.js';
import type {
  ClusterConfig,
  Entry,
  HardState,
  Index,
  NodeId,
  RaftInitialState,
  Snapshot,
} from '../raft/types.js';
import {
  decodeConfig,
  decodeEntry,
  encodeConfig,
  encodeEntryPayload,
  entryTypeCode,
  rowChecksum,
} from './entry-codec.js';
import { prepareDatabase, snapshotRowChecksum } from './sqlite-schema.js';
import { SnapshotFiles, type SnapshotFileRef } from './snapshot-files.js';
import type { PersistBatch, RaftStorage } from './types.js';

interface LogRow {
  readonly idx: number;
  readonly term: number;
  readonly type: number;
  readonly payload: Buffer;
  readonly crc: number;
}
interface HardStateRow {
  readonly term: number;
  readonly voted_for: string | null;
  readonly commit_index: number;
  readonly crc: number;
}
interface SnapshotRow {
  readonly idx: number;
  readonly term: number;
  readonly config: Buffer;
  readonly file: string;
  readonly size: number;
  readonly data_crc: number;
  readonly crc: number;
}

/**
 * Log rows deleted per transaction after a compaction, one batch per turn. Small: a row may carry
 * up to a 1 MiB value, and freeing its overflow pages is most of a delete's cost.
 */
const deleteBatchRows = 256;
interface MetaRow {
  readonly value: string;
  readonly crc: number;
}

/** Where the stored log stands, kept in memory so that persist() checks a batch without a query. */
interface LogBounds {
  readonly snapshotIndex: Index;
  /** The last stored entry's index, or the snapshot index when the log is empty. */
  readonly lastIndex: Index;
}

export class SqliteStorage implements RaftStorage {
  private readonly db: Database.Database;
  private readonly filePath: string;
  private readonly files: SnapshotFiles;
  private bounds: LogBounds;
  private closed = false;
  /** The snapshot file the snapshot row names (null: none yet). */
  private snapshotFile: string | null;
  /** Log rows up to this index are covered by the snapshot and still to be deleted. */
  private deleteUpTo: Index = 0;
  private deleteTimer: NodeJS.Immediate | null = null;

  private readonly insertEntry: Database.Statement<[number, number, number, Uint8Array, number]>;
  private readonly deleteEntriesFrom: Database.Statement<[number]>;
  private readonly deleteEntriesUpTo: Database.Statement<[number]>;
  private readonly upsertHardState: Database.Statement<[number, string | null, number, number]>;
  private readonly upsertSnapshot: Database.Statement<
    [number, number, Uint8Array, string, number, number, number]
  >;
  private readonly deleteEntriesBetween: Database.Statement<[number, number]>;
  private readonly upsertMeta: Database.Statement<[string, string, number]>;
  private readonly selectEntries: Database.Statement<[], LogRow>;
  private readonly selectHardState: Database.Statement<[], HardStateRow>;
  private readonly selectSnapshot: Database.Statement<[], SnapshotRow>;
  private readonly selectMeta: Database.Statement<[string], MetaRow>;
  private readonly persistTransaction: (batch: PersistBatch, ref: SnapshotFileRef | null) => void;
  private readonly compactTransaction: (snapshot: Snapshot, ref: SnapshotFileRef) => void;

  /**
   * Opens (creating if absent) the data file at filePath. Throws HaError HA_ERR_STORAGE_CORRUPT
   * for a file that is not a data file of a schema this build supports.
   */
  static open(filePath: string): SqliteStorage {
    let db: Database.Database | null = null;
    try {
      const files = new SnapshotFiles(`${filePath}.snap`);
      files.prepare();
      db = new Database(filePath);
      prepareDatabase(db, filePath, files);
      return new SqliteStorage(db, filePath, files);
    } catch (err) {
      db?.close();
      throw asHaError(err, filePath, 'open');
    }
  }

  private constructor(db: Database.Database, filePath: string, files: SnapshotFiles) {
    this.db = db;
    this.filePath = filePath;
    this.files = files;

    this.insertEntry = db.prepare('INSERT INTO log (idx, term, type, payload, crc) VALUES (?, ?, ?, ?, ?)');
    this.deleteEntriesFrom = db.prepare('DELETE FROM log WHERE idx >= ?');
    this.deleteEntriesUpTo = db.prepare('DELETE FROM log WHERE idx <= ?');
    this.deleteEntriesBetween = db.prepare('DELETE FROM log WHERE idx > ? AND idx <= ?');
    this.upsertHardState = db.prepare(
      'INSERT OR REPLACE INTO hard_state (id, term, voted_for, commit_index, crc) VALUES (1, ?, ?, ?, ?)',
    );
    this.upsertSnapshot = db.prepare(
      'INSERT OR REPLACE INTO snapshot (id, idx, term, config, file, size, data_crc, crc) VALUES (1, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.upsertMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value, crc) VALUES (?, ?, ?)');
    this.selectEntries = db.prepare('SELECT idx, term, type, payload, crc FROM log ORDER BY idx');
    this.selectHardState = db.prepare(
      'SELECT term, voted_for, commit_index, crc FROM hard_state WHERE id = 1',
    );
    this.selectSnapshot = db.prepare(
      'SELECT idx, term, config, file, size, data_crc, crc FROM snapshot WHERE id = 1',
    );
    this.selectMeta = db.prepare('SELECT value, crc FROM meta WHERE key = ?');

    this.persistTransaction = db.transaction((batch: PersistBatch, ref: SnapshotFileRef | null) => {
      if (batch.snapshot !== null && ref !== null) {
        // A received snapshot replaces the whole log: entries after it came from another history.
        this.deleteEntriesFrom.run(0);
        this.writeSnapshotRow(batch.snapshot, ref);
      }
      const first = batch.entries[0];
      if (first !== undefined) {
        this.deleteEntriesFrom.run(first.index);
        for (const entry of batch.entries) this.writeEntry(entry);
      }
      if (batch.hardState !== null) this.writeHardState(batch.hardState);
    });
    // Compaction records the snapshot and deletes the first batch of covered rows; the rest go
    // a batch per turn (deleteCovered), so that no transaction holds the event loop for long.
    this.compactTransaction = db.transaction((snapshot: Snapshot, ref: SnapshotFileRef) => {
      this.writeSnapshotRow(snapshot, ref);
    });

    const row = db.prepare('SELECT idx, file FROM snapshot WHERE id = 1').get() as
      { idx: number; file: string } | undefined;
    const snapshotIndex = row?.idx ?? 0;
    this.snapshotFile = row?.file ?? null;
    // Files no row names: a snapshot written before a crash, never recorded; or a replaced one.
    files.removeAllBut(this.snapshotFile);
    // Rows a compaction had not finished deleting.
    this.deleteEntriesUpTo.run(snapshotIndex);
    const maxIndex = db.prepare('SELECT max(idx) FROM log').pluck().get() as number | null;
    this.bounds = { snapshotIndex, lastIndex: Math.max(maxIndex ?? 0, snapshotIndex) };
  }

  load(bootstrap: ClusterConfig): RaftInitialState {
    this.assertOpen();
    try {
      const snapshot = this.readSnapshot() ?? {
        meta: { index: 0, term: 0, config: bootstrap },
        data: new Uint8Array(0),
      };
      const hardState = this.readHardState() ?? { term: 0, votedFor: null, commit: 0 };
      const entries = this.readEntries(snapshot);
      this.bounds = {
        snapshotIndex: snapshot.meta.index,
        lastIndex: entries.at(-1)?.index ?? snapshot.meta.index,
      };
      return { hardState, snapshot, entries, applied: snapshot.meta.index };
    } catch (err) {
      throw asHaError(err, this.filePath, 'load');
    }
  }

  persist(batch: PersistBatch): void {
    this.assertOpen();
    if (batch.snapshot === null && batch.entries.length === 0 && batch.hardState === null) return;
    const bounds = boundsAfterBatch(this.bounds, batch);
    let ref: SnapshotFileRef | null = null;
    try {
      if (batch.snapshot !== null) ref = this.files.writeSync(batch.snapshot.meta, batch.snapshot.data);
      this.persistTransaction(batch, ref);
    } catch (err) {
      if (ref !== null && ref.name !== this.snapshotFile) this.files.remove(ref.name);
      throw asHaError(err, this.filePath, 'persist');
    }
    // Only after the commit: a failed transaction rolled back and left the old bounds true.
    this.bounds = bounds;
    if (ref !== null) this.replacedSnapshotFile(ref.name);
  }

  compact(snapshot: Snapshot): void {
    this.assertOpen();
    this.checkCompaction(snapshot);
    let ref: SnapshotFileRef | null = null;
    try {
      ref = this.files.writeSync(snapshot.meta, snapshot.data);
      this.compactTransaction(snapshot, ref);
    } catch (err) {
      if (ref !== null && ref.name !== this.snapshotFile) this.files.remove(ref.name);
      throw asHaError(err, this.filePath, 'compact');
    }
    this.compacted(snapshot, ref);
  }

  /**
   * compact() with the snapshot file written by the file system's threads: the event loop only
   * runs the small transaction that records it, then deletes the covered rows a batch per turn.
   */
  compactAsync(snapshot: Snapshot, done: (err: Error | null) => void): void {
    this.assertOpen();
    this.checkCompaction(snapshot);
    this.files.writeAsync(snapshot.meta, snapshot.data).then(
      (ref) => {
        if (this.closed) {
          done(new Error(`data file ${this.filePath} closed before the snapshot was recorded`));
          return;
        }
        if (snapshot.meta.index <= this.bounds.snapshotIndex || snapshot.meta.index > this.bounds.lastIndex) {
          // A snapshot from the leader replaced the log meanwhile.
          if (ref.name !== this.snapshotFile) this.files.remove(ref.name);
          done(
            new Error(
              `snapshot at ${snapshot.meta.index} superseded by the one at ${this.bounds.snapshotIndex}`,
            ),
          );
          return;
        }
        try {
          this.compactTransaction(snapshot, ref);
        } catch (err) {
          if (ref.name !== this.snapshotFile) this.files.remove(ref.name);
          done(asHaError(err, this.filePath, 'compact') as Error);
          return;
        }
        this.compacted(snapshot, ref);
        done(null);
      },
      (err: unknown) => {
        const e = err as NodeJS.ErrnoException;
        done(
          new HaError(
            'HA_ERR_INTERNAL',
            `data file ${this.filePath}: writing a snapshot failed: ${e.message}`,
          ),
        );
      },
    );
  }

  private checkCompaction(snapshot: Snapshot): void {
    assert(
      snapshot.meta.index >= this.bounds.snapshotIndex,
      'a snapshot must not be older than the stored one',
    );
    assert(snapshot.meta.index <= this.bounds.lastIndex, 'compaction cannot go past the last stored entry');
  }

  private compacted(snapshot: Snapshot, ref: SnapshotFileRef): void {
    const from = this.bounds.snapshotIndex;
    this.bounds = { snapshotIndex: snapshot.meta.index, lastIndex: this.bounds.lastIndex };
    this.replacedSnapshotFile(ref.name);
    this.deleteUpTo = Math.max(this.deleteUpTo, snapshot.meta.index);
    if (this.deleteTimer === null) this.deleteCovered(from);
  }

  /** Deletes covered log rows after `from`, one batch per turn of the event loop. */
  private deleteCovered(from: Index): void {
    if (this.closed || from >= this.deleteUpTo) {
      this.deleteTimer = null;
      return;
    }
    const to = Math.min(from + deleteBatchRows, this.deleteUpTo);
    try {
      this.deleteEntriesBetween.run(from, to);
    } catch {
      // Left for the next open, which deletes every covered row.
      this.deleteTimer = null;
      return;
    }
    this.deleteTimer = setImmediate(() => this.deleteCovered(to));
  }

  private replacedSnapshotFile(name: string): void {
    const old = this.snapshotFile;
    this.snapshotFile = name;
    if (old !== null && old !== name) this.files.remove(old);
  }

  /** Records which cluster and node this data file belongs to (or any other small fact). */
  setMeta(key: string, value: string): void {
    this.assertOpen();
    try {
      this.upsertMeta.run(key, value, rowChecksum([key, value]));
    } catch (err) {
      throw asHaError(err, this.filePath, 'setMeta');
    }
  }

  getMeta(key: string): string | null {
    this.assertOpen();
    let row: MetaRow | undefined;
    try {
      row = this.selectMeta.get(key);
    } catch (err) {
      throw asHaError(err, this.filePath, 'getMeta');
    }
    if (row === undefined) return null;
    if (row.crc !== rowChecksum([key, row.value])) throw this.corrupt('meta', key, 'checksum mismatch');
    return row.value;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.deleteTimer !== null) clearImmediate(this.deleteTimer);
    this.deleteTimer = null;
    this.db.close();
  }

  private writeEntry(entry: Entry): void {
    const type = entryTypeCode(entry.type);
    const payload = encodeEntryPayload(entry);
    this.insertEntry.run(
      entry.index,
      entry.term,
      type,
      payload,
      rowChecksum([entry.index, entry.term, type, payload]),
    );
  }

  private writeHardState(hardState: HardState): void {
    const { term, votedFor, commit } = hardState;
    this.upsertHardState.run(term, votedFor, commit, rowChecksum([term, votedFor, commit]));
  }

  private writeSnapshotRow(snapshot: Snapshot, ref: SnapshotFileRef): void {
    const { index, term } = snapshot.meta;
    const config = encodeConfig(snapshot.meta.config);
    this.upsertSnapshot.run(
      index,
      term,
      config,
      ref.name,
      ref.size,
      ref.crc,
      snapshotRowChecksum(index, term, config, ref.name, ref.size, ref.crc),
    );
  }

  private readSnapshot(): Snapshot | null {
    const row = this.selectSnapshot.get();
    if (row === undefined) return null;
    if (row.crc !== snapshotRowChecksum(row.idx, row.term, row.config, row.file, row.size, row.data_crc)) {
      throw this.corrupt('snapshot', row.idx, 'checksum mismatch');
    }
    let config: ClusterConfig;
    try {
      config = decodeConfig(row.config);
    } catch (err) {
      throw this.corrupt('snapshot', row.idx, (err as Error).message);
    }
    const data = this.files.read(
      { name: row.file, size: row.size, crc: row.data_crc },
      `data file ${this.filePath}: snapshot index ${row.idx}`,
    );
    return { meta: { index: row.idx, term: row.term, config }, data };
  }

  private readHardState(): HardState | null {
    const row = this.selectHardState.get();
    if (row === undefined) return null;
    if (row.crc !== rowChecksum([row.term, row.voted_for, row.commit_index])) {
      throw this.corrupt('hard_state', 'term ' + String(row.term), 'checksum mismatch');
    }
    return { term: row.term, votedFor: row.voted_for as NodeId | null, commit: row.commit_index };
  }

  private readEntries(snapshot: Snapshot): Entry[] {
    const entries: Entry[] = [];
    let previous = { index: snapshot.meta.index, term: snapshot.meta.term };
    for (const row of this.selectEntries.iterate()) {
      if (row.crc !== rowChecksum([row.idx, row.term, row.type, row.payload])) {
        throw this.corrupt('log', row.idx, 'checksum mismatch');
      }
      if (row.idx !== previous.index + 1) {
        throw this.corrupt(
          'log',
          row.idx,
          `expected index ${previous.index + 1} (entries must follow on without gaps)`,
        );
      }
      if (row.term < previous.term) {
        throw this.corrupt('log', row.idx, `term ${row.term} is lower than term ${previous.term} before it`);
      }
      try {
        entries.push(decodeEntry(row.idx, row.term, row.type, row.payload));
      } catch (err) {
        throw this.corrupt('log', row.idx, (err as Error).message);
      }
      previous = { index: row.idx, term: row.term };
    }
    return entries;
  }

  private corrupt(table: string, row: number | string, problem: string): HaError {
    const where = typeof row === 'number' ? `${table} index ${row}` : `${table} ${row}`;
    return new HaError('HA_ERR_STORAGE_CORRUPT', `data file ${this.filePath}: ${where}: ${problem}`, {
      file: this.filePath,
      table,
      row,
    });
  }

  private assertOpen(): void {
    assert(!this.closed, `data file ${this.filePath} is closed`);
  }
}

/** Checks a batch against the stored log (a violation is a bug in the caller) and says where it leaves it. */
function boundsAfterBatch(bounds: LogBounds, batch: PersistBatch): LogBounds {
  let { snapshotIndex, lastIndex } = bounds;
  if (batch.snapshot !== null) {
    assert(batch.snapshot.meta.index >= snapshotIndex, 'a snapshot must not be older than the stored one');
    snapshotIndex = batch.snapshot.meta.index;
    lastIndex = snapshotIndex;
  }
  const first = batch.entries[0];
  if (first !== undefined) {
    assert(
      first.index > snapshotIndex,
      `entry ${first.index} is covered by the snapshot at ${snapshotIndex}`,
    );
    assert(first.index <= lastIndex + 1, `entry ${first.index} would leave a gap after ${lastIndex}`);
    for (let i = 1; i < batch.entries.length; i++) {
      const entry = batch.entries[i];
      assert(entry.index === first.index + i, `batch entries are not contiguous at ${entry.index}`);
      assert(entry.term >= batch.entries[i - 1].term, `batch entry terms decrease at ${entry.index}`);
    }
    lastIndex = batch.entries[batch.entries.length - 1].index;
  }
  return { snapshotIndex, lastIndex };
}

/**
 * Errors from SQLite become HaErrors: damage to the file is HA_ERR_STORAGE_CORRUPT, anything else
 * the environment causes (disk full, I/O error, permissions) HA_ERR_INTERNAL. Assertion failures
 * and HaErrors pass through unchanged.
 */
function asHaError(err: unknown, filePath: string, action: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const damaged = err.code.startsWith('SQLITE_CORRUPT') || err.code === 'SQLITE_NOTADB';
  return new HaError(
    damaged ? 'HA_ERR_STORAGE_CORRUPT' : 'HA_ERR_INTERNAL',
    `data file ${filePath}: ${action} failed: ${err.message} (${err.code})`,
    { file: filePath, sqliteCode: err.code },
  );
}
