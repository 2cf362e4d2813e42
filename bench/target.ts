// What the workloads need from a cluster under test, so that the same failover, write and idle
// runs drive anya-ha agents and etcd members alike. Member indexes run from 0.
import { readFileSync } from 'node:fs';
import type { Reply } from './http-client.js';
import type { Endpoint } from './http-client.js';

export interface LeaderView {
  readonly index: number;
  readonly term: number;
}

export interface WriteRequest {
  readonly method: string;
  readonly path: string;
  readonly body: Buffer;
}

export interface BenchCluster {
  readonly system: string;
  readonly size: number;
  /** Peer address of each member (the address iptables rules name). */
  readonly hosts: readonly string[];
  /** The directory holding data and logs, for messages. */
  readonly dir: string;
  startAll(): void;
  start(i: number): void;
  isRunning(i: number): boolean;
  pid(i: number): number | undefined;
  signal(i: number, sig: NodeJS.Signals): void;
  waitExit(i: number, deadlineMs: number): Promise<void>;
  /** Where member i takes client requests. */
  endpoint(i: number): Endpoint;
  writeRequest(key: string, value: string): WriteRequest;
  /** A native client's put to member i, used instead of writeRequest when present. */
  readonly putDirect?: (i: number, key: string, value: string, timeoutMs: number) => Promise<void>;
  isWriteOk(reply: Reply): boolean;
  /** One poll of every member in `among`; for each that answers, who it thinks leads and in which term. */
  views(among: readonly number[], timeoutMs: number): Promise<(MemberView | null)[]>;
  /** iptables rule specs (without -A CHAIN) that cut every link between member i and the others. */
  cutRules(i: number): string[][];
  /** Warnings and errors in the members' logs, counted by message (see summarizeLogs). */
  logProblems(): string[];
  destroy(): Promise<void>;
}

export interface MemberView {
  readonly index: number;
  readonly isLeader: boolean;
  /** A stable name of the leader this member follows, or null. */
  readonly leader: string | null;
  readonly term: number;
}

/** The leader a majority of all members agree on, or null. */
export function agreedLeader(views: readonly (MemberView | null)[], size: number): LeaderView | null {
  const majority = Math.floor(size / 2) + 1;
  for (const v of views) {
    if (!v || !v.isLeader) continue;
    const agree = views.filter((w) => w && w.leader === v.leader && w.term === v.term).length;
    if (agree >= majority) return { index: v.index, term: v.term };
  }
  return null;
}

/**
 * Warnings and errors in JSON log files, counted by level and message: "node-1 warn ×3 peer link
 * down". classify returns null for a line that is not worth reporting. Lines that are not JSON
 * (a crash's stack trace) are reported as they are.
 */
export function summarizeLogs(
  files: readonly { readonly name: string; readonly path: string }[],
  classify: (entry: Record<string, unknown>) => string | null,
): string[] {
  const out: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f.path, 'utf8');
    } catch {
      continue;
    }
    const counts = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let key: string | null;
      try {
        key = classify(JSON.parse(line) as Record<string, unknown>);
      } catch {
        key = `raw ${line.length > 200 ? `${line.slice(0, 200)}...` : line}`;
      }
      if (key !== null) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, n] of counts) out.push(`${f.name} ×${n} ${key}`);
  }
  return out;
}

/** Counts of failed requests by kind: "HTTP 503 HA_ERR_NO_QUORUM", "timeout after 200 ms", ... */
export class ErrorTally {
  private readonly counts = new Map<string, number>();
  total = 0;

  reply(reply: Reply): void {
    let code = '';
    try {
      const b = JSON.parse(reply.text) as { error?: unknown; message?: unknown };
      if (b.error && typeof b.error === 'object' && 'code' in b.error) code = String(b.error.code);
      else if (typeof b.error === 'string') code = b.error;
      else if (typeof b.message === 'string') code = b.message;
    } catch {
      // not JSON
    }
    this.add(`HTTP ${reply.status}${code ? ` ${code}` : ''}`);
  }

  transport(err: unknown): void {
    this.add((err as Error).message.replace(/\s*\d+\.\d+\.\d+\.\d+:\d+/g, ''));
  }

  private add(kind: string): void {
    this.total++;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  /** "12 HTTP 503 HA_ERR_NO_QUORUM, 3 timeout after 200 ms", most frequent first. */
  toString(): string {
    return [...this.counts]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
