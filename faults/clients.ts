// KV clients for the fault tests: each sends one request at a time to the HTTP API of a random
// node and records what it asked and what it was told as a HistoryOp (sim/history.ts), for the
// linearizability check.
//
// Which outcomes are definite matters more than anything else here: an op recorded as definite
// when it may have taken effect makes the checker report violations the system never committed,
// and an op dropped when it may have taken effect hides its effect from the checker. The rules:
// - A read that fails in any way changed nothing: it is dropped.
// - A write answered 200, 404 (delete: not found) or 409 HA_ERR_VERSION_MISMATCH is definite.
// - A write answered 400 (refused by validation or by the state machine) or 503
//   HA_ERR_NOT_LEADER changed nothing: the node refuses it before proposing anything (a forwarded
//   proposal never comes back as NOT_LEADER; its outcome arrives through the applied entry or a
//   timeout). It is dropped.
// - A write whose connection was refused was never sent: dropped.
// - Every other write outcome — a timeout (ours or the node's), a reset connection, any other
//   5xx (including HA_ERR_NO_QUORUM, which a node also returns when a proposal it already made
//   times out while no leader is known), anything unexpected — is indeterminate: it may take
//   effect at any time after it was sent.
//
// Clients bind their source address to 127.0.0.1 so that the nemesis's iptables rules, which
// name node addresses only, never touch client traffic: a fault cuts nodes from each other, and
// clients see only what the cluster does about it.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HistoryOp, KvOp, KvOutput } from '../sim/history.js';
import { httpJson, type HttpResult } from '../testkit/local-cluster.js';
import type { Rng } from './random.js';

export const clientSourceAddress = '127.0.0.1';
/** Per-request deadline: long enough for a healthy commit, short enough to keep clients moving. */
export const requestTimeoutMs = 1000;
/** Pause between one client's requests, so 5 agents and the test share 2 cores. */
export const clientThinkMsMax = 20;
/** Extra pause after a request that failed. */
export const clientBackoffMs = 50;

/** The history of one run. Times are performance.now() milliseconds, widened to whole ms. */
export class HistoryRecorder {
  readonly ops: HistoryOp[] = [];
  private nextId = 1;
  readonly counts = { ok: 0, indeterminate: 0, dropped: 0 };
  /** Why ops were dropped or indeterminate, e.g. 'put 503 HA_ERR_NO_QUORUM': how often. */
  readonly reasons = new Map<string, number>();

  record(
    clientId: number,
    key: string,
    op: KvOp,
    invokeMs: number,
    outcome: Outcome,
    returnMs: number,
  ): void {
    if (outcome.kind !== 'ok') {
      const reason = `${op.kind} ${outcome.reason}`;
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    }
    if (outcome.kind === 'dropped') {
      this.counts.dropped++;
      return;
    }
    // Widening an op's interval (floor the invocation, ceil the return) only admits more
    // orders, so rounding can never make a correct history look wrong.
    const invokeWholeMs = Math.floor(invokeMs);
    const definite = outcome.kind === 'ok';
    this.ops.push({
      id: this.nextId++,
      clientId,
      key,
      op,
      invokeMs: invokeWholeMs,
      returnMs: definite ? Math.max(invokeWholeMs, Math.ceil(returnMs)) : null,
      output: definite ? outcome.output : null,
    });
    this.counts[definite ? 'ok' : 'indeterminate']++;
  }
}

export type Outcome =
  | { readonly kind: 'ok'; readonly output: KvOutput }
  | { readonly kind: 'indeterminate'; readonly reason: string }
  | { readonly kind: 'dropped'; readonly reason: string };

interface ErrorBody {
  error?: { code?: string; currentVersion?: number };
}

function errorCode(r: HttpResult): string {
  const body = r.body as ErrorBody | null;
  return typeof body === 'object' && body !== null ? (body.error?.code ?? '?') : '?';
}

function currentVersionOf(r: HttpResult): number | null {
  const v = (r.body as ErrorBody | null)?.error?.currentVersion;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

function transportFailure(op: KvOp, err: unknown): Outcome {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
  // Refused: no connection, so no request reached any node.
  if (code === 'ECONNREFUSED' || op.kind === 'get') return { kind: 'dropped', reason: code };
  return { kind: 'indeterminate', reason: code };
}

/** Maps a write's HTTP answer to an outcome, by the rules at the top of this file. */
function writeOutcome(op: KvOp & { kind: 'put' | 'delete' }, r: HttpResult): Outcome {
  const code = errorCode(r);
  const reason = `${r.status} ${code}`;
  if (r.status === 200) {
    if (op.kind === 'delete') return { kind: 'ok', output: { kind: 'delete', ok: true } };
    const version = (r.body as { version?: unknown }).version;
    if (typeof version === 'number') return { kind: 'ok', output: { kind: 'put', ok: true, version } };
    return { kind: 'indeterminate', reason: `200 without a version` };
  }
  if (r.status === 409 && code === 'HA_ERR_VERSION_MISMATCH') {
    const currentVersion = currentVersionOf(r);
    if (currentVersion === null) return { kind: 'indeterminate', reason: `${reason} without currentVersion` };
    return {
      kind: 'ok',
      output:
        op.kind === 'put'
          ? { kind: 'put', ok: false, currentVersion }
          : { kind: 'delete', ok: false, reason: 'mismatch', currentVersion },
    };
  }
  if (r.status === 404 && code === 'HA_ERR_NOT_FOUND' && op.kind === 'delete') {
    return { kind: 'ok', output: { kind: 'delete', ok: false, reason: 'notFound' } };
  }
  if (r.status === 400 || (r.status === 503 && code === 'HA_ERR_NOT_LEADER')) {
    return { kind: 'dropped', reason };
  }
  return { kind: 'indeterminate', reason };
}

function readOutcome(r: HttpResult): Outcome {
  if (r.status === 200) {
    const { value, version } = r.body as { value?: unknown; version?: unknown };
    if (typeof value === 'string' && typeof version === 'number') {
      return { kind: 'ok', output: { kind: 'get', found: true, value, version } };
    }
    return { kind: 'dropped', reason: '200 without value and version' };
  }
  if (r.status === 404 && errorCode(r) === 'HA_ERR_NOT_FOUND') {
    return { kind: 'ok', output: { kind: 'get', found: false } };
  }
  return { kind: 'dropped', reason: `${r.status} ${errorCode(r)}` };
}

/** Sends one op to the node at `apiUrl` and classifies the answer. */
export async function sendOp(apiUrl: string, key: string, op: KvOp): Promise<Outcome> {
  const url = `${apiUrl}/v1/kv/${encodeURIComponent(key)}`;
  try {
    switch (op.kind) {
      case 'get': {
        const r = await httpJson(url, 'GET', undefined, requestTimeoutMs, clientSourceAddress);
        return readOutcome(r);
      }
      case 'put': {
        const body =
          op.ifVersion === undefined ? { value: op.value } : { value: op.value, ifVersion: op.ifVersion };
        const r = await httpJson(url, 'PUT', body, requestTimeoutMs, clientSourceAddress);
        return writeOutcome(op, r);
      }
      case 'delete': {
        const query = op.ifVersion === undefined ? '' : `?ifVersion=${op.ifVersion}`;
        const r = await httpJson(
          `${url}${query}`,
          'DELETE',
          undefined,
          requestTimeoutMs,
          clientSourceAddress,
        );
        return writeOutcome(op, r);
      }
    }
  } catch (err) {
    return transportFailure(op, err);
  }
}

export interface ClientOptions {
  readonly clientId: number;
  /** The keys in use now (they change over the run; see run.ts). */
  readonly keys: () => readonly string[];
  readonly apiUrls: readonly string[];
  readonly rng: Rng;
  readonly recorder: HistoryRecorder;
  /** The client stops before starting a request once this returns true. */
  readonly stopped: () => boolean;
}

/**
 * One client's loop: get 40%, put 25%, compare-and-set 25% (put with ifVersion = the version this
 * client last saw for the key), delete 10% (conditional half the time when a version is known).
 * Every put writes a value never written before, so a read names the write it saw.
 */
export async function runClient(o: ClientOptions): Promise<void> {
  /** The version this client last saw per key; 0 = it saw the key absent. */
  const seenVersion = new Map<string, number>();
  let sequence = 0;
  while (!o.stopped()) {
    const key = o.rng.pick(o.keys());
    const apiUrl = o.rng.pick(o.apiUrls);
    const roll = o.rng.next();
    const known = seenVersion.get(key);
    let op: KvOp;
    if (roll < 0.4) op = { kind: 'get' };
    else if (roll < 0.65) op = { kind: 'put', value: `c${o.clientId}-${++sequence}` };
    else if (roll < 0.9) op = { kind: 'put', value: `c${o.clientId}-${++sequence}`, ifVersion: known ?? 0 };
    // A conditional delete only names a version >= 1: ifVersion 0 can never delete anything.
    else if (known !== undefined && known > 0 && o.rng.next() < 0.5)
      op = { kind: 'delete', ifVersion: known };
    else op = { kind: 'delete' };

    const invokeMs = performance.now();
    const outcome = await sendOp(apiUrl, key, op);
    const returnMs = performance.now();
    o.recorder.record(o.clientId, key, op, invokeMs, outcome, returnMs);
    if (outcome.kind === 'ok') noteVersion(seenVersion, key, outcome.output);
    // After a failure, back off a little: a dead node refuses in a millisecond, and spinning on
    // it would only burn the cores the agents need.
    await sleep(o.rng.int(clientThinkMsMax + 1) + (outcome.kind === 'ok' ? 0 : clientBackoffMs));
  }
}

function noteVersion(seen: Map<string, number>, key: string, output: KvOutput): void {
  switch (output.kind) {
    case 'get':
      seen.set(key, output.found ? output.version : 0);
      return;
    case 'put':
      seen.set(key, output.ok ? output.version : output.currentVersion);
      return;
    case 'delete':
      if (output.ok || output.reason === 'notFound') seen.set(key, 0);
      else seen.set(key, output.currentVersion);
      return;
  }
}

/**
 * After healing: one linearizable read per key, recorded like any other op, so the checker must
 * explain each key's final state — an acknowledged write that was lost cannot be. Retries a key
 * (any node, in turn) until a read succeeds or `deadlineMs` (a performance.now() time) passes;
 * returns the keys that could not be read.
 */
export async function finalReads(
  keys: readonly string[],
  apiUrls: readonly string[],
  recorder: HistoryRecorder,
  clientId: number,
  deadlineMs: number,
): Promise<string[]> {
  const unread: string[] = [];
  for (const key of keys) {
    let done = false;
    for (let attempt = 0; !done && performance.now() < deadlineMs; attempt++) {
      const invokeMs = performance.now();
      const outcome = await sendOp(apiUrls[attempt % apiUrls.length], key, { kind: 'get' });
      const returnMs = performance.now();
      if (outcome.kind === 'ok') {
        recorder.record(clientId, key, { kind: 'get' }, invokeMs, outcome, returnMs);
        done = true;
      } else {
        await sleep(100);
      }
    }
    if (!done) unread.push(key);
  }
  return unread;
}
