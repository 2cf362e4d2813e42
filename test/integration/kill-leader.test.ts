// Crash failover with real agent processes: the leader is killed with SIGKILL (no hand-over, no
// clean close of its sockets or storage), a survivor takes over with every acknowledged write, and
// the killed node later rejoins and catches up from the log.
//
// Ports 20000-20099: peers 20000-20002, APIs 20050-20052.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { NodeStatusView } from '../../src/api/backend.js';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { LocalCluster, httpJson } from '../../testkit/local-cluster.js';
import { putOnce, requestUntil, waitFor, waitForFullCluster } from '../../testkit/wait.js';

const basePort = 20000;
const apiBasePort = 20050;
const leaderDeadlineMs = 20_000;
const catchUpDeadlineMs = 20_000;
/** Short, so that a request stuck on the dead leader is abandoned quickly and another node tried. */
const failoverRequestTimeoutMs = 200;
/** Writes whose outcome must be known exactly (putOnce): retried through refusals and timeouts. */
const writeOpts = { deadlineMs: 20_000, requestTimeoutMs: 2000 };

describe('the leader is killed with SIGKILL', () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.create({ nodes: 3, basePort, apiBasePort });
    cluster.startAll();
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('a survivor leads with every acknowledged write, and the killed node catches up on restart', () =>
    withLogsOnFailure(cluster, async () => {
      const first = await waitForFullCluster(cluster, leaderDeadlineMs);
      const urls = cluster.nodes.map((n) => n.apiUrl);
      const leaderUrl = urls[first.index]!;

      // An acknowledged write before the crash, applied exactly once (version 1).
      const ack = await putOnce([leaderUrl], 'k', 'v1', 0, writeOpts);
      assert.equal(ack.version, 1);

      const survivors = [0, 1, 2].filter((i) => i !== first.index);
      const survivorUrls = survivors.map((i) => urls[i]!);

      // Crash the leader, then write in a loop against the survivors until one acknowledges.
      const killedAtMs = performance.now();
      cluster.signal(first.index, 'SIGKILL');
      const probe = await requestUntil(
        'PUT',
        '/v1/kv/failover-probe',
        { value: 'after-kill' },
        {
          urls: survivorUrls,
          deadlineMs: leaderDeadlineMs,
          requestTimeoutMs: failoverRequestTimeoutMs,
          retryIndeterminate: true,
        },
      );
      const firstAckMs = performance.now() - killedAtMs;
      const exit = await cluster.waitExit(first.index);
      assert.equal(exit.signal, 'SIGKILL');
      console.log(
        `kill-9 -> first acknowledged write: ${firstAckMs.toFixed(0)} ms ` +
          `(${probe.attempts} attempts of at most ${failoverRequestTimeoutMs} ms, via ${probe.url})`,
      );

      const second = await cluster.waitForLeader(leaderDeadlineMs, [first.index]);
      assert.notEqual(second.index, first.index);
      assert.ok(second.term > first.term, `new term ${second.term} after ${first.term}`);

      // The acknowledged write survived: a linearizable read on the new leader sees it. (Reads
      // are retried: the new leader answers once its first entry of the term has committed.)
      const read = await requestUntil('GET', '/v1/kv/k', undefined, {
        urls: [urls[second.index]!],
        deadlineMs: leaderDeadlineMs,
        requestTimeoutMs: 2000,
        retryIndeterminate: true,
      });
      const entry = read.body as { value: string; version: number };
      assert.deepEqual({ value: entry.value, version: entry.version }, { value: 'v1', version: 1 });

      // Writes succeed through every survivor, leader and follower alike.
      for (const i of survivors) {
        const r = await putOnce([urls[i]!], `via-${cluster.nodes[i]!.id}`, 'ok', 0, writeOpts);
        assert.equal(r.version, 1);
      }
      const latest = await putOnce(survivorUrls, 'k', 'v2-while-down', 1, writeOpts);
      assert.equal(latest.version, 2);

      // Restart the killed node: it rejoins as a follower and catches up from the log.
      cluster.start(first.index);
      const restartedUrl = urls[first.index]!;
      const stale = await waitFor(
        'the restarted node to serve the latest value from its own copy',
        catchUpDeadlineMs,
        async () => {
          const r = await httpJson(`${restartedUrl}/v1/kv/k?consistency=stale`, 'GET', undefined, 500);
          return r.status === 200 && (r.body as { value: string }).value === 'v2-while-down' ? r.body : null;
        },
      );
      assert.equal((stale as { version: number }).version, 2);

      const leaderStatus = await cluster.status(second.index);
      assert.ok(leaderStatus);
      const target = leaderStatus.commitIndex;
      const caughtUp = await waitFor<NodeStatusView>(
        `appliedIndex of ${cluster.nodes[first.index]!.id} to reach the leader's commit ${target}`,
        catchUpDeadlineMs,
        async () => {
          const s = await cluster.status(first.index);
          return s !== null && s.appliedIndex >= target ? s : null;
        },
      );
      assert.notEqual(caughtUp.leaderId, null, 'the restarted node knows the leader');
    }));
});
