// The on-disk layout of a data file and how a connection is prepared to use it. The schema
// version lives in PRAGMA user_version; a build refuses a newer version rather than misread it.
import type Database from 'better-sqlite3';
import { HaError } from '../errors.js';

export const schemaVersion = 1;

// Single-row tables pin their row to id 1, so a second row cannot appear by mistake. STRICT makes
// SQLite refuse a value of the wrong type instead of storing it. The `commit` column is called
// commit_index because COMMIT is an SQL keyword.
const schemaV1 = `
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
  CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    idx INTEGER NOT NULL,
    term INTEGER NOT NULL,
    config BLOB NOT NULL,
    data BLOB NOT NULL,
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
export function prepareDatabase(db: Database.Database, filePath: string): void {
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
    db.exec(schemaV1);
    db.pragma(`user_version = ${schemaVersion}`);
  })();
}
