// Idle cost: CPU time and resident memory of each member of a cluster that is doing nothing but
// keeping its leader, after it has settled. CPU is utime + stime from /proc/PID/stat over the
// window, as a percentage of one core; memory is VmRSS from /proc/PID/status, sampled each second.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { HttpClient } from './http-client.js';
import { startCluster, stopCluster } from './common.js';
import { progress } from './stats.js';
import { sleep, type BenchCluster } from './target.js';

export const idleSecondsMax = 3600;
const settleMs = 5000;
const rssSampleMs = 1000;

export interface IdleMember {
  readonly member: number;
  readonly pid: number;
  readonly cpuPercent: number;
  readonly rssMiBEnd: number;
  readonly rssMiBMax: number;
}

export interface IdleResult {
  readonly system: string;
  readonly seconds: number;
  readonly members: readonly IdleMember[];
  readonly logProblems: readonly string[];
}

const clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime + stime in clock ticks. Fields counted after the parenthesised command name. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12]);
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export async function runIdle(cluster: BenchCluster, seconds: number): Promise<IdleResult> {
  const client = new HttpClient(1);
  const members: IdleMember[] = [];
  try {
    await startCluster(cluster, client);
    client.close();
    progress(`${cluster.system}: settling ${settleMs / 1000} s, then measuring ${seconds} s`);
    await sleep(settleMs);
    const pids = Array.from({ length: cluster.size }, (_, i) => cluster.pid(i)!);
    const ticks0 = pids.map(cpuTicks);
    const rssMax = pids.map(rssMiB);
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    while (performance.now() < until) {
      await sleep(Math.min(rssSampleMs, until - performance.now()));
      pids.forEach((p, i) => (rssMax[i] = Math.max(rssMax[i]!, rssMiB(p))));
    }
    const wallS = (performance.now() - t0) / 1000;
    pids.forEach((pid, i) => {
      const cpuS = (cpuTicks(pid) - ticks0[i]!) / clockTicksPerSecond;
      members.push({
        member: i + 1,
        pid,
        cpuPercent: (100 * cpuS) / wallS,
        rssMiBEnd: rssMiB(pid),
        rssMiBMax: rssMax[i]!,
      });
    });
  } finally {
    client.close();
  }
  const logProblems = await stopCluster(cluster);
  return { system: cluster.system, seconds, members, logProblems };
}
