// Planned stop with real agent processes: SIGTERM makes a leader hand leadership to an up-to-date
// follower (TimeoutNow, thesis §3.10) before it exits, so the successor wins the very next term
// without waiting out an election timeout, and no other election follows.
//
// Ports 20100-20199: peers 20100-20102, APIs 20150-20152.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { LocalCluster, httpJson } from '../../testkit/local-cluster.js';
import { putOnce, requestUntil, waitFor, waitForFullCluster } from '../../testkit/wait.js';

const basePort = 20100;
const apiBasePort = 20150;
const leaderDeadlineMs = 20_000;
/** Poll often: the hand-over itself takes a few milliseconds. */
const handoverPollIntervalMs = 5;
/** Writes whose outcome must be known exactly (putOnce): retried through refusals and timeouts. */
const writeOpts = { deadlineMs: 20_000, requestTimeoutMs: 2000 };

describe('the leader receives SIGTERM', () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.create({ nodes: 3, basePort, apiBasePort });
    cluster.startAll();
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('hands leadership over in term + 1, exits 0, and writes continue', () =>
    withLogsOnFailure(cluster, async () => {
      await cluster.waitForLeader(leaderDeadlineMs);
      const urls = cluster.nodes.map((n) => n.apiUrl);
      // A committed write first, so that the successor must hold it to be chosen.
      await putOnce(urls, 'before', 'x', 0, writeOpts);
      // The leader now and its term: nothing in a healthy cluster moves them until the signal.
      const old = await waitForFullCluster(cluster, leaderDeadlineMs);
      const oldTerm = old.term;

      const survivors = [0, 1, 2].filter((i) => i !== old.index);
      const signalledAtMs = performance.now();
      cluster.signal(old.index, 'SIGTERM');

      // The first survivor that reports itself leader, polled tightly to time the hand-over.
      const successor = await waitFor(
        'a survivor to become leader',
        leaderDeadlineMs,
        async () => {
          const views = await Promise.all(survivors.map((i) => cluster.status(i, 500)));
          const i = views.findIndex((v) => v?.role === 'leader');
          return i === -1 ? null : { index: survivors[i]!, term: views[i]!.term };
        },
        handoverPollIntervalMs,
      );
      const handoverMs = performance.now() - signalledAtMs;

      const exit = await cluster.waitExit(old.index);
      assert.deepEqual(exit, { code: 0, signal: null }, 'a SIGTERM stop exits with code 0');

      assert.equal(successor.term, oldTerm + 1, 'the successor won the next term: a transfer, not elections');
      const agreed = await cluster.waitForLeader(leaderDeadlineMs, [old.index]);
      assert.deepEqual(agreed, successor, 'both survivors agree on the successor, still in term + 1');

      const firstWriteStartMs = performance.now();
      const after = await requestUntil(
        'PUT',
        '/v1/kv/after',
        { value: 'y' },
        {
          urls: survivors.map((i) => urls[i]!),
          deadlineMs: 10_000,
          requestTimeoutMs: 2000,
          retryIndeterminate: true,
        },
      );
      console.log(
        `SIGTERM -> successor leads: ${handoverMs.toFixed(0)} ms (term ${oldTerm} -> ${successor.term}); ` +
          `next write acknowledged ${(performance.now() - firstWriteStartMs).toFixed(0)} ms later`,
      );
      assert.equal(after.status, 200);

      // Writes continue through both survivors, and the pre-stop write is still there.
      for (const i of survivors) {
        const r = await putOnce([urls[i]!], `via-${cluster.nodes[i]!.id}`, 'ok', 0, writeOpts);
        assert.equal(r.version, 1);
      }
      const read = await httpJson(`${urls[successor.index]}/v1/kv/before`);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.equal((read.body as { value: string }).value, 'x');
    }));
});
