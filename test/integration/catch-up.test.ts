// A follower whose data directory is wiped catches up from a state larger than one transport
// frame (16 MiB): the leader sends its snapshot in chunks while the cluster keeps taking writes.
// Then a damaged snapshot file on that follower is refused at start (HA_ERR_STORAGE_CORRUPT,
// naming the file), and once the operator removes the directory the node fetches it again.
//
// Ports 20500-20599: peers 20500-20502, APIs 20550-20552.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fill, fillKey, fillValue, wipe } from '../../testkit/catch-up.js';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { httpJson, LocalCluster } from '../../testkit/local-cluster.js';
import { waitFor } from '../../testkit/wait.js';

const basePort = 20500;
const apiBasePort = 20550;
const stateBytes = 40 * 1024 * 1024;
const valueBytes = 64 * 1024;
const frameBytesMax = 16 * 1024 * 1024;
const catchUpDeadlineMs = 120_000;

describe('a wiped follower catches up from a state larger than a frame', () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.create({
      nodes: 3,
      basePort,
      apiBasePort,
      extraConfig: 'snapshotEntries: 200',
    });
    cluster.startAll();
  });

  after(async () => {
    await cluster?.destroy();
  });

  const snapDir = (i: number): string => join(cluster.dir, cluster.nodes[i]!.id, 'data', 'raft.db.snap');
  const snapFiles = (i: number): string[] => {
    try {
      return readdirSync(snapDir(i)).filter((n) => n.endsWith('.snap'));
    } catch {
      return [];
    }
  };

  /** Waits until node i has applied everything the leader had committed when asked. */
  async function caughtUp(i: number): Promise<void> {
    const leader = await cluster.waitForLeader(20_000);
    const target = (await cluster.status(leader.index))!.commitIndex;
    await waitFor(
      `node ${i + 1} to apply index ${target}`,
      catchUpDeadlineMs,
      async () => {
        const st = await cluster.status(i, 2000);
        return st !== null && st.appliedIndex >= target;
      },
      200,
    );
  }

  /** A few keys read through node i, compared with what was written. */
  async function checkReads(i: number, count: number): Promise<void> {
    for (const k of [0, 1, Math.floor(count / 2), count - 2, count - 1]) {
      const r = await httpJson(
        `${cluster.nodes[i]!.apiUrl}/v1/kv/${encodeURIComponent(fillKey(k))}`,
        'GET',
        undefined,
        5000,
      );
      assert.equal(
        r.status,
        200,
        `GET ${fillKey(k)} via node ${i + 1}: ${JSON.stringify(r.body).slice(0, 200)}`,
      );
      assert.equal((r.body as { value: string }).value, fillValue(k, valueBytes), fillKey(k));
    }
  }

  it('gets the snapshot in chunks while writes go on, and serves the same data', () =>
    withLogsOnFailure(cluster, async () => {
      await cluster.waitForLeader(20_000);
      const count = await fill(cluster, {
        bytes: stateBytes,
        valueBytes,
        concurrency: 8,
        requestTimeoutMs: 5000,
        deadlineMs: 180_000,
      });
      const { index: leader } = await cluster.waitForLeader(20_000);
      await waitFor('a snapshot on the leader larger than a frame', 60_000, () =>
        snapFiles(leader).some((n) => statSync(join(snapDir(leader), n)).size > frameBytesMax),
      );
      const follower = [0, 1, 2].find((i) => i !== leader)!;
      // Writes go on through the wipe, the restart and the catch-up.
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          const url = `${cluster.nodes[leader]!.apiUrl}/v1/kv/${encodeURIComponent(`during/${written}`)}`;
          const r = await httpJson(url, 'PUT', { value: 'x' }, 5000).catch(() => null);
          if (r?.status === 200) written++;
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      try {
        await waitFor('writes before the wipe', 20_000, () => written >= 3);
        await wipe(cluster, follower);
        cluster.start(follower);
        await caughtUp(follower);
        const before = written;
        await waitFor('writes after the catch-up', 20_000, () => written >= before + 3);
      } finally {
        writing = false;
        await writer;
      }
      assert.ok(snapFiles(follower).length === 1, 'the follower stored the snapshot it received');
      await checkReads(follower, count);
      const lastKey = encodeURIComponent(`during/${written - 1}`);
      const last = await httpJson(
        `${cluster.nodes[follower]!.apiUrl}/v1/kv/${lastKey}`,
        'GET',
        undefined,
        5000,
      );
      assert.equal(last.status, 200, 'the last write, made after the catch-up, is on the follower too');

      // A damaged snapshot file: refused at start, naming the file.
      cluster.signal(follower, 'SIGTERM');
      await cluster.waitExit(follower);
      const file = join(snapDir(follower), snapFiles(follower)[0]!);
      const bytes = readFileSync(file);
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      writeFileSync(file, bytes);
      const logBefore = readFileSync(cluster.nodes[follower]!.logPath, 'utf8').length;
      cluster.start(follower);
      const exit = await cluster.waitExit(follower, 30_000);
      assert.ok(exit.code !== 0, `the agent refuses to start (exit ${exit.code}, signal ${exit.signal})`);
      const log = readFileSync(cluster.nodes[follower]!.logPath, 'utf8').slice(logBefore);
      assert.match(log, /HA_ERR_STORAGE_CORRUPT/);
      assert.ok(log.includes(file), `the log names ${file}`);
      // The operator removes the directory; the node fetches the snapshot again.
      await wipe(cluster, follower).catch(() => {});
      cluster.start(follower);
      await caughtUp(follower);
      await checkReads(follower, count);
    }));
});
