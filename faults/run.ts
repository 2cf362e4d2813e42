// One fault run, inside the test's network namespace: five agents on 127.0.0.11–15, clients
// recording a history, a status observer, and the nemesis for `minutes`; then heal, wait for a
// leader, read every key once more, and check everything that was recorded.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalCluster } from '../testkit/local-cluster.js';
import { checkHistory, checkStatusObservations, describeLeaderships, type Violation } from './checks.js';
import { finalReads, HistoryRecorder, runClient } from './clients.js';
import { iptables, Nemesis, type FaultRecord } from './nemesis.js';
import { StatusObserver } from './observer.js';
import { Rng } from './random.js';

export interface RunOptions {
  readonly minutes: number;
  readonly seed: number;
  readonly clients: number;
  /** Where a failing run leaves its evidence (a folder per run is made inside). */
  readonly evidenceDir: string;
  /** The network namespace's name: the run's temporary folder is named after it. */
  readonly netns: string;
}

export const nodeCount = 5;
export const keyCount = 8;
export const peerBasePort = 7000;
export const apiBasePort = 8000;
/** First election after start, and the leader after healing: generous, on 2 busy cores. */
export const leaderWaitMs = 30_000;
/**
 * Clients use keyCount keys at a time and move to fresh ones every keyEpochMs. The search for a
 * linearization grows faster than linearly in one key's history (a 10-minute run on 8 fixed keys
 * took 49 s to check, a 3-minute one 0.2 s), so bounding each key's history keeps long runs
 * checkable; every key still lives through several faults of every kind, and every key ever used
 * is read again at the end.
 */
export const keyEpochMs = 60_000;
/** Time allowed for the final reads: a base plus a little per key. */
export const finalReadsMsBase = 20_000;
export const finalReadsMsPerKey = 50;
/** Bound on the recorded history; clients stop early if a run ever reaches it. */
export const historyOpsMax = 400_000;
/** Bound on the whole inner run beyond the fault phase (start, final reads, checks). */
export const runSlackMs = 150_000;

/** The temporary folder of the run in namespace `netns` starts with this (see namespace.ts). */
export function runDirPrefix(netns: string): string {
  return join(tmpdir(), `${netns}-`);
}

export type Log = (line: string) => void;

export async function runInside(o: RunOptions): Promise<number> {
  const startedMs = performance.now();
  const log: Log = (line) =>
    console.log(`[${((performance.now() - startedMs) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  const faultPhaseMs = o.minutes * 60_000;
  const dir = mkdtempSync(runDirPrefix(o.netns));
  const hosts = Array.from({ length: nodeCount }, (_, i) => `127.0.0.${11 + i}`);
  const cluster = await LocalCluster.create({
    nodes: nodeCount,
    hosts,
    basePort: peerBasePort,
    apiBasePort,
    dir,
  });

  // Interrupted or overdue: stop the agents, leave, and let the outer process delete the namespace.
  let exiting = false;
  const abandon = (code: number, why: string): void => {
    if (exiting) return;
    exiting = true;
    console.log(`${why}; stopping the agents (logs were in ${dir})`);
    void cluster
      .killAll()
      .catch(() => {})
      .finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(code);
      });
  };
  process.once('SIGINT', () => abandon(130, 'interrupted (SIGINT)'));
  process.once('SIGTERM', () => abandon(143, 'terminated (SIGTERM)'));
  const watchdog = setTimeout(
    () => abandon(124, `the run exceeded its bound of ${o.minutes} min + ${runSlackMs / 1000} s`),
    faultPhaseMs + runSlackMs,
  );
  watchdog.unref();

  const rng = new Rng(o.seed);
  let keyEpoch = -1;
  let keysNow: string[] = [];
  const keysUsed: string[] = [];
  let keysStartMs = 0;
  const keys = (): readonly string[] => {
    const epoch = Math.floor((performance.now() - keysStartMs) / keyEpochMs);
    if (epoch !== keyEpoch) {
      keyEpoch = epoch;
      keysNow = Array.from({ length: keyCount }, (_, i) => `e${epoch}-k${i}`);
      keysUsed.push(...keysNow);
    }
    return keysNow;
  };
  const apiUrls = cluster.nodes.map((n) => n.apiUrl);
  const recorder = new HistoryRecorder();
  const observer = new StatusObserver(apiUrls);
  const nemesis = new Nemesis(cluster, observer, rng, log);
  const violations: Violation[] = [];
  let clientsStopped = false;

  try {
    log(`seed ${o.seed}; ${nodeCount} agents on ${hosts.join(', ')}; logs in ${dir}`);
    await iptables(['-F']);
    cluster.startAll();
    const first = await cluster.waitForLeader(leaderWaitMs);
    log(`leader ${cluster.nodes[first.index].id} in term ${first.term}`);
    observer.start();

    keysStartMs = performance.now();
    const stopped = () => clientsStopped || exiting || recorder.ops.length >= historyOpsMax;
    const clients = Array.from({ length: o.clients }, (_, c) =>
      runClient({
        clientId: c + 1,
        keys,
        apiUrls,
        rng: new Rng((o.seed + 7919 * (c + 1)) >>> 0),
        recorder,
        stopped,
      }),
    );
    log(
      `${o.clients} clients on ${keyCount} keys (fresh ones every ${keyEpochMs / 1000} s); faults for ${o.minutes} min`,
    );
    await nemesis.run(
      performance.now() + faultPhaseMs,
      () => exiting || recorder.ops.length >= historyOpsMax,
    );
    if (recorder.ops.length >= historyOpsMax) log(`history reached its bound of ${historyOpsMax} ops`);
    clientsStopped = true;
    await Promise.all(clients);

    await nemesis.heal();
    log('healed everything; clients stopped; waiting for a leader');
    try {
      const leader = await cluster.waitForLeader(leaderWaitMs);
      log(`leader ${cluster.nodes[leader.index].id} in term ${leader.term}`);
    } catch (err) {
      violations.push({ check: 'liveness', message: `after healing: ${(err as Error).message}` });
    }
    const finalReadsMs = finalReadsMsBase + finalReadsMsPerKey * keysUsed.length;
    const unread = await finalReads(keysUsed, apiUrls, recorder, 0, performance.now() + finalReadsMs);
    log(`final reads of ${keysUsed.length} keys done`);
    for (const key of unread) {
      violations.push({
        check: 'liveness',
        message: `key ${JSON.stringify(key)}: no final read succeeded within ${finalReadsMs} ms after healing`,
      });
    }
    await observer.stop();

    const { ok, indeterminate, dropped } = recorder.counts;
    log(
      `history: ${recorder.ops.length} ops (${ok} definite, ${indeterminate} indeterminate); ${dropped} dropped`,
    );
    const reasons = [...recorder.reasons.entries()].sort((a, b) => b[1] - a[1]);
    log(`not definite: ${reasons.map(([r, n]) => `${r} x${n}`).join('; ') || 'none'}`);
    const leaderships = describeLeaderships(observer.observations);
    log(`${observer.observations.length} status observations; ${leaderships.length} leaderships seen`);

    violations.push(...checkStatusObservations(observer.observations));
    const checkStartedMs = performance.now();
    violations.push(...checkHistory(recorder.ops));
    log(`linearizability check took ${Math.round(performance.now() - checkStartedMs)} ms`);
  } catch (err) {
    violations.push({ check: 'test harness', message: (err as Error).stack ?? String(err) });
  } finally {
    clientsStopped = true;
    clearTimeout(watchdog);
    await observer.stop();
    await cluster.killAll();
  }

  for (const w of nemesis.warnings) console.log(`WARNING ${w}`);
  const summary = `${recorder.ops.length} ops, ${nemesis.faults.length} faults, ${violations.length} violations`;
  if (violations.length > 0) {
    for (const v of violations) {
      console.log(`VIOLATION ${v.check}: ${v.message}`);
      if (v.detail) console.log(v.detail);
    }
    const saved = saveEvidence(o, cluster, dir, violations, recorder, observer, nemesis.faults);
    console.log(`evidence saved in ${saved}`);
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(summary);
  return violations.length === 0 ? 0 : 1;
}

function saveEvidence(
  o: RunOptions,
  cluster: LocalCluster,
  dir: string,
  violations: readonly Violation[],
  recorder: HistoryRecorder,
  observer: StatusObserver,
  faults: readonly FaultRecord[],
): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = join(o.evidenceDir, `faults-${stamp}-seed${o.seed}`);
  mkdirSync(join(out, 'logs'), { recursive: true });
  const logPaths: string[] = [];
  for (const n of cluster.nodes) {
    if (!existsSync(n.logPath)) continue;
    const copy = join(out, 'logs', `${n.id}.log`);
    copyFileSync(n.logPath, copy);
    logPaths.push(copy);
  }
  const failingKeys = violations.filter((v) => v.detail !== undefined);
  writeFileSync(
    join(out, 'failing-key.txt'),
    failingKeys.map((v) => `${v.message}\n\n${v.detail}\n`).join('\n') || 'no history violation\n',
  );
  writeFileSync(
    join(out, 'evidence.json'),
    JSON.stringify(
      {
        seed: o.seed,
        minutes: o.minutes,
        clients: o.clients,
        violations,
        faults,
        logPaths,
        leaderships: describeLeaderships(observer.observations),
        statusObservations: observer.observations,
        history: recorder.ops,
      },
      null,
      1,
    ),
  );
  return out;
}
