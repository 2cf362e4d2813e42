// The real command line (`node dist/src/cli/main.js --api URL ...`) against a running cluster of
// real agent processes: each command is one child process, checked by its exit status and output.
//
// Ports 20400-20499: peers 20400-20402, APIs 20450-20452.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NodeStatusView } from '../../src/api/backend.js';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { LocalCluster } from '../../testkit/local-cluster.js';
import { waitFor, waitForFullCluster } from '../../testkit/wait.js';

const basePort = 20400;
const apiBasePort = 20450;
const leaderDeadlineMs = 20_000;
/** One CLI run: process start-up plus one API call. */
const cliDeadlineMs = 15_000;
const mainJs = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(apiUrl: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [mainJs, '--api', apiUrl, ...args],
      { timeout: cliDeadlineMs },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs a CLI command and requires exit status 0. */
async function cliOk(apiUrl: string, ...args: string[]): Promise<string> {
  const r = await cli(apiUrl, ...args);
  assert.equal(r.code, 0, `anya-ha ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The value of a `label:  value` line of the human output. */
function field(output: string, label: string): string | undefined {
  return new RegExp(`^${label}:\\s+(.*)$`, 'm').exec(output)?.[1];
}

describe('the anya-ha CLI against a running cluster', () => {
  let cluster: LocalCluster;
  let urls: string[];

  before(async () => {
    cluster = await LocalCluster.create({ nodes: 3, basePort, apiBasePort });
    cluster.startAll();
    urls = cluster.nodes.map((n) => n.apiUrl);
    await waitForFullCluster(cluster, leaderDeadlineMs);
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('kv put then kv get prints the value, through any node', () =>
    withLogsOnFailure(cluster, async () => {
      const { index: leader } = await waitForFullCluster(cluster, leaderDeadlineMs);
      const follower = (leader + 1) % 3;
      const put = await cliOk(urls[follower]!, 'kv', 'put', 'greeting', 'hello');
      assert.equal(field(put, 'key'), 'greeting');
      assert.equal(field(put, 'version'), '1');

      for (const url of urls) {
        const got = await cliOk(url, 'kv', 'get', 'greeting');
        assert.equal(field(got, 'value'), 'hello', got);
        assert.equal(field(got, 'version'), '1');
      }
      const json = JSON.parse(await cliOk(urls[leader]!, '--json', 'kv', 'get', 'greeting')) as {
        key: string;
        value: string;
        version: number;
      };
      assert.deepEqual([json.key, json.value, json.version], ['greeting', 'hello', 1]);
    }));

  it('kv get of a missing key exits 1 and names the error code', () =>
    withLogsOnFailure(cluster, async () => {
      const r = await cli(urls[0]!, 'kv', 'get', 'no-such-key');
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /HA_ERR_NOT_FOUND/);
    }));

  it('status names the leader, and --json status parses', () =>
    withLogsOnFailure(cluster, async () => {
      // The CLI's answers are compared with the cluster's agreed leader; if leadership moved
      // between the two (an election under heavy load), the round is taken again.
      await waitFor('a round of CLI status answers naming the agreed leader', leaderDeadlineMs, async () => {
        const { index: leader, term } = await waitForFullCluster(cluster, leaderDeadlineMs);
        const leaderId = cluster.nodes[leader]!.id;
        const texts = await Promise.all(urls.map((url) => cliOk(url, 'status')));
        const views = await Promise.all(
          urls.map(async (url) => JSON.parse(await cliOk(url, '--json', 'status')) as NodeStatusView),
        );
        if (views.some((v) => v.term !== term)) return null;
        for (const [i, text] of texts.entries()) {
          assert.equal(field(text, 'leader'), leaderId, text);
          assert.equal(field(text, 'role'), i === leader ? 'leader' : 'follower', text);
          assert.equal(field(text, 'term'), String(term), text);
          assert.equal(views[i]!.leaderId, leaderId);
          assert.equal(views[i]!.members.length, 3);
        }
        return true;
      });
    }));

  it('leader transfer --to moves leadership to the named node', () =>
    withLogsOnFailure(cluster, async () => {
      const { index: leader, term } = await waitForFullCluster(cluster, leaderDeadlineMs);
      const target = (leader + 2) % 3;
      const targetId = cluster.nodes[target]!.id;
      const out = await cliOk(urls[leader]!, 'leader', 'transfer', '--to', targetId);
      assert.equal(field(out, 'leader'), targetId, out);

      const now = await cluster.waitForLeader(leaderDeadlineMs);
      assert.equal(now.index, target);
      assert.ok(now.term > term);
      // The old leader's own view, through the CLI, follows.
      const view = await waitFor('the old leader to follow the new one', leaderDeadlineMs, async () => {
        const v = JSON.parse(await cliOk(urls[leader]!, '--json', 'status')) as NodeStatusView;
        return v.leaderId === targetId ? v : null;
      });
      assert.equal(view.role, 'follower');
    }));
});
