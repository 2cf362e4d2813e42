// Snapshot bytes live in their own files next to the data file (`<data file>.snap/`), and the
// data file's snapshot row names the file with its size and CRC-32. A large snapshot is then
// written by the file system's threads (writeAsync), not inside a SQLite transaction on the
// event loop; the row that makes it the snapshot is a few bytes, committed once the file is
// durable. Order of a write: `<name>.tmp`, fsync, rename to `<name>`, fsync of the directory;
// only then the row. A crash before the row leaves a file no row names, removed at the next open.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { HaError } from '../errors.js';

/** What names a snapshot file. */
export interface SnapshotPosition {
  readonly index: number;
  readonly term: number;
}

export interface SnapshotFileRef {
  /** The file's name inside the snapshot directory. */
  readonly name: string;
  readonly size: number;
  readonly crc: number;
}

export class SnapshotFiles {
  constructor(readonly dir: string) {}

  static nameFor(meta: SnapshotPosition): string {
    return `snap-${meta.index}-${meta.term}.snap`;
  }

  /** Creates the directory; returns the names of the files in it. */
  prepare(): string[] {
    fs.mkdirSync(this.dir, { recursive: true });
    return fs.readdirSync(this.dir);
  }

  writeSync(meta: SnapshotPosition, data: Uint8Array): SnapshotFileRef {
    const name = SnapshotFiles.nameFor(meta);
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, final);
    this.syncDirSync();
    return { name, size: data.length, crc: crc32(data) };
  }

  async writeAsync(meta: SnapshotPosition, data: Uint8Array): Promise<SnapshotFileRef> {
    const name = SnapshotFiles.nameFor(meta);
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    // The checksum is computed in slices, so that a large snapshot does not hold the event loop.
    let crc = 0;
    const file = await fsp.open(tmp, 'w');
    try {
      const slice = 4 * 1024 * 1024;
      for (let off = 0; off < data.length; off += slice) {
        const part = data.subarray(off, Math.min(off + slice, data.length));
        crc = crc32(part, crc);
        await file.write(part);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    await fsp.rename(tmp, final);
    const dir = await fsp.open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return { name, size: data.length, crc };
  }

  /** The file's bytes, checked against its size and checksum. */
  read(ref: SnapshotFileRef, where: string): Uint8Array {
    const file = path.join(this.dir, ref.name);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (err) {
      throw corrupt(`${where}: snapshot file ${file} cannot be read: ${(err as Error).message}`, file);
    }
    if (data.length !== ref.size) {
      throw corrupt(`${where}: snapshot file ${file} has ${data.length} bytes, expected ${ref.size}`, file);
    }
    if (crc32(data) !== ref.crc) throw corrupt(`${where}: snapshot file ${file}: checksum mismatch`, file);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  /** Removes every file in the directory except `keep` (stale snapshots, unfinished writes). */
  removeAllBut(keep: string | null): void {
    for (const name of fs.readdirSync(this.dir)) {
      if (name !== keep) fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }

  /** Removes one file if present (a snapshot written but never recorded). */
  remove(name: string): void {
    fs.rmSync(path.join(this.dir, name), { force: true });
  }

  private syncDirSync(): void {
    const fd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function corrupt(message: string, file: string): HaError {
  return new HaError('HA_ERR_STORAGE_CORRUPT', message, { file });
}
