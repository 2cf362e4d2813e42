// Pieces shared by the workloads: waiting for a healthy cluster, the leader-change monitor, and
// the set of live clusters that an interrupt must tear down.
import { performance } from 'node:perf_hooks';
import { HttpClient } from './http-client.js';
import { agreedLeader, sleep, type BenchCluster } from './target.js';
import { progress } from './stats.js';

/** Clusters that exist right now; main destroys them on SIGINT/SIGTERM. */
export const liveClusters = new Set<BenchCluster>();

export const statusTimeoutMs = 150;
const healthyPollMs = 50;

/**
 * Resolves with the leader's index once every member runs, answers, follows the same leader in
 * the same term, and a write through the leader succeeds.
 */
export async function waitHealthy(
  cluster: BenchCluster,
  client: HttpClient,
  deadlineMs: number,
): Promise<number> {
  const until = performance.now() + deadlineMs;
  const all = Array.from({ length: cluster.size }, (_, i) => i);
  while (performance.now() < until) {
    const exited = all.filter((i) => !cluster.isRunning(i));
    if (exited.length > 0) {
      throw new Error(
        `${cluster.system}: member(s) ${exited.map((i) => i + 1).join(', ')} exited; logs in ${cluster.dir}:\n` +
          cluster.logProblems().join('\n'),
      );
    }
    const views = await cluster.views(all, statusTimeoutMs * 2);
    const leader = agreedLeader(views, cluster.size);
    if (
      leader &&
      views.every((v) => v && v.term === leader.term && v.leader === views[leader.index]!.leader)
    ) {
      const w = cluster.writeRequest('bench-health', 'ok');
      try {
        const reply = await client.request(cluster.endpoint(leader.index), w.method, w.path, w.body, 1000);
        if (cluster.isWriteOk(reply)) return leader.index;
      } catch {
        // not yet
      }
    }
    await sleep(healthyPollMs);
  }
  throw new Error(
    `${cluster.system}: cluster not healthy within ${deadlineMs} ms; data and logs in ${cluster.dir}`,
  );
}

/**
 * Polls every member's view of the leader and counts the distinct (term, leader) pairs seen. A
 * leadership shorter than the poll interval can be missed; the count is a floor.
 */
export class LeaderMonitor {
  static readonly pollMs = 50;
  private readonly seen = new Set<string>();
  /** Members not to poll (a stopped process would only time out). */
  readonly skip = new Set<number>();
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly cluster: BenchCluster) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const among = Array.from({ length: this.cluster.size }, (_, i) => i).filter((i) => !this.skip.has(i));
        for (const v of await this.cluster.views(among, statusTimeoutMs)) {
          if (v && v.isLeader && v.leader) this.seen.add(`${v.term}/${v.leader}`);
        }
        await sleep(LeaderMonitor.pollMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Leaderships seen minus the first one. */
  changes(): number {
    return Math.max(0, this.seen.size - 1);
  }
}

export async function startCluster(cluster: BenchCluster, client: HttpClient): Promise<number> {
  liveClusters.add(cluster);
  progress(`${cluster.system}: starting ${cluster.size} members (${cluster.dir})`);
  cluster.startAll();
  const leader = await waitHealthy(cluster, client, 60_000);
  progress(`${cluster.system}: healthy, leader is member ${leader + 1}`);
  return leader;
}

export async function stopCluster(cluster: BenchCluster): Promise<string[]> {
  const problems = cluster.logProblems();
  await cluster.destroy();
  liveClusters.delete(cluster);
  return problems;
}
