// Write throughput and latency: closed-loop clients, each with one PUT of a valueBytes value open
// at a time, all sending to the leader over keep-alive connections. A warm-up second is not
// counted. Errors (non-200 or transport failures) are counted and not retried.
import { performance } from 'node:perf_hooks';
import { HttpClient } from './http-client.js';
import { LeaderMonitor, startCluster, statusTimeoutMs, stopCluster } from './common.js';
import { progress, summarize, type Summary } from './stats.js';
import { agreedLeader, ErrorTally, sleep, type BenchCluster } from './target.js';

export const clientsMax = 1024;
export const secondsMax = 600;
const valueBytes = 256;
const warmupMs = 1000;
const writeTimeoutMs = 5000;
/** Latency samples kept per run; beyond this only counts grow. */
const samplesMax = 5_000_000;
/** Keys each client writes in turn when --keys is not given. */
export const keysPerClientDefault = 100;
/** Pause before asking again when no leader was found. */
const leaderRetryMs = 20;

export interface WriteResult {
  readonly system: string;
  readonly clients: number;
  readonly seconds: number;
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly latency: Summary;
  readonly errors: ErrorTally;
  /** Leaderships seen by the status poll during the run, minus the first. */
  readonly leaderChanges: number;
  readonly logProblems: readonly string[];
}

export async function runWrite(
  cluster: BenchCluster,
  clients: number,
  seconds: number,
  keys: number = clients * keysPerClientDefault,
): Promise<WriteResult> {
  // Client c writes keys c, c + clients, c + 2 * clients, ... below `keys`, in turn.
  const keysPerClient = Math.max(1, Math.ceil(keys / clients));
  const client = new HttpClient(clients);
  const value = 'v'.repeat(valueBytes);
  const latencies: number[] = [];
  let ops = 0;
  const errors = new ErrorTally();
  let measuring = false;
  let running = true;
  let measuredMs = 0;
  const monitor = new LeaderMonitor(cluster);
  try {
    const leader = await startCluster(cluster, client);
    monitor.start();
    let to = cluster.endpoint(leader);
    let toIndex = leader;
    const putDirect = cluster.putDirect;
    // After a failed write, clients look for the leader again (one lookup shared by all of them),
    // as a client that follows the leader would.
    let lookup: Promise<void> | null = null;
    const all = Array.from({ length: cluster.size }, (_, i) => i);
    const findLeader = (): Promise<void> =>
      (lookup ??= (async () => {
        const found = agreedLeader(await cluster.views(all, statusTimeoutMs * 2), cluster.size);
        if (found) {
          to = cluster.endpoint(found.index);
          toIndex = found.index;
        } else await sleep(leaderRetryMs);
      })().finally(() => (lookup = null)));
    const worker = async (c: number): Promise<void> => {
      for (let seq = 0; running; seq++) {
        const key = `write-${(c + clients * (seq % keysPerClient)) % Math.max(keys, clients)}`;
        const start = performance.now();
        const counted = measuring;
        try {
          if (putDirect !== undefined) {
            await putDirect(toIndex, key, value, writeTimeoutMs);
            if (counted && measuring) {
              ops++;
              if (latencies.length < samplesMax) latencies.push(performance.now() - start);
            }
            continue;
          }
          const w = cluster.writeRequest(key, value);
          const reply = await client.request(to, w.method, w.path, w.body, writeTimeoutMs);
          const ok = cluster.isWriteOk(reply);
          if (!ok) await findLeader();
          if (!counted || !measuring) continue;
          if (ok) {
            ops++;
            if (latencies.length < samplesMax) latencies.push(performance.now() - start);
          } else errors.reply(reply);
        } catch (err) {
          if (counted && measuring) errors.transport(err);
          await findLeader();
        }
      }
    };
    progress(`${cluster.system}: ${clients} client(s) writing to member ${leader + 1} for ${seconds} s`);
    const workers = Array.from({ length: clients }, (_, c) => worker(c));
    await sleep(warmupMs);
    measuring = true;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    measuring = false;
    measuredMs = performance.now() - t0;
    running = false;
    await Promise.all(workers);
  } finally {
    running = false;
    await monitor.stop();
    client.close();
  }
  const logProblems = await stopCluster(cluster);
  return {
    system: cluster.system,
    clients,
    seconds,
    ops,
    opsPerSecond: ops / (measuredMs / 1000),
    latency: summarize(latencies),
    errors,
    leaderChanges: monitor.changes(),
    logProblems,
  };
}
