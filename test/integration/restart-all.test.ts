// Whole-cluster crash with real agent processes: every node is killed with SIGKILL at once, so
// nothing is flushed or closed cleanly, and the cluster restarts from its SQLite files alone. An
// acknowledged write was durable on a majority before its acknowledgement, so after the restart it
// must be there with the value and version it was acknowledged with, and so must a key's history.
//
// Ports 20200-20299: peers 20200-20202, APIs 20250-20252.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { LocalCluster } from '../../testkit/local-cluster.js';
import { putOnce, requestUntil, type RequestUntilOptions } from '../../testkit/wait.js';

const basePort = 20200;
const apiBasePort = 20250;
const leaderDeadlineMs = 20_000;
const keyCount = 200;
const rewrites = 6;
const concurrentWritersMax = 8;
const writeDeadlineMs = 20_000;

/** The URLs starting at position `k`, so that concurrent writers start on different nodes. */
const rotate = (urls: readonly string[], k: number): string[] =>
  urls.map((_, i) => urls[(i + k) % urls.length]!);

interface Ack {
  value: string;
  version: number;
  revision: number;
}

describe('every node is killed at once and restarted', () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.create({ nodes: 3, basePort, apiBasePort });
    cluster.startAll();
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('keeps every acknowledged write with its value and version, and the history of a rewritten key', () =>
    withLogsOnFailure(cluster, async () => {
      await cluster.waitForLeader(leaderDeadlineMs);
      const urls = cluster.nodes.map((n) => n.apiUrl);
      // Writes are spread over all nodes (followers forward through Raft). Each is a
      // compare-and-set retried until its outcome is known (putOnce), so that a request whose
      // answer was lost in a leader change can neither fail the test nor apply twice: every
      // recorded version and revision is exactly what the cluster acknowledged.
      const writeOpts = { deadlineMs: writeDeadlineMs, requestTimeoutMs: 2000 };

      const acked = new Map<string, Ack>();
      const keys = Array.from({ length: keyCount }, (_, i) => `key-${String(i).padStart(4, '0')}`);
      let next = 0;
      let confirmedByRead = 0;
      const writer = async (w: number): Promise<void> => {
        while (next < keys.length) {
          const key = keys[next++]!;
          const value = `value of ${key}`;
          const r = await putOnce(rotate(urls, w), key, value, 0, writeOpts);
          if (r.confirmedByRead) confirmedByRead++;
          acked.set(key, { value, version: r.version, revision: r.revision });
        }
      };
      await Promise.all(Array.from({ length: concurrentWritersMax }, (_, w) => writer(w)));
      assert.equal(acked.size, keyCount);

      const history: Ack[] = [];
      for (let v = 1; v <= rewrites; v++) {
        const value = `rewrite ${v}`;
        const r = await putOnce(rotate(urls, v), 'rewritten', value, v - 1, writeOpts);
        if (r.confirmedByRead) confirmedByRead++;
        history.push({ value, version: r.version, revision: r.revision });
      }
      assert.deepEqual(
        history.map((h) => h.version),
        Array.from({ length: rewrites }, (_, i) => i + 1),
      );
      if (confirmedByRead > 0) console.log(`${confirmedByRead} writes had lost answers, confirmed by a read`);

      // SIGKILL all three before waiting for any of them, so none sees the others go first.
      for (let i = 0; i < cluster.nodes.length; i++) cluster.signal(i, 'SIGKILL');
      const exits = await Promise.all(cluster.nodes.map((_, i) => cluster.waitExit(i)));
      assert.ok(
        exits.every((e) => e.signal === 'SIGKILL'),
        JSON.stringify(exits),
      );

      cluster.startAll();
      await cluster.waitForLeader(leaderDeadlineMs);

      // Linearizable reads, spread over all nodes; the first may wait for the new leader's no-op.
      // Reads change nothing, so they are retried through anything.
      const readOpts: RequestUntilOptions = {
        urls,
        deadlineMs: writeDeadlineMs,
        requestTimeoutMs: 2000,
        retryIndeterminate: true,
      };
      let n = 0;
      for (const [key, ack] of acked) {
        const r = await requestUntil('GET', `/v1/kv/${key}`, undefined, {
          ...readOpts,
          urls: [urls[n++ % 3]!],
        });
        const e = r.body as Ack & { key: string };
        assert.deepEqual(
          { key: e.key, value: e.value, version: e.version, revision: e.revision },
          { key, ...ack },
          `${key} after the restart`,
        );
      }
      const list = await requestUntil('GET', '/v1/kv?prefix=key-&limit=1000', undefined, readOpts);
      assert.equal((list.body as { items: unknown[] }).items.length, keyCount);

      const h = await requestUntil('GET', '/v1/kv/rewritten/history', undefined, readOpts);
      const items = (
        h.body as { items: { version: number; value: string | null; revision: number; deleted: boolean }[] }
      ).items;
      assert.deepEqual(
        items.map((i) => ({ value: i.value, version: i.version, revision: i.revision, deleted: i.deleted })),
        history.map((a) => ({ ...a, deleted: false })),
      );

      // And the restarted cluster takes writes again, continuing the key's versions.
      const more = await putOnce(urls, 'rewritten', 'after restart', rewrites, writeOpts);
      assert.equal(more.version, rewrites + 1);
    }));
});
