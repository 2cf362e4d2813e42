import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { pino } from 'pino';
import { createApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/http-server.js';
import { createMetrics } from '../../src/cluster/metrics.js';
import { FakeBackend } from './fixtures/fake-backend.js';

const silent = pino({ level: 'silent' });

interface Harness {
  base: string;
  port: number;
  backend: FakeBackend;
  server: ApiServer;
}

async function start(
  overrides: Partial<ApiServerOptions> = {},
  backend = new FakeBackend(),
): Promise<Harness> {
  const metrics = createMetrics({ nodeId: 'n1', status: () => backend.status() });
  const server = createApiServer({ backend, metrics, logger: silent, ...overrides });
  const { port } = await server.listen('127.0.0.1', 0);
  return { base: `http://127.0.0.1:${port}`, port, backend, server };
}

async function request(
  h: Harness,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(h.base + path, init);
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function errorOf(json: Record<string, unknown>): { code: string; message: string } & Record<string, unknown> {
  return json.error as { code: string; message: string } & Record<string, unknown>;
}

/** Sends a raw request with node:http so that headers and streaming are under the test's control. */
function rawRequest(
  port: number,
  opts: http.RequestOptions,
  write: (req: http.ClientRequest) => void,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    write(req);
  });
}

describe('HTTP API routes', () => {
  let h: Harness;
  before(async () => {
    h = await start();
  });
  after(() => h.server.close());

  it('GET /v1/status returns the backend status verbatim', async () => {
    const r = await request(h, 'GET', '/v1/status');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, h.backend.status());
  });

  it('GET /health answers ok with the node id', async () => {
    const r = await request(h, 'GET', '/health');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok', nodeId: 'n1' });
  });

  it('GET /v1/health/leader is 200 on the leader and 503 on a follower, naming role and leader', async () => {
    h.backend.leader = true;
    const onLeader = await request(h, 'GET', '/v1/health/leader');
    assert.equal(onLeader.status, 200);
    assert.deepEqual(onLeader.json, { leader: true, nodeId: 'n1', role: 'leader', leaderId: 'n1' });
    h.backend.leader = false;
    try {
      const onFollower = await request(h, 'GET', '/v1/health/leader');
      assert.equal(onFollower.status, 503);
      assert.deepEqual(onFollower.json, { leader: false, nodeId: 'n1', role: 'follower', leaderId: 'n2' });
    } finally {
      h.backend.leader = true;
    }
  });

  it('PUT then GET returns the value with its version and revision', async () => {
    const put = await request(h, 'PUT', '/v1/kv/route-a', { value: 'one' });
    assert.equal(put.status, 200);
    assert.equal(put.json.key, 'route-a');
    assert.equal(put.json.version, 1);
    const get = await request(h, 'GET', '/v1/kv/route-a');
    assert.equal(get.status, 200);
    assert.deepEqual(get.json, { key: 'route-a', value: 'one', version: 1, revision: put.json.revision });
  });

  it('GET reads linearizably by default and stale only when asked', async () => {
    await request(h, 'PUT', '/v1/kv/route-c', { value: 'x' });
    await request(h, 'GET', '/v1/kv/route-c');
    assert.equal(h.backend.lastArgs.at(-1)![1], 'linearizable');
    await request(h, 'GET', '/v1/kv/route-c?consistency=stale');
    assert.equal(h.backend.lastArgs.at(-1)![1], 'stale');
  });

  it('the backend receives a deadline of now plus the request timeout', async () => {
    const before = Date.now();
    await request(h, 'GET', '/v1/kv/route-c');
    const deadlineMs = h.backend.lastArgs.at(-1)![2] as number;
    assert.ok(deadlineMs >= before + 5000 && deadlineMs <= Date.now() + 5000, `deadline ${deadlineMs}`);
  });

  it('a key containing "/" travels as one %2F-encoded segment', async () => {
    const put = await request(h, 'PUT', `/v1/kv/${encodeURIComponent('svc/db/primary')}`, { value: 'n1' });
    assert.equal(put.status, 200);
    assert.equal(put.json.key, 'svc/db/primary');
    const get = await request(h, 'GET', `/v1/kv/${encodeURIComponent('svc/db/primary')}`);
    assert.equal(get.json.value, 'n1');
  });

  it('GET of a missing key is 404 HA_ERR_NOT_FOUND', async () => {
    const r = await request(h, 'GET', '/v1/kv/absent');
    assert.equal(r.status, 404);
    assert.equal(errorOf(r.json).code, 'HA_ERR_NOT_FOUND');
    assert.match(errorOf(r.json).message, /absent/);
  });

  it('PUT with a stale ifVersion is 409 carrying currentVersion', async () => {
    await request(h, 'PUT', '/v1/kv/cas', { value: 'v1' });
    await request(h, 'PUT', '/v1/kv/cas', { value: 'v2', ifVersion: 1 });
    const r = await request(h, 'PUT', '/v1/kv/cas', { value: 'v3', ifVersion: 1 });
    assert.equal(r.status, 409);
    assert.equal(errorOf(r.json).code, 'HA_ERR_VERSION_MISMATCH');
    assert.equal(errorOf(r.json).currentVersion, 2);
  });

  it('DELETE honours ifVersion from the query or the body, and is 404 for a missing key', async () => {
    await request(h, 'PUT', '/v1/kv/del-q', { value: 'x' });
    const mismatch = await request(h, 'DELETE', '/v1/kv/del-q?ifVersion=7');
    assert.equal(mismatch.status, 409);
    assert.equal(errorOf(mismatch.json).currentVersion, 1);
    const byQuery = await request(h, 'DELETE', '/v1/kv/del-q?ifVersion=1');
    assert.equal(byQuery.status, 200);
    assert.equal(byQuery.json.key, 'del-q');
    assert.equal(typeof byQuery.json.revision, 'number');

    await request(h, 'PUT', '/v1/kv/del-b', { value: 'x' });
    const byBody = await request(h, 'DELETE', '/v1/kv/del-b', { ifVersion: 1 });
    assert.equal(byBody.status, 200);

    const missing = await request(h, 'DELETE', '/v1/kv/del-b');
    assert.equal(missing.status, 404);
    assert.equal(errorOf(missing.json).code, 'HA_ERR_NOT_FOUND');
  });

  it('GET /v1/kv?prefix= lists only the keys under the prefix', async () => {
    await request(h, 'PUT', '/v1/kv/list%2Fa', { value: '1' });
    await request(h, 'PUT', '/v1/kv/list%2Fb', { value: '2' });
    await request(h, 'PUT', '/v1/kv/other', { value: '3' });
    const r = await request(h, 'GET', '/v1/kv?prefix=list%2F');
    assert.equal(r.status, 200);
    const items = r.json.items as { key: string; value: string }[];
    assert.deepEqual(
      items.map((i) => [i.key, i.value]),
      [
        ['list/a', '1'],
        ['list/b', '2'],
      ],
    );
  });

  it('GET /v1/kv/{key}/history lists every version including the deletion', async () => {
    await request(h, 'PUT', '/v1/kv/hist', { value: 'a' });
    await request(h, 'PUT', '/v1/kv/hist', { value: 'b' });
    await request(h, 'DELETE', '/v1/kv/hist');
    const r = await request(h, 'GET', '/v1/kv/hist/history');
    assert.equal(r.status, 200);
    assert.equal(r.json.key, 'hist');
    const items = r.json.items as { version: number; value: string | null; deleted: boolean }[];
    assert.deepEqual(
      items.map((i) => [i.version, i.value, i.deleted]),
      [
        [1, 'a', false],
        [2, 'b', false],
        [3, null, true],
      ],
    );
  });

  it('POST /v1/leader/transfer passes the target, and an absent body lets the backend choose', async () => {
    const named = await request(h, 'POST', '/v1/leader/transfer', { to: 'n3' });
    assert.equal(named.status, 200);
    assert.deepEqual(named.json, { leaderId: 'n3' });
    const any = await request(h, 'POST', '/v1/leader/transfer');
    assert.deepEqual(any.json, { leaderId: 'n2' });
    assert.equal(h.backend.lastArgs.at(-1)![0], undefined);
  });

  it('GET /metrics serves the Prometheus text format with the anya_ha_ metrics', async () => {
    const res = await fetch(`${h.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain/);
    const text = await res.text();
    for (const name of ['anya_ha_role', 'anya_ha_term', 'anya_ha_commit_index', 'anya_ha_proposals_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'));
    }
  });

  it('unknown routes are 404 and wrong methods 405 with an Allow header', async () => {
    const unknown = await request(h, 'GET', '/v2/nothing');
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.json).code, 'HA_ERR_NOT_FOUND');
    const wrong = await request(h, 'POST', '/v1/kv/k', { value: 'x' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, PUT, DELETE');
    assert.equal(errorOf(wrong.json).code, 'HA_ERR_METHOD_NOT_ALLOWED');
  });

  it('keeps connections alive between requests', async () => {
    const r = await rawRequest(h.port, { method: 'GET', path: '/health' }, (req) => req.end());
    assert.equal(r.status, 200);
    const res = await new Promise<http.IncomingMessage>((resolve) =>
      http.get({ host: '127.0.0.1', port: h.port, path: '/health' }, resolve),
    );
    res.resume();
    assert.equal(res.headers.connection, 'keep-alive');
  });
});

describe('HTTP API input validation: refused requests never reach the backend', () => {
  let h: Harness;
  beforeEach(async () => {
    await h?.server.close();
    h = await start();
  });
  after(() => h.server.close());

  async function refused(method: string, path: string, body: unknown, status: number, code: string) {
    const r = await request(h, method, path, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.equal(errorOf(r.json).code, code);
    assert.equal(h.backend.calls, 0, 'backend was called');
    return errorOf(r.json);
  }

  it('malformed JSON is 400', async () => {
    const e = await refused('PUT', '/v1/kv/k', '{"value": ', 400, 'HA_ERR_BAD_REQUEST');
    assert.match(e.message, /^body: expected valid JSON/);
  });

  it('a body that is not an object is 400', async () => {
    const e = await refused('PUT', '/v1/kv/k', '[1]', 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(e.message, 'body: expected a JSON object');
  });

  it('an unknown field is 400 naming the field', async () => {
    const e = await refused('PUT', '/v1/kv/k', { value: 'x', ttl: 5 }, 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(e.field, 'body.ttl');
    assert.match(e.message, /body\.ttl: unknown field; expected only value, ifVersion/);
  });

  it('a missing value is 400 naming body.value', async () => {
    const e = await refused('PUT', '/v1/kv/k', {}, 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(e.message, 'body.value: required');
  });

  it('an ifVersion of the wrong type or negative is 400 naming body.ifVersion', async () => {
    const asString = await refused(
      'PUT',
      '/v1/kv/k',
      { value: 'x', ifVersion: '1' },
      400,
      'HA_ERR_BAD_REQUEST',
    );
    assert.equal(asString.message, 'body.ifVersion: expected integer');
    const fractional = await refused(
      'PUT',
      '/v1/kv/k',
      { value: 'x', ifVersion: 1.5 },
      400,
      'HA_ERR_BAD_REQUEST',
    );
    assert.equal(fractional.field, 'body.ifVersion');
    const negative = await refused(
      'PUT',
      '/v1/kv/k',
      { value: 'x', ifVersion: -1 },
      400,
      'HA_ERR_BAD_REQUEST',
    );
    assert.match(negative.message, /^body\.ifVersion: expected an integer from 0/);
  });

  it('a non-numeric ifVersion query parameter is 400 naming it', async () => {
    const e = await refused('DELETE', '/v1/kv/k?ifVersion=abc', undefined, 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(e.message, 'query.ifVersion: expected a non-negative integer, got "abc"');
  });

  it('ifVersion in both the query and the body is 400', async () => {
    await refused('DELETE', '/v1/kv/k?ifVersion=1', { ifVersion: 1 }, 400, 'HA_ERR_BAD_REQUEST');
  });

  it('an unknown query parameter or consistency level is 400 naming it', async () => {
    const unknown = await refused('GET', '/v1/kv/k?consistncy=stale', undefined, 400, 'HA_ERR_BAD_REQUEST');
    assert.match(unknown.message, /unknown parameter "consistncy"; expected only consistency/);
    const level = await refused('GET', '/v1/kv/k?consistency=eventual', undefined, 400, 'HA_ERR_BAD_REQUEST');
    assert.match(level.message, /query\.consistency: expected "linearizable" or "stale"/);
  });

  it('a key with a control character, over 512 bytes, empty or badly encoded is 400', async () => {
    const control = await refused('PUT', '/v1/kv/a%01b', { value: 'x' }, 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(control.message, 'key must not contain control characters or lone surrogates');
    assert.equal(control.field, 'key');
    const long = await refused('GET', `/v1/kv/${'é'.repeat(257)}`, undefined, 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(long.message, 'key must be at most 512 bytes of UTF-8');
    await refused('GET', '/v1/kv/', undefined, 400, 'HA_ERR_BAD_REQUEST');
    await refused('GET', '/v1/kv/%E0%A4%A', undefined, 400, 'HA_ERR_BAD_REQUEST');
  });

  it('a value with a lone surrogate is 400 naming body.value', async () => {
    const e = await refused('PUT', '/v1/kv/k', '{"value":"\\ud800"}', 400, 'HA_ERR_BAD_REQUEST');
    assert.equal(e.field, 'body.value');
  });

  it('a key of exactly 512 bytes is accepted', async () => {
    const r = await request(h, 'PUT', `/v1/kv/${'k'.repeat(512)}`, { value: 'x' });
    assert.equal(r.status, 200);
  });

  it('a body with a non-JSON content type is 400', async () => {
    const res = await fetch(`${h.base}/v1/kv/k`, {
      method: 'PUT',
      body: 'value=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 400);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /^content-type: expected/,
    );
    assert.equal(h.backend.calls, 0);
  });

  it('a body on a route that takes none is 400', async () => {
    const r = await rawRequest(
      h.port,
      {
        method: 'GET',
        path: '/v1/kv/k',
        headers: { 'content-type': 'application/json', 'content-length': 13 },
      },
      (req) => req.end('{"value":"x"}'),
    );
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).error.message, 'body: expected none for GET /v1/kv/k');
    assert.equal(h.backend.calls, 0);
  });

  it('a value over 1 MiB is 413 even inside the body limit', async () => {
    const e = await refused(
      'PUT',
      '/v1/kv/k',
      { value: 'x'.repeat(1024 * 1024 + 1) },
      413,
      'HA_ERR_PAYLOAD_TOO_LARGE',
    );
    assert.equal(e.field, 'body.value');
  });

  it('a declared Content-Length over bodyBytesMax is 413 without reading the body', async () => {
    await h.server.close();
    h = await start({ bodyBytesMax: 1024 });
    const r = await rawRequest(
      h.port,
      {
        method: 'PUT',
        path: '/v1/kv/k',
        headers: { 'content-type': 'application/json', 'content-length': 4096 },
      },
      (req) => req.end('{"value":"' + 'x'.repeat(4096 - 12) + '"}'),
    );
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body).error.code, 'HA_ERR_PAYLOAD_TOO_LARGE');
    assert.equal(h.backend.calls, 0);
  });

  it('a chunked body that grows past bodyBytesMax is 413', async () => {
    await h.server.close();
    h = await start({ bodyBytesMax: 1024 });
    const r = await rawRequest(
      h.port,
      { method: 'PUT', path: '/v1/kv/k', headers: { 'content-type': 'application/json' } },
      (req) => {
        req.write('{"value":"');
        req.write('x'.repeat(2048));
        req.end('"}');
      },
    );
    assert.equal(r.status, 413);
    assert.equal(h.backend.calls, 0);
  });
});

describe('HTTP API failure handling', () => {
  it('a backend that never answers gets 503 HA_ERR_TIMEOUT at the request timeout', async () => {
    const backend = new FakeBackend();
    backend.hang = true;
    const h = await start({ requestTimeoutMs: 100 }, backend);
    try {
      const startedMs = Date.now();
      const r = await request(h, 'GET', '/v1/kv/k');
      const elapsedMs = Date.now() - startedMs;
      assert.equal(r.status, 503);
      assert.equal(errorOf(r.json).code, 'HA_ERR_TIMEOUT');
      assert.ok(elapsedMs >= 90 && elapsedMs < 2000, `answered after ${elapsedMs} ms`);
    } finally {
      await h.server.close();
    }
  });

  it('an HaError from the backend keeps its status and code', async () => {
    const backend = new FakeBackend();
    const { HaError } = await import('../../src/errors.js');
    backend.kvPut = async () => {
      throw new HaError('HA_ERR_NO_QUORUM', 'no quorum within the deadline');
    };
    const h = await start({}, backend);
    try {
      const r = await request(h, 'PUT', '/v1/kv/k', { value: 'x' });
      assert.equal(r.status, 503);
      assert.deepEqual(r.json, {
        error: { code: 'HA_ERR_NO_QUORUM', message: 'no quorum within the deadline' },
      });
    } finally {
      await h.server.close();
    }
  });

  it('any other error from the backend is 500 HA_ERR_INTERNAL without its message', async () => {
    const backend = new FakeBackend();
    backend.kvList = async () => {
      throw new Error('secret detail');
    };
    const h = await start({}, backend);
    try {
      const r = await request(h, 'GET', '/v1/kv');
      assert.equal(r.status, 500);
      assert.equal(errorOf(r.json).code, 'HA_ERR_INTERNAL');
      assert.doesNotMatch(errorOf(r.json).message, /secret/);
    } finally {
      await h.server.close();
    }
  });

  it('requests beyond inflightRequestsMax are refused with 429 HA_ERR_BUSY', async () => {
    const backend = new FakeBackend();
    backend.hang = true;
    const h = await start({ inflightRequestsMax: 1, requestTimeoutMs: 300 }, backend);
    try {
      const first = request(h, 'GET', '/v1/kv/k');
      const waitUntilMs = Date.now() + 2000;
      while (backend.calls === 0 && Date.now() < waitUntilMs) await new Promise((r) => setImmediate(r));
      assert.equal(backend.calls, 1);
      const second = await request(h, 'GET', '/v1/kv/k');
      assert.equal(second.status, 429);
      assert.equal(errorOf(second.json).code, 'HA_ERR_BUSY');
      assert.equal(backend.calls, 1);
      assert.equal((await first).status, 503);
    } finally {
      await h.server.close();
    }
  });
});
