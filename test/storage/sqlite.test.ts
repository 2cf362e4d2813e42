// SqliteStorage beyond the shared conformance suite: schema versions, damage detection, and
// durability across kill -9 of a real child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { HaError } from '../../src/errors.js';
import type { ClusterConfig, Entry } from '../../src/raft/types.js';
import { nodeId } from '../../src/raft/types.js';
import { rowChecksum } from '../../src/storage/entry-codec.js';
import { SqliteStorage } from '../../src/storage/sqlite.js';

const bootstrap: ClusterConfig = { voters: [nodeId('n1')], learners: [] };

function normalEntries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= to; index++) {
    out.push({ index, term, type: 'normal', data: new Uint8Array([1, 2, 3, index & 0xff]) });
  }
  return out;
}

/** Matches an HaError HA_ERR_STORAGE_CORRUPT whose message matches `message`. */
const corrupt = (message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof HaError, `expected an HaError, got ${String(err)}`);
  assert.equal(err.code, 'HA_ERR_STORAGE_CORRUPT');
  assert.match(err.message, message);
  return true;
};

describe('SqliteStorage', () => {
  let dir = '';
  let file = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anya-'));
    file = path.join(dir, 'raft.db');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Writes a small log and hard state, closes the store, and hands a raw connection to `damage`. */
  function writeThenDamage(damage: (raw: Database.Database) => void): void {
    const storage = SqliteStorage.open(file);
    storage.persist({
      snapshot: null,
      entries: normalEntries(1, 5, 1),
      hardState: { term: 1, votedFor: nodeId('n1'), commit: 4 },
    });
    storage.compact({ meta: { index: 1, term: 1, config: bootstrap }, data: new Uint8Array([9, 9, 9]) });
    storage.close();
    const raw = new Database(file);
    try {
      damage(raw);
    } finally {
      raw.close();
    }
  }

  function loadAgain(): void {
    const storage = SqliteStorage.open(file);
    try {
      storage.load(bootstrap);
    } finally {
      storage.close();
    }
  }

  it('a new data file is in WAL mode with schema version 2', () => {
    SqliteStorage.open(file).close();
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), 2);
    } finally {
      raw.close();
    }
  });

  it('a data file with a newer schema version is refused with a message naming both versions', () => {
    const raw = new Database(file);
    raw.pragma('user_version = 3');
    raw.close();
    assert.throws(
      () => SqliteStorage.open(file),
      corrupt(/^data dir schema version 3 is newer than this build supports \(2\)/),
    );
  });

  it('a database with tables but no schema version is refused, not written into', () => {
    const raw = new Database(file);
    raw.exec('CREATE TABLE other (x INTEGER)');
    raw.close();
    assert.throws(() => SqliteStorage.open(file), corrupt(/has tables but no schema version/));
  });

  it('a file that is not a SQLite database is refused as corrupt', () => {
    fs.writeFileSync(file, Buffer.alloc(4096, 0x5a));
    assert.throws(() => SqliteStorage.open(file), corrupt(/not a database/));
  });

  it('a flipped byte in a log payload makes load() fail naming the log index', () => {
    writeThenDamage((raw) => {
      const payload = raw.prepare('SELECT payload FROM log WHERE idx = 3').pluck().get() as Buffer;
      payload[payload.length - 1] ^= 0x01;
      raw.prepare('UPDATE log SET payload = ? WHERE idx = 3').run(payload);
    });
    assert.throws(loadAgain, corrupt(/log index 3: checksum mismatch/));
  });

  it('a changed term in a log row is caught by the checksum', () => {
    writeThenDamage((raw) => raw.prepare('UPDATE log SET term = 2 WHERE idx = 5').run());
    assert.throws(loadAgain, corrupt(/log index 5: checksum mismatch/));
  });

  it('a missing log row is reported at the index after the gap', () => {
    writeThenDamage((raw) => raw.prepare('DELETE FROM log WHERE idx = 3').run());
    assert.throws(loadAgain, corrupt(/log index 4: expected index 3/));
  });

  it('a log that does not start right after the snapshot is refused', () => {
    writeThenDamage((raw) => raw.prepare('DELETE FROM log WHERE idx = 2').run());
    assert.throws(loadAgain, corrupt(/log index 3: expected index 2/));
  });

  it('a hard state whose checksum does not match is refused', () => {
    writeThenDamage((raw) => raw.prepare('UPDATE hard_state SET commit_index = 5').run());
    assert.throws(loadAgain, corrupt(/hard_state .*checksum mismatch/));
  });

  it('a vote changed behind the store’s back is refused', () => {
    writeThenDamage((raw) => raw.prepare("UPDATE hard_state SET voted_for = 'n2'").run());
    assert.throws(loadAgain, corrupt(/hard_state .*checksum mismatch/));
  });

  /** The one snapshot file of the store. */
  function snapshotFile(): string {
    const names = fs.readdirSync(`${file}.snap`);
    assert.equal(names.length, 1, `one snapshot file, found ${names.join(', ')}`);
    return path.join(`${file}.snap`, names[0]);
  }

  it('a flipped byte in the snapshot file is refused naming the snapshot index and the file', () => {
    writeThenDamage(() => {});
    fs.writeFileSync(snapshotFile(), Buffer.from([9, 9, 8]));
    assert.throws(loadAgain, corrupt(/snapshot index 1: snapshot file .*snap-1-1\.snap: checksum mismatch/));
  });

  it('a torn (short) snapshot file is refused with its size', () => {
    writeThenDamage(() => {});
    fs.writeFileSync(snapshotFile(), Buffer.from([9, 9]));
    assert.throws(loadAgain, corrupt(/snapshot file .* has 2 bytes, expected 3/));
  });

  it('a missing snapshot file is refused, not taken for an empty state', () => {
    writeThenDamage(() => {});
    fs.rmSync(snapshotFile());
    assert.throws(loadAgain, corrupt(/snapshot file .* cannot be read/));
  });

  it('a changed snapshot row (file name) is caught by the row checksum', () => {
    writeThenDamage((raw) => raw.prepare("UPDATE snapshot SET file = 'snap-1-2.snap'").run());
    assert.throws(loadAgain, corrupt(/snapshot index 1: checksum mismatch/));
  });

  it('compactAsync stores the snapshot durably, drops covered rows, and leaves one file', async () => {
    const storage = SqliteStorage.open(file);
    storage.persist({
      snapshot: null,
      entries: normalEntries(1, 5000, 1),
      hardState: { term: 1, votedFor: null, commit: 5000 },
    });
    storage.compact({ meta: { index: 10, term: 1, config: bootstrap }, data: new Uint8Array([1]) });
    const data = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => i & 0xff);
    await new Promise<void>((resolve, reject) =>
      storage.compactAsync({ meta: { index: 4500, term: 1, config: bootstrap }, data }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    // Covered rows go a batch per turn; wait for them.
    await new Promise((r) => setTimeout(r, 50));
    storage.close();
    assert.match(snapshotFile(), /snap-4500-1\.snap$/);
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.prepare('SELECT min(idx) FROM log').pluck().get(), 4501);
    } finally {
      raw.close();
    }
    const again = SqliteStorage.open(file);
    try {
      const loaded = again.load(bootstrap);
      assert.equal(loaded.snapshot.meta.index, 4500);
      assert.deepEqual(Buffer.from(loaded.snapshot.data), Buffer.from(data));
      assert.deepEqual(loaded.entries, normalEntries(4501, 5000, 1));
    } finally {
      again.close();
    }
  });

  it('covered rows a compaction left behind, and unrecorded snapshot files, are removed at open', () => {
    const storage = SqliteStorage.open(file);
    storage.persist({
      snapshot: null,
      entries: normalEntries(1, 9, 1),
      hardState: { term: 1, votedFor: null, commit: 9 },
    });
    storage.compact({ meta: { index: 4, term: 1, config: bootstrap }, data: new Uint8Array([4]) });
    storage.close();
    const raw = new Database(file);
    try {
      // As after a crash between the snapshot row and the last batch of deletes (the row's
      // contents do not matter: a covered row is removed unread).
      raw
        .prepare(
          'INSERT INTO log (idx, term, type, payload, crc) SELECT 2, term, type, payload, crc FROM log WHERE idx = 5',
        )
        .run();
    } finally {
      raw.close();
    }
    fs.writeFileSync(path.join(`${file}.snap`, 'snap-8-1.snap.tmp'), 'partial');
    const again = SqliteStorage.open(file);
    try {
      const loaded = again.load(bootstrap);
      assert.deepEqual(loaded.entries, normalEntries(5, 9, 1));
    } finally {
      again.close();
    }
    assert.match(snapshotFile(), /snap-4-1\.snap$/);
  });

  it('a schema-1 data file is migrated: the snapshot moves to its file, everything else stays', () => {
    // A schema-1 file as earlier builds wrote it: filled through a schema-2 store, then its
    // snapshot row turned back into the schema-1 shape (bytes inside the row).
    writeThenDamage(() => {});
    const data = fs.readFileSync(snapshotFile());
    const v1 = new Database(file);
    try {
      const row = v1.prepare('SELECT idx, term, config FROM snapshot').get() as {
        idx: number;
        term: number;
        config: Buffer;
      };
      v1.exec(`DROP TABLE snapshot;
        CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, config BLOB NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL) STRICT;`);
      v1.prepare('INSERT INTO snapshot VALUES (1, ?, ?, ?, ?, ?)').run(
        row.idx,
        row.term,
        row.config,
        data,
        rowChecksum([row.idx, row.term, row.config, data]),
      );
      v1.pragma('user_version = 1');
    } finally {
      v1.close();
    }
    fs.rmSync(`${file}.snap`, { recursive: true });
    const storage = SqliteStorage.open(file);
    try {
      const loaded = storage.load(bootstrap);
      assert.deepEqual(loaded.snapshot.data, new Uint8Array([9, 9, 9]));
      assert.deepEqual(loaded.entries, normalEntries(2, 5, 1));
    } finally {
      storage.close();
    }
    assert.match(snapshotFile(), /snap-1-1\.snap$/);
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 2);
    } finally {
      check.close();
    }
  });

  it('the undamaged store the damage tests start from loads cleanly', () => {
    writeThenDamage(() => {});
    const storage = SqliteStorage.open(file);
    try {
      const loaded = storage.load(bootstrap);
      assert.deepEqual(loaded.entries, normalEntries(2, 5, 1));
      assert.deepEqual(loaded.snapshot.data, new Uint8Array([9, 9, 9]));
    } finally {
      storage.close();
    }
  });

  it('meta values survive reopening, and a damaged meta row is refused', () => {
    const storage = SqliteStorage.open(file);
    storage.setMeta('clusterId', 'c-1');
    storage.setMeta('nodeId', 'n1');
    assert.equal(storage.getMeta('absent'), null);
    storage.close();

    const reopened = SqliteStorage.open(file);
    assert.equal(reopened.getMeta('clusterId'), 'c-1');
    assert.equal(reopened.getMeta('nodeId'), 'n1');
    reopened.close();

    const raw = new Database(file);
    raw.prepare("UPDATE meta SET value = 'n2' WHERE key = 'nodeId'").run();
    raw.close();
    const damaged = SqliteStorage.open(file);
    try {
      assert.throws(() => damaged.getMeta('nodeId'), corrupt(/meta nodeId: checksum mismatch/));
    } finally {
      damaged.close();
    }
  });

  it('every index acknowledged before kill -9 is present after reopening', async () => {
    const fixture = fileURLToPath(new URL('../../../test/storage/fixtures/persist-loop.js', import.meta.url));
    const killAfterAcks = 20;
    // The writer's own bounds (100000 batches, 10 s) only stop a runaway child; the kill comes
    // long before either on any disk, also on a loaded machine where startup alone can take 1 s.
    const child = spawn(process.execPath, [fixture, file, '100000', '10000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.split('\n').length - 1 >= killAfterAcks) child.kill('SIGKILL');
    });
    const signal = await exited;
    assert.equal(signal, 'SIGKILL', `the writer ended on its own before the kill; stderr: ${stderr}`);

    // Only complete lines are acknowledgements; a torn last line was never fully reported.
    const acked = stdout
      .split('\n')
      .slice(0, -1)
      .map((line) => Number(line));
    assert.ok(acked.length >= killAfterAcks);
    const lastAcked = acked[acked.length - 1];

    const storage = SqliteStorage.open(file);
    try {
      const loaded = storage.load(bootstrap);
      const snapshotIndex = loaded.snapshot.meta.index;
      const lastIndex = loaded.entries.at(-1)?.index ?? snapshotIndex;
      assert.ok(lastIndex >= lastAcked, `acknowledged index ${lastAcked} lost: store ends at ${lastIndex}`);
      assert.ok(loaded.hardState.commit >= lastAcked);
      const byIndex = new Map(loaded.entries.map((e) => [e.index, e]));
      for (const index of acked) {
        if (index <= snapshotIndex) continue;
        const entry = byIndex.get(index);
        assert.ok(entry !== undefined, `acknowledged index ${index} missing`);
        assert.equal(new TextDecoder().decode(entry.data), `entry-${index}`);
      }
    } finally {
      storage.close();
    }
  });
});
