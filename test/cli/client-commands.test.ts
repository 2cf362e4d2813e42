// The client commands run as a real child process (fixtures/cli-entry.ts) against the real API
// server over a fake in-memory backend.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { pino } from 'pino';
import { createApiServer, type ApiServer } from '../../src/api/http-server.js';
import { createMetrics } from '../../src/cluster/metrics.js';
import { FakeBackend } from '../api/fixtures/fake-backend.js';
import { listLimitMax } from '../../src/api/kv-list.js';

const entry = new URL('./fixtures/cli-entry.js', import.meta.url).pathname;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously: the server under test lives in this process's event loop. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ANYA_HA_CLI_FIXTURE: '1', ...env };
  if (env.ANYA_HA_API === undefined) delete childEnv.ANYA_HA_API;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [entry, ...args],
      { env: childEnv, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A port on 127.0.0.1 that nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('anya-ha client commands', () => {
  let backend: FakeBackend;
  let server: ApiServer;
  let api: string;
  const run = (...args: string[]) => cli(['--api', api, ...args]);

  before(async () => {
    backend = new FakeBackend();
    const metrics = createMetrics({ nodeId: 'n1', status: () => backend.status() });
    server = createApiServer({ backend, metrics, logger: pino({ level: 'silent' }) });
    api = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  after(() => server.close());

  it('status prints the node fields and an aligned members table', async () => {
    const r = await run('status');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node:\s+n1$/m);
    assert.match(r.stdout, /^role:\s+leader$/m);
    assert.match(r.stdout, /^term:\s+3$/m);
    assert.match(r.stdout, /^leader:\s+n1$/m);
    assert.match(r.stdout, /^commit:\s+17$/m);
    assert.match(r.stdout, /^applied:\s+16$/m);
    assert.match(r.stdout, /^fencing token:\s+term 3, index 12$/m);
    const lines = r.stdout.split('\n');
    const header = lines.find((l) => l.startsWith('NODE'))!;
    const n3 = lines.find((l) => l.startsWith('n3'))!;
    assert.equal(n3.indexOf('follower'), header.indexOf('ROLE'));
    assert.equal(n3.indexOf('no'), header.indexOf('REACHABLE'));
    assert.equal(n3.indexOf('4100 ms'), header.indexOf('LAST CONTACT'));
  });

  it('kv put then kv get round-trips the value with its version', async () => {
    const put = await run('kv', 'put', 'cli/a', 'hello world');
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^version:\s+1$/m);
    const get = await run('kv', 'get', 'cli/a');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^key:\s+cli\/a$/m);
    assert.match(get.stdout, /^value:\s+hello world$/m);
    assert.match(get.stdout, /^version:\s+1$/m);
  });

  it('--json prints the API JSON verbatim', async () => {
    await run('kv', 'put', 'cli/json', 'v');
    const r = await run('--json', 'kv', 'get', 'cli/json');
    assert.equal(r.code, 0, r.stderr);
    const direct = await (await fetch(`${api}/v1/kv/${encodeURIComponent('cli/json')}`)).text();
    assert.equal(r.stdout, direct + '\n');
    assert.deepEqual(JSON.parse(r.stdout), {
      key: 'cli/json',
      value: 'v',
      version: 1,
      revision: JSON.parse(direct).revision,
    });
    const status = await run('status', '--json');
    assert.deepEqual(JSON.parse(status.stdout), backend.status());
  });

  it('kv get --stale asks for a stale read', async () => {
    await run('kv', 'put', 'cli/stale', 'v');
    const r = await run('kv', 'get', 'cli/stale', '--stale');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(backend.lastArgs.at(-1)![1], 'stale');
  });

  it('kv list, history and delete print tables of what the API returned', async () => {
    await run('kv', 'put', 'cli/l/1', 'one');
    await run('kv', 'put', 'cli/l/2', 'two\nlines');
    const list = await run('kv', 'list', '--prefix', 'cli/l/');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      list.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s{2,}/)),
      [
        ['KEY', 'VERSION', 'REVISION', 'VALUE'],
        ['cli/l/1', '1', list.stdout.split('\n')[1].split(/\s{2,}/)[2], 'one'],
        ['cli/l/2', '1', list.stdout.split('\n')[2].split(/\s{2,}/)[2], 'two\\nlines'],
      ],
    );
    const del = await run('kv', 'delete', 'cli/l/1', '--if-version', '1');
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /^deleted:\s+cli\/l\/1$/m);
    const history = await run('kv', 'history', 'cli/l/1');
    assert.equal(history.code, 0, history.stderr);
    const rows = history.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s{2,}/));
    assert.deepEqual(
      rows.map((r) => [r[0], r[2]]),
      [
        ['1', 'one'],
        ['2', '(deleted)'],
      ],
    );
  });

  it('kv list follows the pages until none remain: every key once, in order, in one table', async () => {
    const count = 2 * listLimitMax + 5;
    const keyOf = (i: number) => `cli/many/${String(i).padStart(5, '0')}`;
    for (let i = count - 1; i >= 0; i--) await backend.kvPut(keyOf(i), `v${i}`, undefined, Date.now() + 1000);
    const listCallsBefore = backend.lastArgs.length;
    const r = await run('kv', 'list', '--prefix', 'cli/many/');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^KEY\s+VERSION\s+REVISION\s+VALUE$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      Array.from({ length: count }, (_, i) => keyOf(i)),
    );
    const pageArgs = backend.lastArgs.slice(listCallsBefore).map((a) => a[1]);
    assert.deepEqual(pageArgs, [
      { limit: listLimitMax, after: undefined },
      { limit: listLimitMax, after: keyOf(listLimitMax - 1) },
      { limit: listLimitMax, after: keyOf(2 * listLimitMax - 1) },
    ]);

    const json = await run('--json', 'kv', 'list', '--prefix', 'cli/many/');
    assert.equal(json.code, 0, json.stderr);
    const pages = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { items: { key: string }[]; more: boolean });
    assert.deepEqual(
      pages.map((p) => [p.items.length, p.more]),
      [
        [listLimitMax, true],
        [listLimitMax, true],
        [5, false],
      ],
    );
    assert.equal(pages.flatMap((p) => p.items).length, count);
  });

  it('kv list --limit reads one page and says where to continue; --after continues', async () => {
    for (const key of ['cli/p/a', 'cli/p/b', 'cli/p/c']) await run('kv', 'put', key, 'v');
    const first = await run('kv', 'list', '--prefix', 'cli/p/', '--limit', '2');
    assert.equal(first.code, 0, first.stderr);
    const lines = first.stdout.trimEnd().split('\n');
    assert.deepEqual(
      lines.slice(1, 3).map((l) => l.split(/\s+/)[0]),
      ['cli/p/a', 'cli/p/b'],
    );
    assert.equal(lines[3], 'more keys follow: --after "cli/p/b"');
    const rest = await run('kv', 'list', '--prefix', 'cli/p/', '--after', 'cli/p/b');
    assert.equal(rest.code, 0, rest.stderr);
    assert.deepEqual(
      rest.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['cli/p/c'],
    );
    const json = await run('--json', 'kv', 'list', '--prefix', 'cli/p/', '--limit', '2');
    assert.deepEqual(
      { ...JSON.parse(json.stdout), items: undefined },
      { items: undefined, more: true, next: 'cli/p/b', revision: JSON.parse(json.stdout).revision },
    );
  });

  it('a bad kv list --limit exits 2 naming the range and sends nothing', async () => {
    const callsBefore = backend.calls;
    for (const bad of ['0', String(listLimitMax + 1), 'x', '']) {
      const r = await run('kv', 'list', '--limit', bad);
      assert.equal(r.code, 2, `--limit ${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`--limit <n>.*expected an integer from 1 to ${listLimitMax}`));
    }
    assert.equal(backend.calls, callsBefore);
  });

  it('leader transfer --to prints the new leader', async () => {
    const r = await run('leader', 'transfer', '--to', 'n3');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^leader:\s+n3$/m);
  });

  it('a version mismatch exits 1 with the message and code on stderr', async () => {
    await run('kv', 'put', 'cli/cas', 'v1');
    const r = await run('kv', 'put', 'cli/cas', 'v2', '--if-version', '0');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'error: key "cli/cas" is at version 1, not 0 (HA_ERR_VERSION_MISMATCH)\n');
  });

  it('with --json an API error also prints the error JSON on stdout', async () => {
    const r = await run('--json', 'kv', 'get', 'cli/absent');
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.code, 'HA_ERR_NOT_FOUND');
    assert.match(r.stderr, /\(HA_ERR_NOT_FOUND\)\n$/);
  });

  it('a refused connection exits 1 naming the URL', async () => {
    const port = await closedPort();
    const r = await cli(['--api', `http://127.0.0.1:${port}`, 'status']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^error: cannot connect to http://127\\.0\\.0\\.1:${port}: connection refused .*\\(ECONNREFUSED\\)\\n$`,
      ),
    );
  });

  it('ANYA_HA_API selects the node when --api is absent', async () => {
    const r = await cli(['status', '--json'], { ANYA_HA_API: api });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).nodeId, 'n1');
  });

  it('a bad --if-version exits 2 and sends nothing', async () => {
    const callsBefore = backend.calls;
    for (const bad of ['-1', 'x', '1.5', '']) {
      const r = await run('kv', 'put', 'cli/k', 'v', '--if-version', bad);
      assert.equal(r.code, 2, `--if-version ${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /--if-version <n>.*expected a non-negative integer/);
    }
    assert.equal(backend.calls, callsBefore);
  });

  it('a malformed --api URL or a missing argument exits 2', async () => {
    const badUrl = await cli(['--api', 'localhost:8080', 'status']);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /--api: expected an http:\/\/ or https:\/\/ URL/);
    const missing = await run('kv', 'get');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'key'/);
  });
});
