// Types, limits and field validators of the replicated KV store. The HTTP layer reuses the
// validators so that a request is refused at the edge with the same message apply() would give.

/** A key is at most this many bytes of UTF-8: keys are held in memory and listed in full. */
export const kvKeyBytesMax = 512;
/** A value is at most 1 MiB of UTF-8: one value must fit comfortably in one log entry. */
export const kvValueBytesMax = 1024 * 1024;
/** A transaction writes at most this many keys: bounds the work of one apply() call. */
export const kvTxnOpsMax = 128;
/** A transaction checks at most this many conditions, for the same reason. */
export const kvTxnComparesMax = 128;
/**
 * list() returns at most this many entries per call; callers page on with startAfterKey. One call
 * costs O(log n + limit) (see kv-key-index.ts), so this bounds the work of one read.
 */
export const kvListLimitMax = 10_000;
/** Default number of history entries kept per key (the newest ones, the current value included). */
export const kvHistoryPerKeyMaxDefault = 64;
/** Default number of keys whose past (beyond their current value) is retained; see KvHistory. */
export const kvHistoryKeysMaxDefault = 10_000;
/** Default bound on the bytes of retained past versions (kvHistoryEntryBytes each). */
export const kvHistoryBytesMaxDefault = 256 * 1024 * 1024;

export interface KvPutCommand {
  readonly op: 'put';
  readonly key: string;
  readonly value: string;
  /** 0: the key must not exist; n > 0: its current version must be n. Absent: unconditional. */
  readonly ifVersion?: number;
}

export interface KvDeleteCommand {
  readonly op: 'delete';
  readonly key: string;
  /** As for put; note that ifVersion 0 on delete can only end in HA_ERR_NOT_FOUND. */
  readonly ifVersion?: number;
}

export interface KvCompare {
  readonly key: string;
  /** The version the key must have; 0 means the key must not exist. */
  readonly version: number;
}

/** Operations inside a transaction carry no condition of their own: the compares guard them. */
export type KvTxnOp =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | {
      readonly op: 'delete';
      readonly key: string;
    };

export interface KvTxnCommand {
  readonly op: 'txn';
  readonly compares: readonly KvCompare[];
  /** Distinct keys; applied all together at one new revision, or not at all. */
  readonly ops: readonly KvTxnOp[];
}

export type KvCommand = KvPutCommand | KvDeleteCommand | KvTxnCommand;

export interface KvPutOk {
  readonly ok: true;
  readonly key: string;
  readonly version: number;
  readonly revision: number;
}

export interface KvDeleteOk {
  readonly ok: true;
  readonly key: string;
  readonly revision: number;
}

export interface KvTxnOk {
  readonly ok: true;
  /** The new revision when the txn changed something, else the unchanged current revision. */
  readonly revision: number;
  /** False when a compare failed; then nothing was applied. */
  readonly succeeded: boolean;
}

export interface KvVersionMismatch {
  readonly ok: false;
  readonly code: 'HA_ERR_VERSION_MISMATCH';
  readonly key: string;
  /** 0 when the key does not exist. */
  readonly currentVersion: number;
}

export interface KvNotFound {
  readonly ok: false;
  readonly code: 'HA_ERR_NOT_FOUND';
  readonly key: string;
}

export interface KvBadRequest {
  readonly ok: false;
  readonly code: 'HA_ERR_BAD_REQUEST';
  readonly message: string;
}

export type KvPutResult = KvPutOk | KvVersionMismatch | KvBadRequest;
export type KvDeleteResult = KvDeleteOk | KvNotFound | KvVersionMismatch | KvBadRequest;
export type KvTxnResult = KvTxnOk | KvBadRequest;
export type KvResult = KvPutOk | KvDeleteOk | KvTxnOk | KvVersionMismatch | KvNotFound | KvBadRequest;

/** A live key as read locally. */
export interface KvEntry {
  readonly key: string;
  readonly value: string;
  /** 1 on creation, +1 on each put; restarts at 1 after a delete. */
  readonly version: number;
  /** The revision of the last put (the key's modRevision). */
  readonly revision: number;
  /** The revision that created this incarnation of the key. */
  readonly createRevision: number;
}

/** One page of list(): live keys with a prefix, in key order, read from one state. */
export interface KvListPage {
  readonly entries: KvEntry[];
  /** True when a live key with the prefix follows the last entry, in the same state. */
  readonly more: boolean;
  /** The store's revision when the page was read: every entry is as of this revision. */
  readonly revision: number;
}

/** One write of a key, as kept in its history. */
export interface KvHistoryEntry {
  /** The version the put produced; 0 for a deletion. */
  readonly version: number;
  /** The value the put wrote; '' for a deletion. */
  readonly value: string;
  /** The revision at which the write happened. */
  readonly revision: number;
  readonly deleted: boolean;
}

// Control characters (C0, DEL, C1) make keys unprintable in logs and ambiguous in URLs; lone
// surrogates cannot be encoded as UTF-8 and would not survive a snapshot round trip.
const keyForbiddenCharRe = /[\p{Cc}\p{Cs}]/u;
const loneSurrogateRe = /\p{Cs}/u;

/** The reason `key` is not a valid key, or null when it is. */
export function validateKey(key: unknown): string | null {
  if (typeof key !== 'string') return `key must be a string, got ${describeType(key)}`;
  if (key.length === 0) return 'key must not be empty';
  // Each UTF-16 code unit takes at least one UTF-8 byte: skip counting obviously long keys.
  if (key.length > kvKeyBytesMax || Buffer.byteLength(key, 'utf8') > kvKeyBytesMax) {
    return `key must be at most ${kvKeyBytesMax} bytes of UTF-8`;
  }
  if (keyForbiddenCharRe.test(key)) return 'key must not contain control characters or lone surrogates';
  return null;
}

/** The reason `value` is not a valid value, or null when it is. */
export function validateValue(value: unknown): string | null {
  if (typeof value !== 'string') return `value must be a string, got ${describeType(value)}`;
  if (value.length > kvValueBytesMax || Buffer.byteLength(value, 'utf8') > kvValueBytesMax) {
    return `value must be at most ${kvValueBytesMax} bytes of UTF-8`;
  }
  if (loneSurrogateRe.test(value)) return 'value must not contain lone surrogates';
  return null;
}

/** The reason `version` is not a valid version condition, or null when it is. */
export function validateVersion(version: unknown): string | null {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    return `must be a non-negative integer, got ${describeType(version)}`;
  }
  return null;
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return `number ${v}`;
  return typeof v;
}

/** The one key order of the store (UTF-16 code units): list(), snapshots, history eviction ties. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
