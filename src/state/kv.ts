// The replicated KV store: a StateMachine applying put, delete and txn commands in log order.
//
// Semantics (a linearizability checker models them; change both together):
// - `revision` starts at 0 and grows by exactly 1 per applied command that changes something; a
//   txn changing several keys takes one revision. Refused commands and txns that change nothing
//   (failed compares, or only deletes of absent keys) leave it as is.
// - A key's `version` is 1 on creation and +1 per put; delete removes the key (version 0 = absent)
//   and the next put starts again at 1 with a new createRevision.
// - ifVersion / compare version: 0 means "must not exist", n > 0 means "current version is n".
//   delete checks ifVersion before existence: an absent key with ifVersion n > 0 is a version
//   mismatch (currentVersion 0), and with ifVersion 0 or none it is HA_ERR_NOT_FOUND.
// - A txn checks every compare against the state before it; if any fails, nothing changes and
//   the result says succeeded: false. Otherwise all ops apply at one new revision. Inside a txn a
//   delete of an absent key is a no-op rather than a failure: the txn's end state holds anyway.
// - Malformed or out-of-bounds commands (see kv-types.ts limits) give HA_ERR_BAD_REQUEST results.
// Nothing here reads a clock or depends on iteration order other than key order.
import assert from 'node:assert/strict';
import { HaError } from '../errors.js';
import type { Index } from '../raft/types.js';
import { decodeKvCommand } from './kv-commands.js';
import { KvHistory, type KvHistoryChange } from './kv-history.js';
import { KvKeyIndex } from './kv-key-index.js';
import { decodeKvSnapshot, KvSnapshotWriter, type KvSnapshotRecord } from './kv-snapshot.js';
import {
  compareKeys,
  kvHistoryBytesMaxDefault,
  kvHistoryKeysMaxDefault,
  kvHistoryPerKeyMaxDefault,
  kvListLimitMax,
  type KvDeleteCommand,
  type KvDeleteResult,
  type KvEntry,
  type KvHistoryEntry,
  type KvListPage,
  type KvPutCommand,
  type KvPutResult,
  type KvResult,
  type KvTxnCommand,
  type KvTxnResult,
} from './kv-types.js';
import type { SnapshotStream, StateMachine } from './types.js';

export interface KvStoreOptions {
  /** History entries kept per key, current value included; >= 1. See KvHistory. */
  readonly historyPerKeyMax?: number;
  /** Keys that may retain a past (deleted keys, live keys with older versions); >= 0. */
  readonly historyKeysMax?: number;
  /** Bytes the past may take (oldest versions go first); see KvHistory. */
  readonly historyBytesMax?: number;
}

/** Keys taken from the history index per step of a snapshot walk. */
const snapshotWalkKeys = 256;

/**
 * A snapshot in progress (copy-on-write): the state it describes is the store's at the moment it
 * was opened. The walk goes through the history's keys in order behind `cursor`; before apply()
 * changes or evicts a key the walk has not reached, the store saves that key's record as it was
 * (null: the key did not exist then). Keys evicted since are found in `savedKeys`.
 */
interface SnapshotView {
  readonly writer: KvSnapshotWriter;
  readonly saved: Map<string, KvSnapshotRecord | null>;
  /** The saved keys that had a record, sorted. */
  readonly savedKeys: string[];
  /** The last key the walk passed; undefined before the first. */
  cursor: string | undefined;
  started: boolean;
  done: boolean;
  closed: boolean;
  readonly liveAtStart: number;
  liveWritten: number;
}

interface LiveKey {
  readonly value: string;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
}

export class KvStore implements StateMachine<KvResult> {
  private readonly historyPerKeyMax: number;
  private readonly historyKeysMax: number;
  private readonly historyBytesMax: number;
  private live = new Map<string, LiveKey>();
  /** The keys of `live` in key order, for list(); changes only when a key appears or goes. */
  private liveKeys = new KvKeyIndex();
  private pastWrites: KvHistory;
  private revisionNow = 0;
  private appliedIndexNow: Index = 0;
  /** The open snapshotStream's view, if any. */
  private view: SnapshotView | null = null;

  constructor(options: KvStoreOptions = {}) {
    this.historyPerKeyMax = options.historyPerKeyMax ?? kvHistoryPerKeyMaxDefault;
    this.historyKeysMax = options.historyKeysMax ?? kvHistoryKeysMaxDefault;
    this.historyBytesMax = options.historyBytesMax ?? kvHistoryBytesMaxDefault;
    this.pastWrites = new KvHistory(this.historyPerKeyMax, this.historyKeysMax, this.historyBytesMax);
    this.pastWrites.beforeChange = (key) => this.preserve(key);
  }

  /** The revision of the last change; 0 before any. */
  get revision(): number {
    return this.revisionNow;
  }

  /** The index passed to the last apply() or covered by the last restore(); 0 before any. */
  get appliedIndex(): Index {
    return this.appliedIndexNow;
  }

  /** Bytes of retained past versions (what historyBytesMax bounds). */
  get historyBytes(): number {
    return this.pastWrites.pastBytes;
  }

  /** Number of live keys. */
  get size(): number {
    return this.live.size;
  }

  apply(index: Index, data: Uint8Array): KvResult {
    assert(
      Number.isSafeInteger(index) && index > this.appliedIndexNow,
      `apply out of order: ${index} after ${this.appliedIndexNow}`,
    );
    // The entry is applied even when refused: its result is the outcome, and it is never replayed.
    this.appliedIndexNow = index;
    let cmd;
    try {
      cmd = decodeKvCommand(data);
    } catch (err) {
      if (err instanceof HaError) return { ok: false, code: 'HA_ERR_BAD_REQUEST', message: err.message };
      throw err;
    }
    const revisionBefore = this.revisionNow;
    let result: KvResult;
    switch (cmd.op) {
      case 'put':
        result = this.applyPut(cmd);
        break;
      case 'delete':
        result = this.applyDelete(cmd);
        break;
      case 'txn':
        result = this.applyTxn(cmd);
        break;
    }
    assert(this.revisionNow === revisionBefore || (result.ok && this.revisionNow === revisionBefore + 1));
    return result;
  }

  get(key: string): KvEntry | null {
    const state = this.live.get(key);
    return state === undefined ? null : toEntry(key, state);
  }

  /**
   * Live keys starting with `prefix`, sorted by key, at most `limit` of them; pass the last key
   * returned as `startAfterKey` to read the next page.
   */
  list(prefix: string, limit: number, startAfterKey?: string): KvEntry[] {
    return this.listPage(prefix, limit, startAfterKey).entries;
  }

  /**
   * As list(), and says whether more keys with the prefix follow and at which revision the page
   * was read. Costs O(log n + limit), not a pass over every key. `startAfterKey` is exclusive and
   * need not exist or start with the prefix: before the prefix's keys it reads from their start,
   * after them it reads nothing.
   */
  listPage(prefix: string, limit: number, startAfterKey?: string): KvListPage {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > kvListLimitMax) {
      throw new HaError(
        'HA_ERR_BAD_REQUEST',
        `limit: expected an integer in 1..${kvListLimitMax}, got ${limit}`,
      );
    }
    assert.equal(this.liveKeys.size, this.live.size, 'the key index holds every live key');
    const { keys, more } = this.liveKeys.page(prefix, limit, startAfterKey);
    const entries = keys.map((key) => toEntry(key, this.live.get(key)!));
    return { entries, more, revision: this.revisionNow };
  }

  /** The key's retained writes, oldest first, deletions included; the last is the current state. */
  history(key: string): KvHistoryEntry[] {
    return this.pastWrites.entries(key).map((e) => ({ ...e }));
  }

  snapshot(): Uint8Array {
    // Nothing applies while this runs, so the walk needs no saved records.
    const view = this.newView();
    const chunks: Uint8Array[] = [];
    for (let chunk = this.walk(view, Infinity); chunk !== null; chunk = this.walk(view, Infinity)) {
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  snapshotStream(): SnapshotStream {
    assert(this.view === null, 'one snapshot stream at a time');
    const view = this.newView();
    this.view = view;
    const finish = (): void => {
      view.closed = true;
      if (this.view === view) this.view = null;
    };
    return {
      next: (maxBytes) => {
        assert(!view.closed || view.done, 'snapshot stream closed (restore() replaced the state)');
        if (view.done) return null;
        const chunk = this.walk(view, maxBytes);
        if (view.done) finish();
        return chunk;
      },
      close: finish,
    };
  }

  private newView(): SnapshotView {
    return {
      writer: new KvSnapshotWriter(this.revisionNow, this.appliedIndexNow),
      saved: new Map(),
      savedKeys: [],
      cursor: undefined,
      started: false,
      done: false,
      closed: false,
      liveAtStart: this.live.size,
      liveWritten: 0,
    };
  }

  /** Before a change to `key`: an open view that has not reached it keeps its record as it is. */
  private preserve(key: string): void {
    const view = this.view;
    if (view === null || view.saved.has(key)) return;
    if (view.cursor !== undefined && compareKeys(key, view.cursor) <= 0) return;
    const record = this.currentRecord(key, true);
    view.saved.set(key, record);
    if (record !== null) view.savedKeys.splice(lowerBound(view.savedKeys, key), 0, key);
  }

  private currentRecord(key: string, copy: boolean): KvSnapshotRecord | null {
    const entries = this.pastWrites.entries(key);
    if (entries.length === 0) return null;
    return {
      key,
      createRevision: this.live.get(key)?.createRevision ?? 0,
      entries: copy ? entries.slice() : entries,
    };
  }

  /** The view's next chunk of at least maxBytes (or the rest); null once finished. */
  private walk(view: SnapshotView, maxBytes: number): Uint8Array | null {
    if (view.done) return null;
    if (!view.started) {
      view.started = true;
      return view.writer.header();
    }
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    while (bytes < maxBytes) {
      const keys = this.pastWrites.keysAfter(view.cursor, snapshotWalkKeys);
      // Saved keys up to the last one of this step (all of them when the index has no more):
      // they may have been evicted from the index since the view opened.
      const upTo = keys.length === snapshotWalkKeys ? keys[keys.length - 1] : undefined;
      const from = view.cursor === undefined ? 0 : lowerBound(view.savedKeys, view.cursor, false);
      let to = from;
      while (to < view.savedKeys.length && (upTo === undefined || compareKeys(view.savedKeys[to], upTo) <= 0))
        to++;
      const merged = mergeSorted(keys, view.savedKeys.slice(from, to));
      if (merged.length === 0) break;
      const records: KvSnapshotRecord[] = [];
      for (const key of merged) {
        const record = view.saved.has(key) ? view.saved.get(key)! : this.currentRecord(key, false);
        if (record === null) continue;
        records.push(record);
        if (!record.entries[record.entries.length - 1].deleted) view.liveWritten++;
      }
      view.cursor = merged[merged.length - 1];
      const chunk = view.writer.records(records);
      chunks.push(chunk);
      bytes += chunk.length;
    }
    if (bytes < maxBytes) {
      assert.equal(view.liveWritten, view.liveAtStart, 'every live key has history');
      chunks.push(view.writer.finish());
      view.done = true;
    }
    return Buffer.concat(chunks);
  }

  restore(data: Uint8Array): void {
    // Decode and rebuild completely before replacing anything: a corrupt snapshot changes nothing.
    const state = decodeKvSnapshot(data);
    if (this.view !== null) {
      this.view.closed = true;
      this.view = null;
    }
    const live = new Map<string, LiveKey>();
    const entriesByKey = new Map<string, readonly KvHistoryEntry[]>();
    for (const { key, createRevision, entries } of state.records) {
      entriesByKey.set(key, entries);
      const last = entries[entries.length - 1];
      if (!last.deleted) {
        live.set(key, {
          value: last.value,
          version: last.version,
          createRevision,
          modRevision: last.revision,
        });
      }
    }
    const liveKeys = KvKeyIndex.fromKeys(live.keys());
    this.pastWrites = KvHistory.fromEntries(
      this.historyPerKeyMax,
      this.historyKeysMax,
      entriesByKey,
      this.historyBytesMax,
    );
    this.pastWrites.beforeChange = (key) => this.preserve(key);
    this.live = live;
    this.liveKeys = liveKeys;
    this.revisionNow = state.revision;
    this.appliedIndexNow = state.appliedIndex;
  }

  private applyPut(cmd: KvPutCommand): KvPutResult {
    const current = this.live.get(cmd.key);
    const currentVersion = current?.version ?? 0;
    if (cmd.ifVersion !== undefined && cmd.ifVersion !== currentVersion) {
      return { ok: false, code: 'HA_ERR_VERSION_MISMATCH', key: cmd.key, currentVersion };
    }
    const revision = ++this.revisionNow;
    const change = this.writePut(cmd.key, cmd.value, revision);
    this.pastWrites.record(revision, [change]);
    return { ok: true, key: cmd.key, version: change.entry.version, revision };
  }

  private applyDelete(cmd: KvDeleteCommand): KvDeleteResult {
    const currentVersion = this.live.get(cmd.key)?.version ?? 0;
    if (cmd.ifVersion !== undefined && cmd.ifVersion !== currentVersion) {
      return { ok: false, code: 'HA_ERR_VERSION_MISMATCH', key: cmd.key, currentVersion };
    }
    if (currentVersion === 0) return { ok: false, code: 'HA_ERR_NOT_FOUND', key: cmd.key };
    const revision = ++this.revisionNow;
    this.pastWrites.record(revision, [this.writeDelete(cmd.key, revision)]);
    return { ok: true, key: cmd.key, revision };
  }

  private applyTxn(cmd: KvTxnCommand): KvTxnResult {
    for (const compare of cmd.compares) {
      if ((this.live.get(compare.key)?.version ?? 0) !== compare.version) {
        return { ok: true, revision: this.revisionNow, succeeded: false };
      }
    }
    // Decoding guaranteed distinct keys, and no op below can fail: all-or-nothing holds.
    const effective = cmd.ops.filter((op) => op.op === 'put' || this.live.has(op.key));
    if (effective.length === 0) return { ok: true, revision: this.revisionNow, succeeded: true };
    const revision = ++this.revisionNow;
    const changes = effective.map((op) =>
      op.op === 'put' ? this.writePut(op.key, op.value, revision) : this.writeDelete(op.key, revision),
    );
    changes.sort((a, b) => compareKeys(a.key, b.key));
    this.pastWrites.record(revision, changes);
    return { ok: true, revision, succeeded: true };
  }

  private writePut(key: string, value: string, revision: number): KvHistoryChange {
    this.preserve(key);
    const current = this.live.get(key);
    const version = (current?.version ?? 0) + 1;
    const createRevision = current?.createRevision ?? revision;
    this.live.set(key, { value, version, createRevision, modRevision: revision });
    if (current === undefined) this.liveKeys.insert(key);
    return { key, entry: { version, value, revision, deleted: false } };
  }

  private writeDelete(key: string, revision: number): KvHistoryChange {
    this.preserve(key);
    assert(this.live.delete(key), 'writeDelete of an absent key');
    this.liveKeys.delete(key);
    return { key, entry: { version: 0, value: '', revision, deleted: true } };
  }
}

function toEntry(key: string, state: LiveKey): KvEntry {
  return {
    key,
    value: state.value,
    version: state.version,
    revision: state.modRevision,
    createRevision: state.createRevision,
  };
}

/** The first position in sorted `keys` whose key is >= key (> key when inclusive is false). */
function lowerBound(keys: readonly string[], key: string, inclusive = true): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = compareKeys(keys[mid], key);
    if (c < 0 || (!inclusive && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Two sorted key lists as one, each key once. */
function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const c = compareKeys(a[i], b[j]);
    if (c < 0) out.push(a[i++]);
    else if (c > 0) out.push(b[j++]);
    else {
      out.push(a[i++]);
      j++;
    }
  }
  while (i < a.length) out.push(a[i++]);
  while (j < b.length) out.push(b[j++]);
  return out;
}
