// Polling with deadlines and client-side retry loops for tests that drive real agent processes.
// Nothing here sleeps to "let things settle": every wait polls a condition until a deadline and
// fails with what it last saw, so a failing test says what it was waiting for. Test-support code:
// production never imports it.
import { httpJson, type HttpResult, type LocalCluster } from './local-cluster.js';

/** Pause between two polls of a condition. Short, since the default election timeout is 300 ms. */
export const pollIntervalMs = 20;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a value other than undefined, null or false, and returns that
 * value. A probe that throws counts as "not yet"; its last error is reported at the deadline.
 */
export async function waitFor<T>(
  what: string,
  deadlineMs: number,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  intervalMs = pollIntervalMs,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
      last = v;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() >= until) {
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await pause(intervalMs);
  }
}

/** The error code of an API error body ({ error: { code } }), or null. */
export function errorCode(body: unknown): string | null {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === 'string' ? code : null;
}

/**
 * Error codes that say a write was refused before it was proposed: retrying cannot apply it twice.
 * HA_ERR_TIMEOUT and transport failures are indeterminate (the write may still commit).
 */
export const definitelyNotAppliedCodes: readonly string[] = [
  'HA_ERR_NOT_LEADER',
  'HA_ERR_TRANSFER_IN_PROGRESS',
  'HA_ERR_SHUTTING_DOWN',
  'HA_ERR_BUSY',
  'HA_ERR_NO_QUORUM',
];

export interface RequestUntilOptions {
  /** Round-robin over these base URLs, one per attempt. */
  readonly urls: readonly string[];
  readonly deadlineMs: number;
  readonly requestTimeoutMs: number;
  /**
   * Retry after an indeterminate outcome too (timeout, connection refused or reset). Safe when a
   * repeated apply is harmless to what the test checks; off, such an outcome fails the wait.
   */
  readonly retryIndeterminate: boolean;
  /** The statuses that end the loop; default 200 only. */
  readonly accept?: readonly number[];
}

export interface RequestUntilResult extends HttpResult {
  readonly url: string;
  readonly attempts: number;
}

/**
 * Sends `method path body` to the nodes in turn until one answers with an accepted status. A 503
 * with a definitely-not-applied code is always retried; other statuses end the loop with an error.
 */
export async function requestUntil(
  method: string,
  path: string,
  body: unknown,
  opts: RequestUntilOptions,
): Promise<RequestUntilResult> {
  const accept = opts.accept ?? [200];
  const until = Date.now() + opts.deadlineMs;
  let attempts = 0;
  let last = '';
  while (Date.now() < until) {
    const url = opts.urls[attempts % opts.urls.length]!;
    attempts += 1;
    const timeoutMs = Math.max(1, Math.min(opts.requestTimeoutMs, until - Date.now()));
    let res: HttpResult;
    try {
      res = await httpJson(`${url}${path}`, method, body, timeoutMs);
    } catch (err) {
      last = `${url}: ${(err as Error).message}`;
      // Refused connections (the node is down) say nothing about the write: the request never
      // arrived. A timeout or reset does not, so it counts as indeterminate.
      const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      if (!refused && !opts.retryIndeterminate) {
        throw new Error(`${method} ${path}: indeterminate outcome: ${last}`);
      }
      await pause(Math.min(pollIntervalMs, Math.max(0, until - Date.now())));
      continue;
    }
    if (accept.includes(res.status)) return { ...res, url, attempts };
    const code = errorCode(res.body);
    last = `${url}: ${res.status} ${JSON.stringify(res.body)}`;
    const retriable =
      res.status === 503 &&
      (definitelyNotAppliedCodes.includes(code ?? '') ||
        (opts.retryIndeterminate && code === 'HA_ERR_TIMEOUT'));
    if (!retriable) throw new Error(`${method} ${path}: unexpected answer ${last}`);
    await pause(Math.min(pollIntervalMs, Math.max(0, until - Date.now())));
  }
  throw new Error(`${method} ${path}: no success within ${opts.deadlineMs} ms; last: ${last}`);
}

/** `GET /metrics` value of an unlabelled-but-for-`node` gauge such as anya_ha_term; null if absent. */
export function metricValue(
  metricsText: string,
  name: string,
  labels: Record<string, string> = {},
): number | null {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const close = line.indexOf('}');
    const labelText = open === -1 ? '' : line.slice(open + 1, close);
    const have = new Map(
      [...labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) {
      return Number(
        line
          .slice(close === -1 ? name.length : close + 1)
          .trim()
          .split(' ')[0],
      );
    }
  }
  return null;
}

export interface PutOnceResult {
  readonly version: number;
  readonly revision: number;
  /** True when the write's own answer was lost and a read showed that it had applied. */
  readonly confirmedByRead: boolean;
}

/**
 * Writes key=value exactly once, whatever happens to individual requests: a compare-and-set on
 * `ifVersion` is retried through timeouts and failovers, and a 409 whose current entry holds this
 * very value at version ifVersion + 1 means an earlier attempt applied (its answer was lost). The
 * caller must be the key's only writer and must never write the same value twice to it.
 */
export async function putOnce(
  urls: readonly string[],
  key: string,
  value: string,
  ifVersion: number,
  opts: { deadlineMs: number; requestTimeoutMs: number },
): Promise<PutOnceResult> {
  const until = Date.now() + opts.deadlineMs;
  const path = `/v1/kv/${encodeURIComponent(key)}`;
  const retry = (): RequestUntilOptions => ({
    urls,
    deadlineMs: Math.max(1, until - Date.now()),
    requestTimeoutMs: opts.requestTimeoutMs,
    retryIndeterminate: true,
    accept: [200, 409],
  });
  const put = await requestUntil('PUT', path, { value, ifVersion }, retry());
  if (put.status === 200) {
    const b = put.body as { version: number; revision: number };
    return { version: b.version, revision: b.revision, confirmedByRead: false };
  }
  const get = await requestUntil('GET', path, undefined, { ...retry(), accept: [200, 404] });
  const e = get.body as { value?: string; version?: number; revision?: number };
  if (get.status === 200 && e.value === value && e.version === ifVersion + 1) {
    return { version: e.version, revision: e.revision!, confirmedByRead: true };
  }
  throw new Error(
    `PUT ${key} ifVersion ${ifVersion}: refused (${JSON.stringify(put.body)}) and not applied ` +
      `by an earlier attempt (now ${get.status} ${JSON.stringify(get.body)})`,
  );
}

/**
 * Waits until every node of the cluster is up, names the same leader in the same term, and the
 * leader hears from all of them: a fully formed cluster. LocalCluster.waitForLeader is satisfied
 * by a majority, which is not enough before a fault is injected on purpose: a node still starting
 * (slow under load) would leave the survivors of the fault without a quorum.
 */
export async function waitForFullCluster(
  cluster: LocalCluster,
  deadlineMs: number,
): Promise<{ index: number; term: number }> {
  return waitFor('every node to follow one leader that hears from all of them', deadlineMs, async () => {
    const views = await Promise.all(cluster.nodes.map((_, i) => cluster.status(i, 500)));
    if (views.some((v) => v === null)) return null;
    const index = views.findIndex((v) => v!.role === 'leader');
    if (index === -1) return null;
    const leader = views[index]!;
    const agree = views.every((v) => v!.leaderId === leader.nodeId && v!.term === leader.term);
    const heard = leader.members.length === cluster.nodes.length && leader.members.every((m) => m.reachable);
    return agree && heard ? { index, term: leader.term } : null;
  });
}
