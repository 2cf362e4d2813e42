// The on-disk layout of a data file and how a connection is prepared to use it. The schema
// version lives in PRAGMA user_version; a build refuses a newer version rather than misread it.
import type Database from 'better-sqlite3';
import { HaError } from '../errors.js';
import { rowChecksum } from './entry-codec.js';
import type { SnapshotFiles } from './snapshot-files.js';

// Version 2: snapshot bytes moved out of the snapshot row into their own file (snapshot-files.ts);
// the row names the file, its size and its CRC-32. A version-1 file is migrated at open.
export const schemaVersion = 2;

// Single-row tables pin their row to id 1, so a second row cannot appear by mistake. STRICT makes
// SQLite refuse a value of the wrong type instead of storing it. The `commit` column is called
// commit_index because COMMIT is an SQL keyword.
const snapshotTable = (name: string): string => `
  CREATE TABLE ${name} (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    idx INTEGER NOT NULL,
    term INTEGER NOT NULL,
    config BLOB NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    data_crc INTEGER NOT NULL,
    crc INTEGER NOT NULL
  ) STRICT;
`;

/** The snapshot row's checksum covers every column. */
export function snapshotRowChecksum(
  idx: number,
  term: number,
  config: Uint8Array,
  file: string,
  size: number,
  dataCrc: number,
): number {
  return rowChecksum([idx, term, config, file, size, dataCrc]);
}

const schemaTables = `
  CREATE TABLE log (
    idx INTEGER PRIMARY KEY,
    term INTEGER NOT NULL,
    type INTEGER NOT NULL,
    payload BLOB NOT NULL,
    crc INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE hard_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    term INTEGER NOT NULL,
    voted_for TEXT,
    commit_index INTEGER NOT NULL,
    crc INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    crc INTEGER NOT NULL
  ) STRICT;
`;

/**
 * Durability settings first, then the schema: created in one transaction on a new file, checked
 * on an existing one. WAL with synchronous=FULL syncs the log on every commit, so a commit that
 * returned survives kill -9 and power loss (DESIGN.md §4).
 */
export function prepareDatabase(db: Database.Database, filePath: string, files: SnapshotFiles): void {
  const journalMode = db.pragma('journal_mode = WAL', { simple: true });
  if (journalMode !== 'wal') {
    throw new HaError(
      'HA_ERR_INTERNAL',
      `data file ${filePath}: cannot enable WAL (journal mode ${String(journalMode)})`,
    );
  }
  db.pragma('synchronous = FULL');

  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > schemaVersion) {
    throw new HaError(
      'HA_ERR_STORAGE_CORRUPT',
      `data dir schema version ${version} is newer than this build supports (${schemaVersion}): ${filePath}`,
      { file: filePath, schemaVersion: version, schemaVersionSupported: schemaVersion },
    );
  }
  if (version === schemaVersion) return;
  if (version === 1) {
    migrateFromV1(db, files);
    return;
  }
  if (version !== 0) {
    throw new HaError(
      'HA_ERR_STORAGE_CORRUPT',
      `data file ${filePath} has unknown schema version ${version}`,
      {
        file: filePath,
        schemaVersion: version,
      },
    );
  }

  const tableCount = (db.prepare('SELECT count(*) FROM sqlite_master').pluck().get() as number) ?? 0;
  if (tableCount > 0) {
    // Tables without a version: some other program's database, not a data file to write into.
    throw new HaError('HA_ERR_STORAGE_CORRUPT', `data file ${filePath} has tables but no schema version`, {
      file: filePath,
    });
  }
  db.transaction(() => {
    db.exec(schemaTables + snapshotTable('snapshot'));
    db.pragma(`user_version = ${schemaVersion}`);
  })();
}

interface SnapshotRowV1 {
  readonly idx: number;
  readonly term: number;
  readonly config: Buffer;
  readonly data: Buffer;
  readonly crc: number;
}

/**
 * Version 1 kept the snapshot bytes in the row. The bytes go to a file first (durable before the
 * row changes); then one transaction replaces the table. The old row's checksum is checked, so a
 * damaged row is refused, not carried over.
 */
function migrateFromV1(db: Database.Database, files: SnapshotFiles): void {
  const old = db.prepare('SELECT idx, term, config, data, crc FROM snapshot WHERE id = 1').get() as
    SnapshotRowV1 | undefined;
  if (old !== undefined && old.crc !== rowChecksum([old.idx, old.term, old.config, old.data])) {
    throw new HaError('HA_ERR_STORAGE_CORRUPT', `snapshot index ${old.idx}: checksum mismatch (schema 1)`);
  }
  const ref = old === undefined ? null : files.writeSync({ index: old.idx, term: old.term }, old.data);
  db.transaction(() => {
    db.exec(snapshotTable('snapshot_v2'));
    if (old !== undefined && ref !== null) {
      db.prepare(
        'INSERT INTO snapshot_v2 (id, idx, term, config, file, size, data_crc, crc) VALUES (1, ?, ?, ?, ?, ?, ?, ?)',
      ).run(
        old.idx,
        old.term,
        old.config,
        ref.name,
        ref.size,
        ref.crc,
        snapshotRowChecksum(old.idx, old.term, old.config, ref.name, ref.size, ref.crc),
      );
    }
    db.exec('DROP TABLE snapshot; ALTER TABLE snapshot_v2 RENAME TO snapshot;');
    db.pragma(`user_version = ${schemaVersion}`);
  })();
}
