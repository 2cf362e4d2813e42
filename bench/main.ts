// `npm run bench -- <failover|write|idle> [options]`: benchmarks of real agent processes, with the
// same workload against an etcd cluster in the same run when asked (--compare etcd). Figures go to
// stdout, progress to stderr. Nothing here asserts a timing: benchmarks measure, tests assert.
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AnyaCluster } from './anya.js';
import { mibMax, runCatchup, type CatchupResult } from './catchup.js';
import { liveClusters } from './common.js';
import { EtcdCluster, etcdInstalled, etcdVersion } from './etcd.js';
import { faults, runFailover, trialsMax, type Fault, type FailoverResult } from './failover.js';
import { idleSecondsMax, runIdle, type IdleResult } from './idle.js';
import { heal, runInNamespace } from './netns.js';
import { fmtMs, fmtRatio, progress } from './stats.js';
import type { BenchCluster } from './target.js';
import { clientsMax, keysPerClientDefault, runWrite, secondsMax, type WriteResult } from './write.js';
import { defaultElectionTimeoutMs, defaultHeartbeatIntervalMs } from '../src/cluster/config.js';

const usage = `usage: npm run bench -- <workload> [options]
  failover [--nodes 3|5] [--trials N] [--fault kill|stop|partition|term]   (defaults 3, 10, kill)
  write    [--clients N] [--seconds S] [--keys K]                         (defaults 1, 10, 100 per client)
  idle     [--seconds S]                                                  (default 30)
  catchup  [--mib N]   fill to N MiB, wipe a follower, time its catch-up   (default 256)
common:    --compare etcd   run the same workload against a 3-member etcd cluster too
           --keep           keep cluster directories (data, logs) for inspection`;

// anya-ha's defaults (src/cluster/config.ts); etcd gets the same election timeout, which is what
// bounds failover. etcd refuses an election timeout below 5 heartbeats ("failed to verify
// flags"), so its heartbeat is the shorter of ours and a fifth of the timeout (30 ms by default).
const electionTimeoutMs = defaultElectionTimeoutMs;
const etcdElectionHeartbeatsMin = 5;
const heartbeatIntervalMs = Math.min(
  defaultHeartbeatIntervalMs,
  Math.floor(electionTimeoutMs / etcdElectionHeartbeatsMin),
);

interface Args {
  workload: 'failover' | 'write' | 'idle' | 'catchup';
  nodes: number;
  mib: number;
  /** write: distinct keys over all clients; null = 100 per client. */
  keys: number | null;
  trials: number;
  fault: Fault;
  clients: number;
  seconds: number;
  compareEtcd: boolean;
  keep: boolean;
  inside: boolean;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function intArg(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    fail(`--${name}: expected an integer in [${min}, ${max}], got "${raw}"`);
  return n;
}

function parse(argv: string[]): Args {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      trials: { type: 'string' },
      fault: { type: 'string' },
      clients: { type: 'string' },
      seconds: { type: 'string' },
      mib: { type: 'string' },
      keys: { type: 'string' },
      compare: { type: 'string' },
      keep: { type: 'boolean' },
      inside: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const workload = positionals[0];
  if (
    positionals.length !== 1 ||
    (workload !== 'failover' && workload !== 'write' && workload !== 'idle' && workload !== 'catchup')
  ) {
    fail('expected one workload: failover, write, idle or catchup');
  }
  const fault = (values.fault ?? 'kill') as Fault;
  if (!faults.includes(fault)) fail(`--fault: expected one of ${faults.join(', ')}, got "${values.fault}"`);
  if (values.compare !== undefined && values.compare !== 'etcd') fail(`--compare: only "etcd" is supported`);
  const nodes = intArg('nodes', values.nodes, 3, 3, 5);
  if (nodes !== 3 && nodes !== 5) fail('--nodes: expected 3 or 5');
  return {
    workload,
    nodes,
    trials: intArg('trials', values.trials, 10, 1, trialsMax),
    fault,
    clients: intArg('clients', values.clients, 1, 1, clientsMax),
    seconds: intArg(
      'seconds',
      values.seconds,
      workload === 'idle' ? 30 : 10,
      1,
      workload === 'idle' ? idleSecondsMax : secondsMax,
    ),
    mib: intArg('mib', values.mib, 256, 1, mibMax),
    keys: values.keys === undefined ? null : intArg('keys', values.keys, 1, 1, 10_000_000),
    compareEtcd: values.compare === 'etcd',
    keep: values.keep ?? false,
    inside: values.inside ?? false,
  };
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => c.padEnd(widths[i] ?? 10))
    .join(' ')
    .trimEnd();
}

function reportProblems(system: string, problems: readonly string[]): void {
  out(`${system} log warnings and errors, by member and message:${problems.length ? '' : ' none'}`);
  for (const p of problems) out(`  ${p}`);
}

function printFailover(a: Args, results: readonly FailoverResult[]): void {
  out(`failover: fault=${a.fault}, ${a.nodes} nodes, ${a.trials} trials`);
  out('unavailability = from the fault to the first acknowledgement of a write issued after it');
  const w = [9, 7, 7, 9, 9, 9, 9, 9, 15, 12];
  out(
    pad(
      ['system', 'trials', 'failed', 'min', 'p50', 'p90', 'p99', 'max', 'leader changes', 'write errors'],
      w,
    ),
  );
  for (const r of results) {
    const s = r.summary;
    out(
      pad(
        [
          r.system,
          String(r.unavailabilityMs.length),
          String(r.failedTrials),
          fmtMs(s.min),
          fmtMs(s.p50),
          fmtMs(s.p90),
          fmtMs(s.p99),
          fmtMs(s.max),
          `${r.leaderChanges} (of ${r.trials})`,
          String(r.writeErrors),
        ],
        w,
      ),
    );
  }
  for (const r of results)
    out(`${r.system} trials (ms): ${r.unavailabilityMs.map((x) => x.toFixed(1)).join(' ')}`);
  if (results.length === 2) {
    const [x, y] = results as [FailoverResult, FailoverResult];
    out(
      `ratio ${x.system}/${y.system} (below 1: ${x.system} recovers faster): p50 ${fmtRatio(x.summary.p50, y.summary.p50)}, p99 ${fmtRatio(x.summary.p99, y.summary.p99)}`,
    );
  }
  for (const r of results) reportProblems(r.system, r.logProblems);
}

function printWrite(a: Args, results: readonly WriteResult[]): void {
  out(
    `write: ${a.clients} client(s), ${a.seconds} s, ${a.keys ?? a.clients * keysPerClientDefault} keys, 256-byte values, one request open per client, to the leader`,
  );
  const w = [9, 10, 10, 10, 10, 10, 8];
  out(pad(['system', 'ops', 'ops/s', 'p50', 'p99', 'max', 'errors'], w));
  for (const r of results) {
    out(
      pad(
        [
          r.system,
          String(r.ops),
          r.opsPerSecond.toFixed(0),
          fmtMs(r.latency.p50),
          fmtMs(r.latency.p99),
          fmtMs(r.latency.max),
          String(r.errors.total),
        ],
        w,
      ),
    );
  }
  for (const r of results) if (r.errors.total > 0) out(`${r.system} errors: ${r.errors.toString()}`);
  for (const r of results) out(`${r.system} leader changes during the run: ${r.leaderChanges}`);
  const [x, ...others] = results as [WriteResult, ...WriteResult[]];
  for (const y of others) {
    out(
      `ratio ${x.system}/${y.system}: throughput ${fmtRatio(x.opsPerSecond, y.opsPerSecond)}, p50 latency ${fmtRatio(x.latency.p50, y.latency.p50)}, p99 latency ${fmtRatio(x.latency.p99, y.latency.p99)}`,
    );
  }
  if (others.length > 1) {
    const anchor = others.reduce((best, y) => (y.opsPerSecond > best.opsPerSecond ? y : best));
    out(
      `faster etcd path in this run: ${anchor.system} (${x.system} at ${fmtRatio(x.opsPerSecond, anchor.opsPerSecond)} of it)`,
    );
  }
  for (const r of results) reportProblems(r.system, r.logProblems);
}

function printCatchup(r: CatchupResult): void {
  const stateMiB = r.snapshotBytes / (1024 * 1024);
  out(`catchup: 3 nodes, filled to ${r.mib} MiB (${r.keys} keys of 64 KiB) in ${r.fillSeconds.toFixed(1)} s`);
  out(`leader's snapshot: ${stateMiB.toFixed(1)} MiB`);
  out(
    `wiped follower caught up to index ${r.targetIndex} in ${Number.isFinite(r.catchUpMs) ? `${(r.catchUpMs / 1000).toFixed(2)} s` : 'NOT within the deadline'}`,
  );
  out(`leader changes during the catch-up: ${r.leaderChanges}`);
  out(`writes during the catch-up: ${r.writesOk} acknowledged, ${r.writesFailed} failed`);
  out(`longest event-loop stall on the leader: ${r.leaderLagMaxMs.toFixed(1)} ms`);
  out(
    `peak RSS per node (MiB): ${r.rssMiBMax.map((x) => x.toFixed(0)).join(', ')}; max / state size ${(Math.max(...r.rssMiBMax) / stateMiB).toFixed(2)}×`,
  );
  reportProblems('anya-ha', r.logProblems);
}

function printIdle(a: Args, results: readonly IdleResult[]): void {
  out(`idle: ${results[0]?.members.length ?? 0}-member cluster, ${a.seconds} s after a 5 s settle`);
  const w = [9, 8, 10, 14, 14];
  out(pad(['system', 'member', 'cpu %', 'rss MiB end', 'rss MiB max'], w));
  for (const r of results) {
    for (const m of r.members) {
      out(
        pad(
          [
            r.system,
            String(m.member),
            m.cpuPercent.toFixed(2),
            m.rssMiBEnd.toFixed(1),
            m.rssMiBMax.toFixed(1),
          ],
          w,
        ),
      );
    }
  }
  const mean = (r: IdleResult, f: (m: IdleResult['members'][number]) => number): number =>
    r.members.reduce((s, m) => s + f(m), 0) / r.members.length;
  for (const r of results) {
    out(
      `${r.system} mean per member: cpu ${mean(r, (m) => m.cpuPercent).toFixed(2)} %, rss ${mean(r, (m) => m.rssMiBEnd).toFixed(1)} MiB`,
    );
  }
  if (results.length === 2) {
    const [x, y] = results as [IdleResult, IdleResult];
    out(
      `ratio ${x.system}/${y.system}: cpu ${fmtRatio(
        mean(x, (m) => m.cpuPercent),
        mean(y, (m) => m.cpuPercent),
      )}, rss ${fmtRatio(
        mean(x, (m) => m.rssMiBEnd),
        mean(y, (m) => m.rssMiBEnd),
      )}`,
    );
  }
  for (const r of results) reportProblems(r.system, r.logProblems);
}

async function run(a: Args): Promise<void> {
  const loadStart = loadavg()[0]!;
  const withEtcd = a.compareEtcd && etcdInstalled();
  if (a.compareEtcd && !withEtcd) {
    out('etcd comparison skipped: no `etcd` binary on PATH (Debian package etcd-server)');
  }
  if (withEtcd) progress(`comparing with ${etcdVersion()}`);
  const etcd = (grpc = false): BenchCluster =>
    new EtcdCluster({
      grpc,
      members: a.workload === 'failover' ? a.nodes : 3,
      heartbeatIntervalMs,
      electionTimeoutMs,
      isolatable: a.workload === 'failover' && a.fault === 'partition',
      keepDir: a.keep,
    });
  const anya = (): Promise<BenchCluster> =>
    AnyaCluster.create(a.workload === 'failover' ? a.nodes : 3, a.keep);
  // Other work on the machine skews every figure; say how busy it was.
  const machine = (): void =>
    out(
      `machine: ${availableParallelism()} cpus, 1-min load average ${loadStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end`,
    );
  switch (a.workload) {
    case 'failover': {
      const results = [await runFailover(await anya(), a.fault, a.trials)];
      if (withEtcd) results.push(await runFailover(etcd(), a.fault, a.trials));
      printFailover(a, results);
      machine();
      return;
    }
    case 'write': {
      const keys = a.keys ?? a.clients * keysPerClientDefault;
      const results = [await runWrite(await anya(), a.clients, a.seconds, keys)];
      if (withEtcd) {
        // Both of etcd's write paths, in the same run: its JSON gateway and its native gRPC client.
        results.push(await runWrite(etcd(), a.clients, a.seconds, keys));
        results.push(await runWrite(etcd(true), a.clients, a.seconds, keys));
      }
      printWrite(a, results);
      machine();
      return;
    }
    case 'catchup': {
      if (a.compareEtcd)
        out(
          'catchup: no etcd comparison (an etcd member with a wiped data directory must be removed and added again)',
        );
      printCatchup(await runCatchup(await AnyaCluster.create(3, a.keep), a.mib));
      machine();
      return;
    }
    case 'idle': {
      const results = [await runIdle(await anya(), a.seconds)];
      if (withEtcd) results.push(await runIdle(etcd(), a.seconds));
      printIdle(a, results);
      machine();
      return;
    }
  }
}

async function teardown(a: Args): Promise<void> {
  for (const c of [...liveClusters]) {
    await c.destroy().catch((err: unknown) => progress(`cleanup of ${c.system}: ${(err as Error).message}`));
    liveClusters.delete(c);
  }
  if (a.inside) {
    try {
      heal();
    } catch {
      // the namespace is deleted by the outer process anyway
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const a = parse(argv);
  if (a.workload === 'failover' && a.fault === 'partition' && !a.inside) {
    if (process.getuid?.() !== 0) fail('--fault partition needs root (ip netns, iptables)');
    execFileSync('iptables', ['--version'], { stdio: 'ignore' });
    process.exitCode = await runInNamespace(fileURLToPath(import.meta.url), argv);
    return;
  }
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: stopping clusters`);
    void teardown(a).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await run(a);
  } catch (err) {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await teardown(a);
  }
  // Keep-alive sockets and timers must not hold the process open.
  process.exit(process.exitCode ?? 0);
}

await main();
