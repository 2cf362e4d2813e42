// The HTTP client the CLI's client commands use. It keeps the response text as received, so that
// --json can print the API's JSON verbatim, and turns every failure into an ApiClientError whose
// code is the API's error code or, for failures before an answer, the connection error's code.
// node:http rather than fetch: fetch refuses the ports on its "bad port" list (6000, 10080, ...),
// and an operator's API may listen on any of them.
import http from 'node:http';
import https from 'node:https';
import type { KvEntryView, KvHistoryItem, NodeStatusView } from '../api/backend.js';
import type { KvListResponseBody } from '../api/kv-list.js';

/** Longer than the server's default request deadline, so the server's own timeout is what is seen. */
export const clientRequestTimeoutMsDefault = 15_000;
/** Largest response body read; a list of many large values beyond this is refused, not buffered. */
export const responseBytesMax = 64 * 1024 * 1024;

export class ApiClientError extends Error {
  /** An HA_ERR_* code from the API, or a client-side code (ECONNREFUSED, ETIMEDOUT, ...). */
  readonly code: string;
  /** The HTTP status, or null when no answer arrived. */
  readonly httpStatus: number | null;
  /** The response body as received, when there was one. */
  readonly responseText: string | null;

  constructor(
    code: string,
    message: string,
    httpStatus: number | null = null,
    responseText: string | null = null,
  ) {
    super(message);
    this.name = 'ApiClientError';
    this.code = code;
    this.httpStatus = httpStatus;
    this.responseText = responseText;
  }
}

export interface ApiResponse<T> {
  body: T;
  /** The JSON text exactly as the API sent it. */
  text: string;
}

export interface ApiClient {
  status(): Promise<ApiResponse<NodeStatusView>>;
  kvGet(key: string, opts?: { stale?: boolean }): Promise<ApiResponse<KvEntryView>>;
  kvPut(
    key: string,
    value: string,
    ifVersion?: number,
  ): Promise<ApiResponse<{ key: string; version: number; revision: number }>>;
  kvDelete(key: string, ifVersion?: number): Promise<ApiResponse<{ key: string; revision: number }>>;
  /** One page of the listing; the server's default limit when `limit` is absent. */
  kvList(
    prefix?: string,
    page?: { limit?: number; after?: string },
  ): Promise<ApiResponse<KvListResponseBody>>;
  kvHistory(key: string): Promise<ApiResponse<{ key: string; items: KvHistoryItem[] }>>;
  transferLeader(to?: string): Promise<ApiResponse<{ leaderId: string }>>;
}

export interface ApiClientOptions {
  /** e.g. http://127.0.0.1:8080; a path prefix is kept. */
  baseUrl: string;
  timeoutMs?: number;
}

export function createApiClient(opts: ApiClientOptions): ApiClient {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? clientRequestTimeoutMsDefault;
  const kvPath = (key: string) => `/v1/kv/${encodeURIComponent(key)}`;

  async function call<T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const url = base + path;
    const { status, text } = await send(
      url,
      method,
      body === undefined ? undefined : JSON.stringify(body),
      timeoutMs,
    );
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiClientError(
        'EBADRESPONSE',
        `${url} answered HTTP ${status} with a body that is not JSON`,
        status,
        text,
      );
    }
    if (status < 200 || status > 299) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      if (typeof error?.code === 'string' && typeof error.message === 'string') {
        throw new ApiClientError(error.code, error.message, status, text);
      }
      throw new ApiClientError(`HTTP_${status}`, `${url} answered HTTP ${status}`, status, text);
    }
    return { body: parsed as T, text };
  }

  return {
    status: () => call('GET', '/v1/status'),
    kvGet: (key, o) => call('GET', kvPath(key) + (o?.stale ? '?consistency=stale' : '')),
    kvPut: (key, value, ifVersion) =>
      call('PUT', kvPath(key), ifVersion === undefined ? { value } : { value, ifVersion }),
    kvDelete: (key, ifVersion) =>
      call('DELETE', kvPath(key) + (ifVersion === undefined ? '' : `?ifVersion=${ifVersion}`)),
    kvList: (prefix, page) => {
      const query = new URLSearchParams();
      if (prefix) query.set('prefix', prefix);
      if (page?.limit !== undefined) query.set('limit', String(page.limit));
      if (page?.after !== undefined) query.set('after', page.after);
      const search = query.toString();
      return call('GET', '/v1/kv' + (search === '' ? '' : `?${search}`));
    },
    kvHistory: (key) => call('GET', `${kvPath(key)}/history`),
    transferLeader: (to) => call('POST', '/v1/leader/transfer', to === undefined ? {} : { to }),
  };
}

/** One request; resolves with the status and the whole body, read up to responseBytesMax. */
function send(
  url: string,
  method: string,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const origin = new URL(url).origin;
  const transport = url.startsWith('https:') ? https : http;
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let receivedBytes = 0;
      res.on('data', (chunk: Buffer) => {
        receivedBytes += chunk.length;
        if (receivedBytes > responseBytesMax) {
          req.destroy();
          reject(
            new ApiClientError(
              'ERESPONSETOOLARGE',
              `${url} sent more than ${responseBytesMax} bytes`,
              res.statusCode,
            ),
          );
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode!, text: Buffer.concat(chunks, receivedBytes).toString('utf8') }),
      );
      res.on('error', (err) => reject(connectionError(origin, err)));
    });
    // The timeout fires on an idle socket: no connection, or no bytes for timeoutMs.
    req.on('timeout', () => {
      req.destroy();
      reject(new ApiClientError('ETIMEDOUT', `no answer from ${origin} within ${timeoutMs} ms`));
    });
    req.on('error', (err) => reject(connectionError(origin, err)));
    req.end(body);
  });
}

function connectionError(origin: string, err: Error): ApiClientError {
  const code = (err as NodeJS.ErrnoException).code ?? 'ECONNECT';
  if (code === 'ECONNREFUSED') {
    return new ApiClientError(
      code,
      `cannot connect to ${origin}: connection refused (is the agent running? set --api or ANYA_HA_API)`,
    );
  }
  return new ApiClientError(code, `cannot reach ${origin}: ${err.message}`);
}
