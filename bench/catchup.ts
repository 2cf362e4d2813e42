// Catch-up of a wiped follower: fill a 3-node cluster to N MiB (64 KiB values on distinct keys,
// written through every node), SIGKILL one follower, remove its data directory, restart it, and
// time how long it takes to apply what the leader had committed at the restart, while a writer
// keeps putting one small key every 20 ms. Reported: the time to catch up, leader changes during
// it, the peak RSS of every node (sampled every 100 ms) against the state size, and the longest
// event-loop stall on the leader (its anya_ha_nodejs_eventloop_lag_max_seconds, which prom-client
// takes from perf_hooks.monitorEventLoopDelay and resets at every scrape; the benchmark scrapes
// it every second and keeps the maximum).
import { performance } from 'node:perf_hooks';
import { fill, wipe } from '../testkit/catch-up.js';
import { httpJson } from '../testkit/local-cluster.js';
import type { AnyaCluster } from './anya.js';
import { LeaderMonitor, startCluster, stopCluster } from './common.js';
import { HttpClient } from './http-client.js';
import { rssMiB } from './idle.js';
import { progress } from './stats.js';
import { sleep } from './target.js';

export const mibMax = 4096;
const valueBytes = 64 * 1024;
const rssSampleMs = 100;
const lagScrapeMs = 1000;
const catchUpDeadlineMs = 30 * 60 * 1000;

export interface CatchupResult {
  readonly mib: number;
  readonly keys: number;
  readonly fillSeconds: number;
  readonly snapshotBytes: number;
  readonly catchUpMs: number;
  readonly targetIndex: number;
  readonly leaderChanges: number;
  readonly rssMiBMax: readonly number[];
  readonly leaderLagMaxMs: number;
  readonly writesOk: number;
  readonly writesFailed: number;
  readonly logProblems: readonly string[];
}

/** A gauge's value from a /metrics text, or NaN. */
function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function metricsText(url: string): Promise<string> {
  const r = await httpJson(`${url}/metrics`, 'GET', undefined, 2000).catch(() => null);
  return typeof r?.body === 'string' ? r.body : '';
}

export async function runCatchup(cluster: AnyaCluster, mib: number): Promise<CatchupResult> {
  const local = cluster.local;
  const client = new HttpClient(1);
  let leader: number;
  try {
    leader = await startCluster(cluster, client);
  } finally {
    client.close();
  }
  progress(`anya-ha: filling to ${mib} MiB (${valueBytes / 1024} KiB values)`);
  const f0 = performance.now();
  const keys = await fill(local, {
    bytes: mib * 1024 * 1024,
    valueBytes,
    concurrency: 16,
    requestTimeoutMs: 10_000,
    deadlineMs: catchUpDeadlineMs,
  });
  const fillSeconds = (performance.now() - f0) / 1000;
  leader = (await local.waitForLeader(20_000)).index;
  // Let the last compaction finish so that the follower gets a snapshot of the whole state.
  await sleep(3000);
  const leaderUrl = local.nodes[leader]!.apiUrl;
  const snapshotBytes = gauge(await metricsText(leaderUrl), 'anya_ha_snapshot_bytes');
  const follower = [0, 1, 2].find((i) => i !== leader)!;

  const monitor = new LeaderMonitor(cluster);
  monitor.start();
  const rssMax = [0, 0, 0];
  let leaderLagMax = 0;
  let sampling = true;
  const sampler = (async () => {
    let lastScrape = 0;
    while (sampling) {
      for (let i = 0; i < 3; i++) {
        const pid = cluster.pid(i);
        if (pid !== undefined && cluster.isRunning(i)) {
          const rss = rssMiB(pid);
          if (Number.isFinite(rss)) rssMax[i] = Math.max(rssMax[i]!, rss);
        }
      }
      if (performance.now() - lastScrape >= lagScrapeMs) {
        lastScrape = performance.now();
        const lag = gauge(await metricsText(leaderUrl), 'anya_ha_nodejs_eventloop_lag_max_seconds');
        if (Number.isFinite(lag)) leaderLagMax = Math.max(leaderLagMax, lag * 1000);
      }
      await sleep(rssSampleMs);
    }
  })();
  let writing = true;
  let writesOk = 0;
  let writesFailed = 0;
  const writer = (async () => {
    for (let n = 0; writing; n++) {
      const url = `${leaderUrl}/v1/kv/${encodeURIComponent(`catchup/${n}`)}`;
      const r = await httpJson(url, 'PUT', { value: 'x' }, 5000).catch(() => null);
      if (r?.status === 200) writesOk++;
      else writesFailed++;
      await sleep(20);
    }
  })();
  // Start the lag window now: the scrape resets the leader's histogram.
  await metricsText(leaderUrl);
  leaderLagMax = 0;
  progress(`anya-ha: wiping member ${follower + 1} and restarting it`);
  monitor.skip.add(follower);
  await wipe(local, follower);
  rssMax[follower] = 0;
  const targetIndex = (await local.status(leader, 2000))?.commitIndex ?? 0;
  const t0 = performance.now();
  local.start(follower);
  monitor.skip.delete(follower);
  let catchUpMs = Number.NaN;
  while (performance.now() - t0 < catchUpDeadlineMs) {
    const st = await local.status(follower, 1000);
    if (st && st.appliedIndex >= targetIndex) {
      catchUpMs = performance.now() - t0;
      break;
    }
    await sleep(50);
  }
  writing = false;
  await writer;
  sampling = false;
  await sampler;
  await monitor.stop();
  const logProblems = await stopCluster(cluster);
  return {
    mib,
    keys,
    fillSeconds,
    snapshotBytes,
    catchUpMs,
    targetIndex,
    leaderChanges: monitor.changes(),
    rssMiBMax: rssMax,
    leaderLagMaxMs: leaderLagMax,
    writesOk,
    writesFailed,
    logProblems,
  };
}
