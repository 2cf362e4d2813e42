// GET /v1/kv pages its answer: keys in order after the `after` cursor, at most `limit` of them,
// cut early by the byte budget, always at least one item, and `next` says where to continue.
import { describe, it, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/http-server.js';
import {
  encodeKvListPage,
  listLimitDefault,
  listLimitMax,
  listResponseBytesMaxDefault,
} from '../../src/api/kv-list.js';
import { createMetrics } from '../../src/cluster/metrics.js';
import { FakeBackend } from './fixtures/fake-backend.js';

interface Page {
  items: { key: string; value: string; version: number; revision: number }[];
  more: boolean;
  next: string | null;
  revision: number;
}

interface Harness {
  base: string;
  backend: FakeBackend;
  server: ApiServer;
}

async function start(overrides: Partial<ApiServerOptions> = {}): Promise<Harness> {
  const backend = new FakeBackend();
  const metrics = createMetrics({ nodeId: 'n1', status: () => backend.status() });
  const server = createApiServer({ backend, metrics, logger: pino({ level: 'silent' }), ...overrides });
  const { port } = await server.listen('127.0.0.1', 0);
  return { base: `http://127.0.0.1:${port}`, backend, server };
}

async function get(h: Harness, path: string): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(h.base + path);
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) };
}

async function put(h: Harness, key: string, value: string): Promise<void> {
  await h.backend.kvPut(key, value, undefined, Date.now() + 1000);
}

/** Reads every page of a listing by following `next`; gives up after pagesMax pages. */
async function listAll(h: Harness, query: string, pagesMax = 100): Promise<Page[]> {
  const pages: Page[] = [];
  let after: string | null = null;
  for (let i = 0; i < pagesMax; i++) {
    const cursor: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
    const r = await get(h, `/v1/kv?${query}${cursor}`);
    assert.equal(r.status, 200, r.text);
    const page = r.json as Page;
    pages.push(page);
    if (!page.more) return pages;
    after = page.next;
  }
  assert.fail(`listing not done after ${pagesMax} pages`);
}

const keyOf = (i: number) => `page/${String(i).padStart(4, '0')}`;

describe('GET /v1/kv paging', () => {
  let h: Harness;
  beforeEach(async () => {
    await h?.server.close();
    h = await start();
  });
  after(() => h.server.close());

  it('following next over more keys than one page returns every key exactly once, in order', async () => {
    const count = 2 * listLimitDefault + 50;
    // Written in a scrambled order, and beside keys outside the prefix.
    for (let i = 0; i < count; i++) await put(h, keyOf((i * 37) % count), `v${i}`);
    await put(h, 'pagd', 'before');
    await put(h, 'pagf', 'after');
    const pages = await listAll(h, 'prefix=page%2F');
    assert.deepEqual(
      pages.map((p) => p.items.length),
      [listLimitDefault, listLimitDefault, 50],
    );
    const keys = pages.flatMap((p) => p.items.map((i) => i.key));
    assert.deepEqual(
      keys,
      Array.from({ length: count }, (_, i) => keyOf(i)),
    );
    for (const p of pages.slice(0, -1)) assert.equal(p.next, p.items[p.items.length - 1].key);
    assert.equal(pages[pages.length - 1].next, null);
    assert.ok(pages.every((p) => p.revision === count + 2));
  });

  it('limit sets the page size, up to listLimitMax', async () => {
    for (let i = 0; i < 10; i++) await put(h, keyOf(i), 'v');
    const pages = await listAll(h, 'prefix=page%2F&limit=4');
    assert.deepEqual(
      pages.map((p) => p.items.map((i) => i.key)),
      [
        [keyOf(0), keyOf(1), keyOf(2), keyOf(3)],
        [keyOf(4), keyOf(5), keyOf(6), keyOf(7)],
        [keyOf(8), keyOf(9)],
      ],
    );
    const max = await get(h, `/v1/kv?limit=${listLimitMax}`);
    assert.equal(max.status, 200);
    assert.deepEqual((h.backend.lastArgs.at(-1)![1] as { limit: number }).limit, listLimitMax);
  });

  it('a page that holds exactly the last keys says no more follow', async () => {
    for (let i = 0; i < 3; i++) await put(h, keyOf(i), 'v');
    const r = await get(h, '/v1/kv?limit=3');
    assert.deepEqual(
      { ...(r.json as Page), items: undefined },
      { items: undefined, more: false, next: null, revision: 3 },
    );
  });

  it('a cursor outside the prefix reads from its start when before it and nothing when after it', async () => {
    for (const key of ['a', 'b/1', 'b/2', 'c']) await put(h, key, 'v');
    const before = (await get(h, '/v1/kv?prefix=b%2F&after=a')).json as Page;
    assert.deepEqual(
      before.items.map((i) => i.key),
      ['b/1', 'b/2'],
    );
    assert.equal(before.more, false);
    const beyond = (await get(h, '/v1/kv?prefix=b%2F&after=c')).json as Page;
    assert.deepEqual(beyond, { items: [], more: false, next: null, revision: 4 });
  });

  for (const bad of ['0', String(listLimitMax + 1), '-1', '1.5', 'ten', '', '1e3']) {
    it(`limit=${JSON.stringify(bad)} is 400 naming query.limit and the allowed range; nothing is read`, async () => {
      const r = await get(h, `/v1/kv?limit=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400);
      assert.deepEqual(r.json, {
        error: {
          code: 'HA_ERR_BAD_REQUEST',
          message: `query.limit: expected an integer from 1 to ${listLimitMax}, got "${bad}"`,
          field: 'query.limit',
        },
      });
      assert.equal(h.backend.calls, 0);
    });
  }

  it('an after that is not a valid key is 400 naming query.after; nothing is read', async () => {
    for (const bad of ['', 'a\u0001b', 'k'.repeat(513)]) {
      const r = await get(h, `/v1/kv?after=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      const error = (r.json as { error: { code: string; field: string; message: string } }).error;
      assert.equal(error.code, 'HA_ERR_BAD_REQUEST');
      assert.equal(error.field, 'query.after');
      assert.match(error.message, /^query\.after: expected the last key of a previous page; key must /);
    }
    const twice = await get(h, '/v1/kv?limit=1&limit=2');
    assert.equal(twice.status, 400);
    assert.equal(h.backend.calls, 0);
  });

  it('the default byte budget ends a page of large values early; following next still reads all', async () => {
    const valueBytes = 300 * 1024;
    for (let i = 0; i < 5; i++) await put(h, keyOf(i), String(i).repeat(valueBytes));
    const first = await get(h, '/v1/kv?prefix=page%2F');
    const page = first.json as Page;
    // Three values of 300 KiB fit in 1 MiB, a fourth does not.
    assert.equal(page.items.length, 3);
    assert.equal(page.more, true);
    assert.equal(page.next, keyOf(2));
    assert.ok(Buffer.byteLength(first.text) <= listResponseBytesMaxDefault + 100);
    const pages = await listAll(h, 'prefix=page%2F');
    assert.deepEqual(
      pages.map((p) => p.items.map((i) => i.key)),
      [
        [keyOf(0), keyOf(1), keyOf(2)],
        [keyOf(3), keyOf(4)],
      ],
    );
  });

  it('an item larger than the byte budget is still returned, alone on its page', async () => {
    await h.server.close();
    h = await start({ listResponseBytesMax: 64 });
    await put(h, 'big/a', 'x'.repeat(200));
    await put(h, 'big/b', 'y'.repeat(200));
    await put(h, 'big/c', 'z');
    const pages = await listAll(h, 'prefix=big%2F');
    assert.deepEqual(
      pages.map((p) => [p.items.map((i) => i.key), p.more]),
      [
        [['big/a'], true],
        [['big/b'], true],
        [['big/c'], false],
      ],
    );
  });
});

describe('encodeKvListPage', () => {
  const item = (key: string, value: string) => ({ key, value, version: 1, revision: 7 });

  it('counts encoded bytes, escapes and multi-byte characters included, and cuts at the budget', () => {
    // 47 bytes of envelope each; \u0001 encodes to 6 bytes, é to 2.
    const items = [item('a', '\u0001'.repeat(8)), item('b', 'é'.repeat(15)), item('c', 'x')];
    assert.deepEqual(
      items.map((i) => Buffer.byteLength(JSON.stringify(i))),
      [95, 77, 48],
    );
    const encode = (bytesMax: number) =>
      JSON.parse(encodeKvListPage({ items, more: false, revision: 7 }, bytesMax));
    // 95 + 1 (comma) + 77 = 173: the budget that holds a and b exactly, and one byte less.
    assert.deepEqual(encode(173), { items: items.slice(0, 2), more: true, next: 'b', revision: 7 });
    assert.deepEqual(encode(172), { items: items.slice(0, 1), more: true, next: 'a', revision: 7 });
    assert.deepEqual(encode(1), { items: items.slice(0, 1), more: true, next: 'a', revision: 7 });
    assert.deepEqual(encode(95 + 78 + 49), { items, more: false, next: null, revision: 7 });
  });

  it('an uncut last page keeps the backend answer: more false, next null', () => {
    const items = [item('a', '1')];
    assert.deepEqual(JSON.parse(encodeKvListPage({ items, more: false, revision: 7 }, 1024)), {
      items,
      more: false,
      next: null,
      revision: 7,
    });
    assert.deepEqual(JSON.parse(encodeKvListPage({ items, more: true, revision: 7 }, 1024)).next, 'a');
  });
});
