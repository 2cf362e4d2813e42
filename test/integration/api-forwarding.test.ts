// The HTTP API of real agent processes: any node serves any request (a follower forwards writes
// and confirms linearizable reads through Raft, never through HTTP), leader health and metrics
// tell the nodes' roles apart, and refused requests change nothing.
//
// Ports 20300-20399: peers 20300-20302, APIs 20350-20352.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NodeStatusView } from '../../src/api/backend.js';
import { withLogsOnFailure } from '../../testkit/cluster-logs.js';
import { LocalCluster, httpJson } from '../../testkit/local-cluster.js';
import {
  errorCode,
  metricValue,
  putOnce,
  requestUntil,
  waitFor,
  waitForFullCluster,
} from '../../testkit/wait.js';

const basePort = 20300;
const apiBasePort = 20350;
const leaderDeadlineMs = 20_000;
const settleDeadlineMs = 10_000;
const requestTimeoutMs = 2000;
const writeOpts = { deadlineMs: 20_000, requestTimeoutMs };

/** A request with a raw body, for what httpJson cannot send (malformed JSON). */
async function rawRequest(
  url: string,
  method: string,
  body: string,
  contentType = 'application/json',
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method,
    body,
    headers: { 'content-type': contentType },
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: res.status, body: await res.json() };
}

describe('the HTTP API of a 3-node cluster', () => {
  let cluster: LocalCluster;
  let urls: string[];
  let leader: number;
  let follower: number;

  before(async () => {
    cluster = await LocalCluster.create({ nodes: 3, basePort, apiBasePort });
    cluster.startAll();
    urls = cluster.nodes.map((n) => n.apiUrl);
    leader = (await waitForFullCluster(cluster, leaderDeadlineMs)).index;
    follower = (leader + 1) % 3;
  });

  after(async () => {
    await cluster?.destroy();
  });

  /**
   * Every node's status, taken twice around `probe`; null unless the leader and term stayed the
   * same throughout and a majority agree on them, so that the probe saw one stable cluster.
   */
  async function stableRound<T>(
    probe: () => Promise<T>,
  ): Promise<{ views: NodeStatusView[]; got: T } | null> {
    const round = () => Promise.all(cluster.nodes.map((_, i) => cluster.status(i, requestTimeoutMs)));
    const before = await round();
    const got = await probe();
    const after = await round();
    if (before.some((v) => v === null) || after.some((v) => v === null)) return null;
    const key = (vs: (NodeStatusView | null)[]) =>
      vs.map((v) => `${v!.role}/${v!.term}/${v!.leaderId}`).join();
    if (key(before) !== key(after)) return null;
    if (before.filter((v) => v!.role === 'leader').length !== 1) return null;
    return { views: after as NodeStatusView[], got };
  }

  it('a follower forwards PUT and DELETE and serves a linearizable GET', () =>
    withLogsOnFailure(cluster, async () => {
      const put = await putOnce([urls[follower]!], 'fwd', 'from a follower', 0, writeOpts);
      assert.equal(put.version, 1);

      // The write went through the log: the leader's linearizable read sees it...
      const onLeader = await httpJson(`${urls[leader]}/v1/kv/fwd`, 'GET', undefined, requestTimeoutMs);
      assert.equal(onLeader.status, 200, JSON.stringify(onLeader.body));
      assert.deepEqual(onLeader.body, {
        key: 'fwd',
        value: 'from a follower',
        version: 1,
        revision: put.revision,
      });
      // ...and so does the follower's, written now through the leader.
      const again = await putOnce([urls[leader]!], 'fwd', 'from the leader', 1, writeOpts);
      const onFollower = await httpJson(`${urls[follower]}/v1/kv/fwd`, 'GET', undefined, requestTimeoutMs);
      assert.equal(onFollower.status, 200, JSON.stringify(onFollower.body));
      assert.deepEqual(onFollower.body, {
        key: 'fwd',
        value: 'from the leader',
        version: 2,
        revision: again.revision,
      });

      const del = await httpJson(`${urls[follower]}/v1/kv/fwd`, 'DELETE', undefined, requestTimeoutMs);
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.equal((del.body as { revision: number }).revision, again.revision + 1);
      for (const url of urls) {
        const gone = await httpJson(`${url}/v1/kv/fwd`, 'GET', undefined, requestTimeoutMs);
        assert.equal(gone.status, 404, `${url}: ${JSON.stringify(gone.body)}`);
        assert.equal(errorCode(gone.body), 'HA_ERR_NOT_FOUND');
      }
      const history = await httpJson(
        `${urls[follower]}/v1/kv/fwd/history`,
        'GET',
        undefined,
        requestTimeoutMs,
      );
      assert.equal(history.status, 200);
      assert.deepEqual(
        (history.body as { items: { value: string | null; deleted: boolean }[] }).items.map((h) => [
          h.value,
          h.deleted,
        ]),
        [
          ['from a follower', false],
          ['from the leader', false],
          [null, true],
        ],
      );
    }));

  it('/v1/health/leader answers 200 on the leader only', () =>
    withLogsOnFailure(cluster, async () => {
      const { views, got } = await waitFor('a stable round of health checks', settleDeadlineMs, () =>
        stableRound(() =>
          Promise.all(urls.map((u) => httpJson(`${u}/v1/health/leader`, 'GET', undefined, requestTimeoutMs))),
        ),
      );
      for (let i = 0; i < urls.length; i++) {
        const isLeader = views[i]!.role === 'leader';
        assert.equal(got[i]!.status, isLeader ? 200 : 503, `${views[i]!.nodeId} (${views[i]!.role})`);
        assert.equal((got[i]!.body as { leader: boolean }).leader, isLeader);
      }
      for (const u of urls) {
        const h = await httpJson(`${u}/health`, 'GET', undefined, requestTimeoutMs);
        assert.equal(h.status, 200, 'every live node is healthy');
      }
    }));

  it('/metrics on each node reports its term and role, as /v1/status does', () =>
    withLogsOnFailure(cluster, async () => {
      const { views, got } = await waitFor('a stable round of metrics scrapes', settleDeadlineMs, () =>
        stableRound(() =>
          Promise.all(urls.map((u) => httpJson(`${u}/metrics`, 'GET', undefined, requestTimeoutMs))),
        ),
      );
      for (let i = 0; i < urls.length; i++) {
        const v = views[i]!;
        assert.equal(got[i]!.status, 200);
        const text = got[i]!.body as string;
        assert.equal(typeof text, 'string');
        assert.equal(metricValue(text, 'anya_ha_term', { node: v.nodeId }), v.term, `${v.nodeId} term`);
        for (const role of ['leader', 'follower', 'candidate']) {
          const expected = role === v.role ? 1 : 0;
          assert.equal(
            metricValue(text, 'anya_ha_role', { node: v.nodeId, role }),
            expected,
            `${v.nodeId} ${role}`,
          );
        }
      }
    }));

  it('a compare-and-set on a stale version is refused with 409 and the current version', () =>
    withLogsOnFailure(cluster, async () => {
      await putOnce(urls, 'cas', 'one', 0, writeOpts);
      const current = await putOnce(urls, 'cas', 'two', 1, writeOpts);
      for (const url of [urls[follower]!, urls[leader]!]) {
        const r = await httpJson(
          `${url}/v1/kv/cas`,
          'PUT',
          { value: 'clobber', ifVersion: 0 },
          requestTimeoutMs,
        );
        assert.equal(r.status, 409, JSON.stringify(r.body));
        assert.equal(errorCode(r.body), 'HA_ERR_VERSION_MISMATCH');
        assert.equal((r.body as { error: { currentVersion: number } }).error.currentVersion, 2);
      }
      const read = await httpJson(`${urls[leader]}/v1/kv/cas`, 'GET', undefined, requestTimeoutMs);
      assert.deepEqual(read.body, { key: 'cas', value: 'two', version: 2, revision: current.revision });
    }));

  it('a malformed JSON body is refused with 400 and changes nothing', () =>
    withLogsOnFailure(cluster, async () => {
      const first = await putOnce(urls, 'json', 'kept', 0, writeOpts);
      for (const url of [urls[follower]!, urls[leader]!]) {
        for (const key of ['json', 'never-created']) {
          const r = await rawRequest(`${url}/v1/kv/${key}`, 'PUT', '{"value": "lost"');
          assert.equal(r.status, 400, JSON.stringify(r.body));
          assert.equal(errorCode(r.body), 'HA_ERR_BAD_REQUEST');
        }
      }
      const read = await requestUntil('GET', '/v1/kv/json', undefined, {
        urls,
        deadlineMs: settleDeadlineMs,
        requestTimeoutMs,
        retryIndeterminate: true,
      });
      assert.deepEqual(read.body, { key: 'json', value: 'kept', version: 1, revision: first.revision });
      const absent = await httpJson(
        `${urls[leader]}/v1/kv/never-created`,
        'GET',
        undefined,
        requestTimeoutMs,
      );
      assert.equal(absent.status, 404);
      // The global revision did not move either: the next write takes the very next one.
      const next = await putOnce(urls, 'json-next', 'x', 0, writeOpts);
      assert.equal(next.revision, first.revision + 1);
    }));
});
