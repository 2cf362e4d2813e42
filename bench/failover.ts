// Failover: how long writes are unavailable when the leader fails. A client writes open-loop (a
// new PUT every writeIntervalMs to the members in turn, whatever happened to the earlier ones;
// each with a short deadline), the benchmark fails the leader, and the figure for a trial is the
// time from the fault to the first acknowledgement of a write issued after the fault. The old
// leader cannot acknowledge such a write: it is dead, frozen, cut off from the quorum, or (SIGTERM)
// refusing proposals while it hands leadership over, so the ack comes from its successor.
import { performance } from 'node:perf_hooks';
import { HttpClient } from './http-client.js';
import { LeaderMonitor, startCluster, stopCluster, waitHealthy } from './common.js';
import { cut, heal } from './netns.js';
import { progress, summarize, type Summary } from './stats.js';
import { ErrorTally, sleep, type BenchCluster } from './target.js';

export const faults = ['kill', 'stop', 'partition', 'term'] as const;
export type Fault = (typeof faults)[number];

export const trialsMax = 100;
/** A trial with no acknowledged write this long after the fault counts as failed. */
export const trialDeadlineMs = 10_000;
const healthyDeadlineMs = 30_000;
const writeIntervalMs = 5;
const writeTimeoutMs = 200;
const writesInflightMax = 64;
/** Steady writes before each fault, plus a random part so the fault lands anywhere in a heartbeat. */
const preFaultMs = 300;
const preFaultJitterMs = 300;
const valueBytes = 256;

export interface FailoverResult {
  readonly system: string;
  readonly fault: Fault;
  readonly trials: number;
  readonly unavailabilityMs: readonly number[];
  readonly summary: Summary;
  readonly failedTrials: number;
  readonly leaderChanges: number;
  readonly writeErrors: ErrorTally;
  readonly logProblems: readonly string[];
}

interface AckWaiter {
  readonly issuedAfter: number;
  readonly resolve: (ackAt: number) => void;
}

/** Open-loop writer: one PUT every writeIntervalMs, members in turn, at most writesInflightMax open. */
class OpenLoopWriter {
  private timer: NodeJS.Timeout | null = null;
  private inflight = 0;
  private next = 0;
  private seq = 0;
  private waiters: AckWaiter[] = [];
  readonly errors = new ErrorTally();
  private readonly value = 'v'.repeat(valueBytes);

  constructor(
    private readonly cluster: BenchCluster,
    private readonly client: HttpClient,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.issue(), writeIntervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The time of the first ack of a write issued at or after `t`, or null after the deadline. */
  firstAckAfter(t: number, deadlineMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(null);
      }, deadlineMs);
      const waiter: AckWaiter = {
        issuedAfter: t,
        resolve: (ackAt) => {
          clearTimeout(timer);
          resolve(ackAt);
        },
      };
      this.waiters.push(waiter);
    });
  }

  private issue(): void {
    if (this.inflight >= writesInflightMax) return;
    const member = this.next++ % this.cluster.size;
    const w = this.cluster.writeRequest(`failover-${this.seq++ % 100}`, this.value);
    const issuedAt = performance.now();
    this.inflight++;
    this.client.request(this.cluster.endpoint(member), w.method, w.path, w.body, writeTimeoutMs).then(
      (reply) => {
        this.inflight--;
        if (this.cluster.isWriteOk(reply)) this.acked(issuedAt, performance.now());
        else this.errors.reply(reply);
      },
      (err: unknown) => {
        this.inflight--;
        this.errors.transport(err);
      },
    );
  }

  private acked(issuedAt: number, ackAt: number): void {
    const due = this.waiters.filter((w) => issuedAt >= w.issuedAfter);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => issuedAt < w.issuedAfter);
    for (const w of due) w.resolve(ackAt);
  }
}

function applyFault(cluster: BenchCluster, fault: Fault, leader: number): void {
  switch (fault) {
    case 'kill':
      cluster.signal(leader, 'SIGKILL');
      return;
    case 'stop':
      cluster.signal(leader, 'SIGSTOP');
      return;
    case 'term':
      cluster.signal(leader, 'SIGTERM');
      return;
    case 'partition':
      cut(cluster.cutRules(leader));
      return;
  }
}

async function recover(cluster: BenchCluster, fault: Fault, leader: number): Promise<void> {
  switch (fault) {
    case 'kill':
    case 'term':
      await cluster.waitExit(leader, 15_000);
      cluster.start(leader);
      return;
    case 'stop':
      cluster.signal(leader, 'SIGCONT');
      return;
    case 'partition':
      heal();
      return;
  }
}

export async function runFailover(
  cluster: BenchCluster,
  fault: Fault,
  trials: number,
): Promise<FailoverResult> {
  const client = new HttpClient(writesInflightMax);
  const monitor = new LeaderMonitor(cluster);
  const writer = new OpenLoopWriter(cluster, client);
  const unavailabilityMs: number[] = [];
  let failedTrials = 0;
  try {
    await startCluster(cluster, client);
    monitor.start();
    writer.start();
    for (let trial = 1; trial <= trials; trial++) {
      const leader = await waitHealthy(cluster, client, healthyDeadlineMs);
      await sleep(preFaultMs + Math.random() * preFaultJitterMs);
      monitor.skip.add(leader);
      // For a partition the clock starts once the whole cut is in place: before that the old
      // leader could still commit.
      let t0 = performance.now();
      applyFault(cluster, fault, leader);
      if (fault === 'partition') t0 = performance.now();
      const ackAt = await writer.firstAckAfter(t0, trialDeadlineMs);
      if (ackAt === null) {
        failedTrials++;
        progress(
          `${cluster.system} ${fault} trial ${trial}/${trials}: no write acknowledged within ${trialDeadlineMs} ms`,
        );
      } else {
        unavailabilityMs.push(ackAt - t0);
        progress(
          `${cluster.system} ${fault} trial ${trial}/${trials}: leader member ${leader + 1}, unavailable ${(ackAt - t0).toFixed(1)} ms`,
        );
      }
      await recover(cluster, fault, leader);
      monitor.skip.delete(leader);
    }
    await waitHealthy(cluster, client, healthyDeadlineMs);
  } finally {
    writer.stop();
    await monitor.stop();
    client.close();
    if (fault === 'partition') heal();
  }
  const logProblems = await stopCluster(cluster);
  return {
    system: cluster.system,
    fault,
    trials,
    unavailabilityMs,
    summary: summarize(unavailabilityMs),
    failedTrials,
    leaderChanges: monitor.changes(),
    writeErrors: writer.errors,
    logProblems,
  };
}
