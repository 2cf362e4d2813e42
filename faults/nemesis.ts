// The nemesis: injects one fault at a time, in a fixed rotation, holds it, heals everything, and
// pauses before the next. Faults act on node↔node traffic (iptables in the test's own network
// namespace, so the host's rules are never touched) and on the agent processes (signals).
//
// A link cut drops packets both ways between two node addresses in the INPUT chain (on loopback
// every packet passes INPUT once). Agents bind their outbound peer connections to their own
// address, so the rules catch both connection directions; clients use 127.0.0.1 and pass.
import { execFile, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { LocalCluster } from '../testkit/local-cluster.js';
import type { StatusObserver } from './observer.js';
import type { Rng } from './random.js';

const execFileAsync = promisify(execFile);

export const faultKinds = [
  'isolate-leader',
  'split-majority-minority',
  'bridge',
  'kill-restart',
  'freeze-leader',
  'restart-all',
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** How long a network or crash fault is held: several election timeouts (300 ms by default). */
export const faultHoldMsMin = 3000;
export const faultHoldMsMax = 6000;
/** A freeze outlasts the election timeout, so the others elect a new leader meanwhile. */
export const freezeHoldMsMin = 1000;
export const freezeHoldMsMax = 2000;
/** Healthy time between faults, for the cluster to settle and clients to make progress. */
export const healthyPauseMsMin = 2000;
export const healthyPauseMsMax = 4000;
/** How long a SIGTERMed agent gets to exit before it is SIGKILLed. */
export const gracefulExitMsMax = 10_000;
/** How long the nemesis waits for a leader after healing before it carries on regardless. */
export const leaderSettleMs = 20_000;
/** How long a fault aimed at the leader looks for one before picking a random node. */
export const leaderLookupMs = 3000;
/** Bound on an iptables call (it waits this long for the xtables lock, too). */
export const iptablesTimeoutMs = 10_000;

export interface FaultRecord {
  readonly index: number;
  readonly kind: FaultKind;
  readonly description: string;
  /** performance.now() times. */
  readonly startMs: number;
  healedMs: number | null;
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  /** Misbehaviour that is not a safety violation but deserves a look (a hung shutdown). */
  readonly warnings: string[] = [];
  private readonly ids: string[];

  constructor(
    private readonly cluster: LocalCluster,
    private readonly observer: StatusObserver,
    private readonly rng: Rng,
    private readonly log: (line: string) => void,
  ) {
    this.ids = cluster.nodes.map((n) => n.id);
  }

  /** Injects faults in rotation until `untilMs` (performance.now()) or until stopped. */
  async run(untilMs: number, stopped: () => boolean): Promise<void> {
    for (let i = 0; performance.now() < untilMs && !stopped(); i++) {
      const kind = faultKinds[i % faultKinds.length];
      const startMs = performance.now();
      const { description, holdMs } = await this.inject(kind);
      const record: FaultRecord = {
        index: this.faults.length + 1,
        kind,
        description,
        startMs,
        healedMs: null,
      };
      this.faults.push(record);
      this.log(`fault ${record.index} ${kind}: ${description}${holdMs > 0 ? `; held ${holdMs} ms` : ''}`);
      await pause(holdMs, stopped);
      await this.heal();
      record.healedMs = performance.now();
      const leader = await this.awaitLeader(stopped);
      const settledMs = Math.round(performance.now() - record.healedMs);
      if (leader === null && !stopped()) {
        this.warnings.push(
          `fault ${record.index} ${kind}: no leader answered within ${leaderSettleMs} ms of healing`,
        );
      }
      this.log(
        leader === null
          ? `healed fault ${record.index}; no leader answered within ${leaderSettleMs} ms`
          : `healed fault ${record.index}; ${leader} leads ${settledMs} ms later`,
      );
      await pause(this.rng.between(healthyPauseMsMin, healthyPauseMsMax), stopped);
    }
  }

  /**
   * Waits until some node answers as leader, so that the healthy pause is healthy and the next
   * fault aimed at the leader finds one (agents restarted on busy cores take seconds to start).
   */
  private async awaitLeader(stopped: () => boolean): Promise<string | null> {
    const untilMs = performance.now() + leaderSettleMs;
    while (!stopped() && performance.now() < untilMs) {
      const id = await this.observer.currentLeader();
      if (id !== null) return id;
      await sleep(100);
    }
    return null;
  }

  /** Removes every fault: links restored, stopped agents continued, dead agents started. */
  async heal(): Promise<void> {
    await iptables(['-F']);
    for (let i = 0; i < this.ids.length; i++) {
      if (this.cluster.isRunning(i)) this.cluster.signal(i, 'SIGCONT');
      else this.cluster.start(i);
    }
  }

  /** Injects one fault; returns what it did and how long to hold it before healing. */
  private async inject(kind: FaultKind): Promise<{ description: string; holdMs: number }> {
    const holdMs = this.rng.between(faultHoldMsMin, faultHoldMsMax);
    const n = this.ids.length;
    switch (kind) {
      case 'isolate-leader': {
        const leader = await this.leaderOrRandom();
        await this.cutBetween([leader.index], this.others([leader.index]));
        return { description: `${this.ids[leader.index]} (${leader.note}) cut from all others`, holdMs };
      }
      case 'split-majority-minority': {
        const order = this.rng.shuffle([...Array(n).keys()]);
        const minority = order.slice(0, Math.floor((n - 1) / 2));
        const majority = order.slice(minority.length);
        await this.cutBetween(minority, majority);
        return { description: `{${this.names(minority)}} | {${this.names(majority)}}`, holdMs };
      }
      case 'bridge': {
        // Two sides that cannot reach each other but both reach the bridge node.
        const order = this.rng.shuffle([...Array(n).keys()]);
        const half = Math.floor((n - 1) / 2);
        const left = order.slice(0, half);
        const bridge = order[half];
        const right = order.slice(half + 1);
        await this.cutBetween(left, right);
        return {
          description: `{${this.names(left)}} x {${this.names(right)}}, both reach ${this.ids[bridge]}`,
          holdMs,
        };
      }
      case 'kill-restart': {
        // The leader half the time: its crash is the interesting one. Healing restarts it.
        const victim =
          this.rng.next() < 0.5
            ? await this.leaderOrRandom()
            : { index: this.rng.int(n), note: 'a random node' };
        this.cluster.signal(victim.index, 'SIGKILL');
        await this.cluster.waitExit(victim.index, gracefulExitMsMax);
        return { description: `SIGKILL ${this.ids[victim.index]} (${victim.note})`, holdMs };
      }
      case 'freeze-leader': {
        // Healing sends the SIGCONT.
        const leader = await this.leaderOrRandom();
        this.cluster.signal(leader.index, 'SIGSTOP');
        const freezeMs = this.rng.between(freezeHoldMsMin, freezeHoldMsMax);
        return { description: `SIGSTOP ${this.ids[leader.index]} (${leader.note})`, holdMs: freezeMs };
      }
      case 'restart-all': {
        const startedMs = performance.now();
        const killed: string[] = [];
        for (let i = 0; i < n; i++) {
          this.cluster.signal(i, 'SIGCONT');
          this.cluster.signal(i, 'SIGTERM');
        }
        for (let i = 0; i < n; i++) {
          try {
            await this.cluster.waitExit(i, gracefulExitMsMax);
          } catch {
            killed.push(this.ids[i]);
            this.cluster.signal(i, 'SIGKILL');
            await this.cluster.waitExit(i, gracefulExitMsMax);
          }
        }
        const stoppedMs = Math.round(performance.now() - startedMs);
        this.cluster.startAll();
        const late =
          killed.length > 0 ? `; SIGKILLed ${killed.join(', ')} after ${gracefulExitMsMax} ms` : '';
        return {
          description: `SIGTERM all: all exited within ${stoppedMs} ms${late}; started all`,
          holdMs: 0,
        };
      }
    }
  }

  /**
   * The current leader (highest term among the nodes' answers), asking again for up to
   * leaderLookupMs while an election is under way; a random node if none answers by then.
   */
  private async leaderOrRandom(): Promise<{ index: number; note: string }> {
    const untilMs = performance.now() + leaderLookupMs;
    do {
      const id = await this.observer.currentLeader();
      const index = id === null ? -1 : this.ids.indexOf(id);
      if (index >= 0) return { index, note: 'the leader' };
      await sleep(100);
    } while (performance.now() < untilMs);
    return {
      index: this.rng.int(this.ids.length),
      note: `no leader answered within ${leaderLookupMs} ms; a random node`,
    };
  }

  private others(group: readonly number[]): number[] {
    return [...Array(this.ids.length).keys()].filter((i) => !group.includes(i));
  }

  private names(group: readonly number[]): string {
    return [...group]
      .sort((a, b) => a - b)
      .map((i) => this.ids[i])
      .join(',');
  }

  /** Drops all traffic between every node of `a` and every node of `b`, both ways, atomically. */
  private async cutBetween(a: readonly number[], b: readonly number[]): Promise<void> {
    const rules: string[] = [];
    for (const i of a) {
      for (const j of b) {
        const hi = this.cluster.nodes[i].host;
        const hj = this.cluster.nodes[j].host;
        rules.push(`-A INPUT -s ${hi} -d ${hj} -j DROP`, `-A INPUT -s ${hj} -d ${hi} -j DROP`);
      }
    }
    await iptablesRestore(`*filter\n${rules.join('\n')}\nCOMMIT\n`);
  }
}

/** Sleeps `ms`, waking early once `stopped()` says so (checked every 100 ms). */
export async function pause(ms: number, stopped: () => boolean): Promise<void> {
  const untilMs = performance.now() + ms;
  while (!stopped()) {
    const leftMs = untilMs - performance.now();
    if (leftMs <= 0) return;
    await sleep(Math.min(leftMs, 100));
  }
}

export async function iptables(args: readonly string[]): Promise<void> {
  await execFileAsync('iptables', ['-w', String(iptablesTimeoutMs / 1000), ...args], {
    timeout: iptablesTimeoutMs + 2000,
  });
}

/** Adds rules in one transaction (--noflush keeps the ones already there). */
function iptablesRestore(rules: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('iptables-restore', ['--noflush', '-w', String(iptablesTimeoutMs / 1000)], {
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout: iptablesTimeoutMs + 2000,
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`iptables-restore failed (${code ?? signal}): ${stderr.trim()}`)),
    );
    child.stdin.end(rules);
  });
}
