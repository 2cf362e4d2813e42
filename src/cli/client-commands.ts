// The client commands: status, kv get/put/delete/list/history, leader transfer. Each is one HTTP
// call to a node's API (--api), except `kv list`, which follows the listing's pages; with --json
// the API's JSON is printed verbatim (one line per page for kv list), otherwise a readable view
// (format.ts). Exit status: 0 done, 1 the API refused or could not be reached,
// 2 the command line itself was wrong (usage errors surface as CommanderError from the program).
import { Command, InvalidArgumentError, Option } from 'commander';
import type { KvEntryView } from '../api/backend.js';
import { listLimitMax } from '../api/kv-list.js';
import { compareKeys } from '../state/kv-types.js';
import { ApiClientError, createApiClient, type ApiClient } from './client.js';
import { formatEntries, formatEntry, formatFields, formatHistory, formatStatus } from './format.js';

export const apiUrlDefault = 'http://127.0.0.1:8080';
export const apiUrlEnv = 'ANYA_HA_API';

interface GlobalOptions {
  api: string;
  json?: boolean;
}

interface ClientContext {
  client: ApiClient;
  json: boolean;
}

export function registerClientCommands(program: Command): void {
  program
    .addOption(
      new Option('--api <url>', "base URL of a node's HTTP API (any node will do)")
        .env(apiUrlEnv)
        .default(apiUrlDefault),
    )
    .option('--json', "print the API's JSON answer verbatim");

  program
    .command('status')
    .description("this node's role, term, leader, indexes, fencing token and members")
    .action((_opts: object, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        const res = await client.status();
        print(json ? res.text : formatStatus(res.body));
      }),
    );

  const kv = program.command('kv').description('the replicated key-value store');

  kv.command('get <key>')
    .description('read a key (linearizable unless --stale)')
    .option('--stale', "read this node's copy without asking the leader (may be behind)")
    .action((key: string, opts: { stale?: boolean }, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        const res = await client.kvGet(checkKey(cmd, key), { stale: opts.stale === true });
        print(json ? res.text : formatEntry(res.body));
      }),
    );

  kv.command('put <key> <value>')
    .description('write a key; with --if-version only if its version is N (0: only if absent)')
    .addOption(ifVersionOption())
    .action((key: string, value: string, opts: { ifVersion?: number }, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        const res = await client.kvPut(checkKey(cmd, key), value, opts.ifVersion);
        const { version, revision } = res.body;
        print(
          json
            ? res.text
            : formatFields([
                ['key', res.body.key],
                ['version', String(version)],
                ['revision', String(revision)],
              ]),
        );
      }),
    );

  kv.command('delete <key>')
    .description('delete a key; with --if-version only if its version is N')
    .addOption(ifVersionOption())
    .action((key: string, opts: { ifVersion?: number }, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        const res = await client.kvDelete(checkKey(cmd, key), opts.ifVersion);
        print(
          json
            ? res.text
            : formatFields([
                ['deleted', res.body.key],
                ['revision', String(res.body.revision)],
              ]),
        );
      }),
    );

  kv.command('list')
    .description(
      'list keys and values, optionally under a prefix; reads every page unless --limit or --after',
    )
    .option('--prefix <prefix>', 'only keys starting with this', '')
    .addOption(
      new Option('--limit <n>', `read one page of at most n keys (1..${listLimitMax})`).argParser(parseLimit),
    )
    .option('--after <key>', 'read one page of the keys after this one (the last key of the previous page)')
    .action((opts: { prefix: string; limit?: number; after?: string }, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        if (opts.after !== undefined && opts.after.length === 0) usageError(cmd, '--after: expected a key');
        if (opts.limit !== undefined || opts.after !== undefined) {
          const res = await client.kvList(opts.prefix, { limit: opts.limit, after: opts.after });
          const { items, more, next } = res.body;
          const hint = more && next !== null ? `more keys follow: --after ${JSON.stringify(next)}\n` : '';
          print(json ? res.text : formatEntries(items) + hint);
          return;
        }
        const items = await listEveryPage(client, opts.prefix, (text) => {
          if (json) print(text);
        });
        if (!json) print(formatEntries(items));
      }),
    );

  kv.command('history <key>')
    .description('the kept versions of a key, oldest first')
    .action((key: string, _opts: object, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        const res = await client.kvHistory(checkKey(cmd, key));
        print(json ? res.text : formatHistory(res.body.items));
      }),
    );

  const leader = program.command('leader').description('leadership');
  leader
    .command('transfer')
    .description('hand leadership to another voter (the most up to date one unless --to)')
    .option('--to <node>', 'node id of the voter to become leader')
    .action((opts: { to?: string }, cmd: Command) =>
      run(cmd, async ({ client, json }) => {
        if (opts.to !== undefined && opts.to.length === 0) usageError(cmd, '--to: expected a node id');
        const res = await client.transferLeader(opts.to);
        print(json ? res.text : formatFields([['leader', res.body.leaderId]]));
      }),
    );
}

/**
 * Reads a listing page after page, each as large as the API allows, until none remain; hands each
 * page's JSON text to `onPage` as received. Pages may come from different revisions (see
 * src/api/kv-list.ts). The loop ends because every cursor must lie beyond the one before.
 */
async function listEveryPage(
  client: ApiClient,
  prefix: string,
  onPage: (text: string) => void,
): Promise<KvEntryView[]> {
  const items: KvEntryView[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await client.kvList(prefix, { limit: listLimitMax, after });
    onPage(res.text);
    items.push(...res.body.items);
    const { more, next } = res.body;
    if (!more) return items;
    if (typeof next !== 'string' || (after !== undefined && compareKeys(next, after) <= 0)) {
      throw new ApiClientError(
        'EBADRESPONSE',
        `the API's next cursor ${JSON.stringify(next)} does not advance`,
      );
    }
    after = next;
  }
}

function ifVersionOption(): Option {
  return new Option('--if-version <n>', 'only if the current version is n').argParser(parseVersion);
}

/** Commander option parser: a non-negative integer, written in decimal digits. */
export function parseVersion(text: string): number {
  const n = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

/** Commander option parser: a page size from 1 to listLimitMax, in decimal digits. */
export function parseLimit(text: string): number {
  const n = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= listLimitMax)) {
    throw new InvalidArgumentError(`expected an integer from 1 to ${listLimitMax}.`);
  }
  return n;
}

function checkKey(cmd: Command, key: string): string {
  // The server validates fully; an empty key would address the key list instead of a key.
  if (key.length === 0) usageError(cmd, '<key>: expected a non-empty key');
  return key;
}

function usageError(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 2, code: 'anya-ha.usage' });
}

async function run(cmd: Command, work: (ctx: ClientContext) => Promise<void>): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const baseUrl = parseApiUrl(cmd, globals.api);
  const json = globals.json === true;
  try {
    await work({ client: createApiClient({ baseUrl }), json });
  } catch (err) {
    if (!(err instanceof ApiClientError)) throw err;
    // The exit status is set, not forced: stdout and stderr are flushed before the process ends.
    if (json && err.responseText !== null) print(err.responseText);
    process.stderr.write(`error: ${err.message} (${err.code})\n`);
    process.exitCode = 1;
  }
}

function parseApiUrl(cmd: Command, text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    usageError(cmd, `--api: expected a URL such as ${apiUrlDefault}, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    usageError(cmd, `--api: expected an http:// or https:// URL, got "${text}"`);
  }
  return url.href;
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
