// The HTTP API: JSON over node:http. Requests are validated here (schemas.ts) and then handed to
// the ApiBackend; nothing reaches the backend until the whole request has passed validation.
//
// Bounds: the body is read up to bodyBytesMax, the number of requests being served at once is at
// most inflightRequestsMax, each backend call is cut off at its deadline, Node's own
// requestTimeout bounds how long a client may take to send a request, and a key listing is paged
// (at most listLimitMax items and about listResponseBytesMax bytes per response; kv-list.ts).
import http from 'node:http';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { HaError } from '../errors.js';
import type { Metrics } from '../cluster/metrics.js';
import type { ApiBackend } from './backend.js';
import { encodeKvListPage, listLimitDefault, listLimitMax, listResponseBytesMaxDefault } from './kv-list.js';
import {
  decodeKeySegment,
  parseAfterParam,
  parseConsistency,
  parseDeleteBody,
  parseLimitParam,
  parsePutBody,
  parseQuery,
  parseTransferBody,
  parseVersionParam,
} from './schemas.js';
import { kvValueBytesMax } from '../state/kv-types.js';

export const requestTimeoutMsDefault = 5000;
/** A largest value plus room for its JSON envelope and escaping of a few characters. */
export const bodyBytesMaxDefault = kvValueBytesMax + 4 * 1024;
export const inflightRequestsMaxDefault = 1024;
/** Time a client has to send one whole request (headers and body). */
export const requestReceiveTimeoutMsDefault = 30_000;
/** How long an idle keep-alive connection stays open. */
export const keepAliveTimeoutMs = 5000;

export interface ApiServerOptions {
  backend: ApiBackend;
  metrics: Pick<Metrics, 'text' | 'contentType'>;
  logger: Logger;
  requestTimeoutMs?: number;
  bodyBytesMax?: number;
  inflightRequestsMax?: number;
  requestReceiveTimeoutMs?: number;
  /** Encoded bytes of the items of one GET /v1/kv page before it ends early; see kv-list.ts. */
  listResponseBytesMax?: number;
}

export interface ApiServer {
  /** Port 0 picks a free port; the one bound is returned. */
  listen(host: string, port: number): Promise<{ port: number }>;
  /** Stops accepting, closes idle connections, and resolves when the open requests have ended. */
  close(): Promise<void>;
}

interface Reply {
  status: number;
  /** Sent as JSON; a string is sent as text (the metrics exposition). */
  body?: unknown;
  /** A body already encoded as JSON, sent as it is (the key listing measures what it encodes). */
  jsonText?: string;
}

interface HandlerContext {
  query: Map<string, string>;
  /** Parsed JSON body, or undefined when the request had none. */
  body: unknown;
  /** The raw path segment naming the key, for /v1/kv/{key} routes. */
  keySegment: string;
  deadlineMs: number;
}

interface Method {
  query: readonly string[];
  takesBody: boolean;
  run(ctx: HandlerContext): Promise<Reply>;
}

type Route = Partial<Record<'GET' | 'PUT' | 'DELETE' | 'POST', Method>>;

const jsonContentType = 'application/json; charset=utf-8';

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { backend, metrics, logger } = opts;
  const requestTimeoutMs = opts.requestTimeoutMs ?? requestTimeoutMsDefault;
  const bodyBytesMax = opts.bodyBytesMax ?? bodyBytesMaxDefault;
  const inflightRequestsMax = opts.inflightRequestsMax ?? inflightRequestsMaxDefault;
  const requestReceiveTimeoutMs = opts.requestReceiveTimeoutMs ?? requestReceiveTimeoutMsDefault;
  const listResponseBytesMax = opts.listResponseBytesMax ?? listResponseBytesMaxDefault;
  assert.ok(
    requestTimeoutMs > 0 &&
      bodyBytesMax > 0 &&
      inflightRequestsMax > 0 &&
      requestReceiveTimeoutMs > 0 &&
      listResponseBytesMax > 0,
  );

  let inflightRequests = 0;
  let closing = false;

  const call = <T>(deadlineMs: number, work: () => Promise<T>): Promise<T> =>
    withDeadline(deadlineMs, requestTimeoutMs, work);

  const health: Route = {
    GET: {
      query: [],
      takesBody: false,
      run: async () => ({ status: 200, body: { status: 'ok', nodeId: backend.status().nodeId } }),
    },
  };

  const leaderHealth: Route = {
    GET: {
      query: [],
      takesBody: false,
      run: async () => {
        const leader = backend.isLeader();
        const { nodeId, role, leaderId } = backend.status();
        return { status: leader ? 200 : 503, body: { leader, nodeId, role, leaderId } };
      },
    },
  };

  const status: Route = {
    GET: { query: [], takesBody: false, run: async () => ({ status: 200, body: backend.status() }) },
  };

  const kvList: Route = {
    GET: {
      query: ['prefix', 'consistency', 'limit', 'after'],
      takesBody: false,
      run: async ({ query, deadlineMs }) => {
        const prefix = query.get('prefix') ?? '';
        const consistency = parseConsistency(query.get('consistency'));
        const limit = parseLimitParam(query.get('limit'), listLimitDefault, listLimitMax);
        const after = parseAfterParam(query.get('after'));
        const page = await call(deadlineMs, () =>
          backend.kvList(prefix, { limit, after }, consistency, deadlineMs),
        );
        assert.ok(page.items.length <= limit, 'the backend returned more items than the limit');
        return { status: 200, jsonText: encodeKvListPage(page, listResponseBytesMax) };
      },
    },
  };

  const kvKey: Route = {
    GET: {
      query: ['consistency'],
      takesBody: false,
      run: async ({ query, keySegment, deadlineMs }) => {
        const key = decodeKeySegment(keySegment);
        const consistency = parseConsistency(query.get('consistency'));
        const entry = await call(deadlineMs, () => backend.kvGet(key, consistency, deadlineMs));
        if (entry === null) throw new HaError('HA_ERR_NOT_FOUND', `key "${key}" not found`);
        return { status: 200, body: entry };
      },
    },
    PUT: {
      query: [],
      takesBody: true,
      run: async ({ body, keySegment, deadlineMs }) => {
        const key = decodeKeySegment(keySegment);
        const { value, ifVersion } = parsePutBody(body);
        const result = await call(deadlineMs, () => backend.kvPut(key, value, ifVersion, deadlineMs));
        return { status: 200, body: result };
      },
    },
    DELETE: {
      query: ['ifVersion'],
      takesBody: true,
      run: async ({ query, body, keySegment, deadlineMs }) => {
        const key = decodeKeySegment(keySegment);
        const fromBody = parseDeleteBody(body).ifVersion;
        const fromQuery = query.has('ifVersion')
          ? parseVersionParam('ifVersion', query.get('ifVersion')!)
          : undefined;
        if (fromBody !== undefined && fromQuery !== undefined) {
          throw new HaError(
            'HA_ERR_BAD_REQUEST',
            'ifVersion: expected in the query or in the body, not both',
            {
              field: 'ifVersion',
            },
          );
        }
        const ifVersion = fromQuery ?? fromBody;
        const result = await call(deadlineMs, () => backend.kvDelete(key, ifVersion, deadlineMs));
        return { status: 200, body: result };
      },
    },
  };

  const kvHistory: Route = {
    GET: {
      query: [],
      takesBody: false,
      run: async ({ keySegment, deadlineMs }) => {
        const key = decodeKeySegment(keySegment);
        const items = await call(deadlineMs, () => backend.kvHistory(key, deadlineMs));
        return { status: 200, body: { key, items } };
      },
    },
  };

  const leaderTransfer: Route = {
    POST: {
      query: [],
      takesBody: true,
      run: async ({ body, deadlineMs }) => {
        const { to } = parseTransferBody(body);
        const result = await call(deadlineMs, () => backend.transferLeader(to, deadlineMs));
        return { status: 200, body: result };
      },
    },
  };

  const metricsRoute: Route = {
    GET: { query: [], takesBody: false, run: async () => ({ status: 200, body: await metrics.text() }) },
  };

  const fixedRoutes = new Map<string, Route>([
    ['/health', health],
    ['/metrics', metricsRoute],
    ['/v1/status', status],
    ['/v1/health/leader', leaderHealth],
    ['/v1/leader/transfer', leaderTransfer],
    ['/v1/kv', kvList],
  ]);

  // Paths are matched on their raw form: a key is one URL-encoded segment (a '/' in a key is
  // %2F), and dot segments are not collapsed, so every key maps to exactly one path.
  function match(path: string): { route: Route; keySegment: string } | null {
    const fixed = fixedRoutes.get(path);
    if (fixed !== undefined) return { route: fixed, keySegment: '' };
    const parts = path.split('/');
    if (parts[1] !== 'v1' || parts[2] !== 'kv') return null;
    if (parts.length === 4) return { route: kvKey, keySegment: parts[3] };
    if (parts.length === 5 && parts[4] === 'history') return { route: kvHistory, keySegment: parts[3] };
    return null;
  }

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    deadlineMs: number,
  ): Promise<void> {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const search = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));

    const found = match(path);
    if (found === null) throw new HaError('HA_ERR_NOT_FOUND', `no route for ${path}`);
    const method = Object.hasOwn(found.route, req.method ?? '')
      ? found.route[req.method as keyof Route]
      : undefined;
    if (method === undefined) {
      const allowed = Object.keys(found.route).join(', ');
      res.setHeader('allow', allowed);
      sendError(
        res,
        new HaError('HA_ERR_METHOD_NOT_ALLOWED', `method ${req.method} not allowed; expected ${allowed}`),
        405,
      );
      return;
    }
    const query = parseQuery(search, method.query);
    const body = await readJsonBody(req, res, bodyBytesMax);
    if (!method.takesBody && body !== undefined) {
      throw new HaError('HA_ERR_BAD_REQUEST', `body: expected none for ${req.method} ${path}`, {
        field: 'body',
      });
    }
    const reply = await method.run({ query, body, keySegment: found.keySegment, deadlineMs });
    if (reply.jsonText !== undefined) send(res, reply.status, reply.jsonText, jsonContentType);
    else if (typeof reply.body === 'string') send(res, reply.status, reply.body, metrics.contentType);
    else send(res, reply.status, JSON.stringify(reply.body), jsonContentType);
  }

  function sendError(res: http.ServerResponse, err: unknown, statusOverride?: number): void {
    let haError: HaError;
    if (err instanceof HaError) {
      haError = err;
    } else {
      logger.error({ err }, 'unexpected error serving an API request');
      haError = new HaError('HA_ERR_INTERNAL', "internal error; see this node's log");
    }
    send(res, statusOverride ?? haError.httpStatus, JSON.stringify(haError.toJSON()), jsonContentType);
  }

  function send(res: http.ServerResponse, statusCode: number, text: string, contentType: string): void {
    if (res.headersSent || res.destroyed) return;
    if (closing) res.setHeader('connection', 'close');
    res.writeHead(statusCode, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const startedMs = Date.now();
    const deadlineMs = startedMs + requestTimeoutMs;
    res.on('close', () => {
      logger.debug(
        { method: req.method, path: req.url, status: res.statusCode, durationMs: Date.now() - startedMs },
        'api request',
      );
    });
    if (inflightRequests >= inflightRequestsMax) {
      sendError(
        res,
        new HaError('HA_ERR_BUSY', `more than ${inflightRequestsMax} requests in flight; retry later`),
      );
      return;
    }
    inflightRequests += 1;
    res.once('close', () => {
      inflightRequests -= 1;
      assert.ok(inflightRequests >= 0);
    });
    handle(req, res, deadlineMs).catch((err: unknown) => sendError(res, err));
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.requestTimeout = requestReceiveTimeoutMs;
  server.headersTimeout = Math.min(server.headersTimeout, requestReceiveTimeoutMs);

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },
    close() {
      closing = true;
      return new Promise((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}

/**
 * Waits for a backend call until the request's deadline. The backend honours the deadline too;
 * this is the server's own guarantee that a client is answered in time whatever the backend does.
 */
async function withDeadline<T>(
  deadlineMs: number,
  requestTimeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  const remainingMs = deadlineMs - Date.now();
  const timeoutError = () =>
    new HaError('HA_ERR_TIMEOUT', `no answer within the ${requestTimeoutMs} ms request deadline`);
  if (remainingMs <= 0) throw timeoutError();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), remainingMs);
  });
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads a JSON body of at most bodyBytesMax bytes; undefined when there is none. An oversize body
 * is not read further: the connection is marked to close after the 413, since the rest of the
 * body would otherwise have to be drained from it.
 */
async function readJsonBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  bodyBytesMax: number,
): Promise<unknown> {
  const tooLarge = () => {
    res.setHeader('connection', 'close');
    return new HaError('HA_ERR_PAYLOAD_TOO_LARGE', `body: expected at most ${bodyBytesMax} bytes`, {
      field: 'body',
    });
  };
  const declaredBytes = Number(req.headers['content-length'] ?? 0);
  if (declaredBytes > bodyBytesMax) throw tooLarge();

  const { chunks, receivedBytes } = await new Promise<{ chunks: Buffer[]; receivedBytes: number }>(
    (resolve, reject) => {
      const chunks: Buffer[] = [];
      let receivedBytes = 0;
      const onData = (chunk: Buffer) => {
        receivedBytes += chunk.length;
        if (receivedBytes <= bodyBytesMax) return void chunks.push(chunk);
        // Stop reading here; the connection closes after the response instead of being drained.
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
      };
      req.on('data', onData);
      req.once('end', () => resolve({ chunks, receivedBytes }));
      req.once('error', reject);
    },
  );
  if (receivedBytes === 0) return undefined;

  const contentType = req.headers['content-type'];
  if (contentType !== undefined && !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new HaError('HA_ERR_BAD_REQUEST', `content-type: expected application/json, got "${contentType}"`, {
      field: 'content-type',
    });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, receivedBytes));
  } catch {
    throw new HaError('HA_ERR_BAD_REQUEST', 'body: expected UTF-8 text', { field: 'body' });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HaError('HA_ERR_BAD_REQUEST', `body: expected valid JSON (${(err as Error).message})`, {
      field: 'body',
    });
  }
}
