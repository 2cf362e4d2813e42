// etcd members under benchmark, for the comparison runs: the `etcd` binary (Debian etcd-server),
// one process and data directory per member in a temporary directory, each member on its own
// loopback address (127.0.0.21, .22, ...), client ports from 22000 and peer ports from 22100.
// Writes go through the grpc-gateway's JSON API (POST /v3/kv/put, base64 key and value), the
// leader is found with POST /v3/maintenance/status.
//
// Partitions: etcd cannot bind its outgoing peer connections to its own address, so on loopback
// they all leave from 127.0.0.1 and "-s LEADER -d OTHER" would not match them. When asked to be
// isolatable, each member runs under its own uid and a nat rule gives its outgoing connections its
// own address (SNAT by --uid-owner); the cut then drops every connection whose two ends are the
// leader and another member (conntrack reply tuple), in both directions.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint, Reply } from './http-client.js';
import { httpJson } from '../testkit/local-cluster.js';
import { Etcd3 } from 'etcd3';
import { iptables } from './netns.js';
import { summarizeLogs, type BenchCluster, type MemberView, type WriteRequest } from './target.js';

export const etcdClientBasePort = 22000;
export const etcdPeerBasePort = 22100;
/** Member i runs as this uid + i when isolatable. */
const etcdUidBase = 62000;

export interface EtcdOptions {
  readonly members: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  /** Own uid and SNAT rule per member, so that cutRules() can isolate one (network namespace only). */
  readonly isolatable: boolean;
  readonly keepDir: boolean;
  /** Writes through etcd's native gRPC client (the etcd3 package) instead of its JSON gateway. */
  readonly grpc?: boolean;
}

export function etcdInstalled(): boolean {
  return spawnSync('which', ['etcd'], { stdio: 'ignore' }).status === 0;
}

export function etcdVersion(): string {
  return execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
}

interface Member {
  readonly name: string;
  readonly host: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logPath: string;
  readonly uid: number;
  process: ChildProcess | null;
}

export class EtcdCluster implements BenchCluster {
  readonly system: string;
  readonly dir: string;
  private readonly members: Member[] = [];
  /** One gRPC client per member, made on first use (grpc option). */
  private readonly grpcClients = new Map<number, Etcd3>();

  constructor(private readonly options: EtcdOptions) {
    this.system = options.grpc ? 'etcd-grpc' : 'etcd';
    this.dir = mkdtempSync(join(tmpdir(), 'anya-bench-etcd-'));
    // Members under their own uids must be able to reach their directories.
    if (options.isolatable) chmodSync(this.dir, 0o711);
    for (let i = 0; i < options.members; i++) {
      const name = `m${i + 1}`;
      const memberDir = join(this.dir, name);
      mkdirSync(memberDir, { recursive: true });
      const uid = etcdUidBase + i;
      if (options.isolatable) chownSync(memberDir, uid, uid);
      this.members.push({
        name,
        host: `127.0.0.${21 + i}`,
        clientPort: etcdClientBasePort + i,
        peerPort: etcdPeerBasePort + i,
        dataDir: join(memberDir, 'data'),
        logPath: join(memberDir, 'etcd.log'),
        uid,
        process: null,
      });
    }
    if (options.isolatable) {
      for (const m of this.members) {
        iptables(snatRule('-A', m));
      }
    }
  }

  get size(): number {
    return this.members.length;
  }
  get hosts(): string[] {
    return this.members.map((m) => m.host);
  }

  startAll(): void {
    for (let i = 0; i < this.members.length; i++) this.start(i);
  }

  start(i: number): void {
    if (this.isRunning(i)) return;
    const m = this.members[i]!;
    const initialCluster = this.members.map((x) => `${x.name}=http://${x.host}:${x.peerPort}`).join(',');
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      `http://${m.host}:${m.clientPort}`,
      '--advertise-client-urls',
      `http://${m.host}:${m.clientPort}`,
      '--listen-peer-urls',
      `http://${m.host}:${m.peerPort}`,
      '--initial-advertise-peer-urls',
      `http://${m.host}:${m.peerPort}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      'anya-bench',
      '--heartbeat-interval',
      String(this.options.heartbeatIntervalMs),
      '--election-timeout',
      String(this.options.electionTimeoutMs),
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
    ];
    const log = openSync(m.logPath, 'a');
    // setpriv execs etcd, so the child's pid is etcd's own.
    m.process = this.options.isolatable
      ? spawn(
          'setpriv',
          ['--reuid', String(m.uid), '--regid', String(m.uid), '--clear-groups', 'etcd', ...args],
          {
            stdio: ['ignore', log, log],
          },
        )
      : spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
  }

  isRunning(i: number): boolean {
    const p = this.members[i]!.process;
    return p !== null && p.exitCode === null && p.signalCode === null;
  }

  pid(i: number): number | undefined {
    return this.members[i]!.process?.pid;
  }

  signal(i: number, sig: NodeJS.Signals): void {
    this.members[i]!.process?.kill(sig);
  }

  waitExit(i: number, deadlineMs: number): Promise<void> {
    const p = this.members[i]!.process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`etcd ${this.members[i]!.name} did not exit within ${deadlineMs} ms`)),
        deadlineMs,
      );
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  endpoint(i: number): Endpoint {
    const m = this.members[i]!;
    return { host: m.host, port: m.clientPort };
  }

  writeRequest(key: string, value: string): WriteRequest {
    return {
      method: 'POST',
      path: '/v3/kv/put',
      body: Buffer.from(
        JSON.stringify({
          key: Buffer.from(key).toString('base64'),
          value: Buffer.from(value).toString('base64'),
        }),
      ),
    };
  }

  isWriteOk(reply: Reply): boolean {
    return reply.status === 200;
  }

  /** With the grpc option: a put through etcd's gRPC API to member i (rejects on failure). */
  get putDirect(): ((i: number, key: string, value: string, timeoutMs: number) => Promise<void>) | undefined {
    if (!this.options.grpc) return undefined;
    return async (i, key, value, timeoutMs) => {
      let client = this.grpcClients.get(i);
      if (client === undefined) {
        const m = this.members[i]!;
        client = new Etcd3({ hosts: `http://${m.host}:${m.clientPort}` });
        this.grpcClients.set(i, client);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([client.put(key).value(value).exec(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    };
  }

  async views(among: readonly number[], timeoutMs: number): Promise<(MemberView | null)[]> {
    return Promise.all(
      among.map(async (i): Promise<MemberView | null> => {
        if (!this.isRunning(i)) return null;
        const m = this.members[i]!;
        try {
          const r = await httpJson(
            `http://${m.host}:${m.clientPort}/v3/maintenance/status`,
            'POST',
            {},
            timeoutMs,
          );
          if (r.status !== 200) return null;
          const b = r.body as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
          const leader = b.leader && b.leader !== '0' ? b.leader : null;
          return {
            index: i,
            isLeader: leader !== null && leader === b.header?.member_id,
            leader,
            term: Number(b.raftTerm ?? 0),
          };
        } catch {
          return null;
        }
      }),
    );
  }

  cutRules(i: number): string[][] {
    if (!this.options.isolatable) throw new Error('etcd members were not started isolatable');
    const me = this.members[i]!.host;
    const rules: string[][] = [];
    for (const other of this.members) {
      if (other.host === me) continue;
      for (const [a, b] of [
        [me, other.host],
        [other.host, me],
      ]) {
        rules.push(['INPUT', '-m', 'conntrack', '--ctreplsrc', a!, '--ctrepldst', b!, '-j', 'DROP']);
      }
    }
    return rules;
  }

  logProblems(): string[] {
    return summarizeLogs(
      this.members.map((m) => ({ name: m.name, path: m.logPath })),
      (e) => (e.level === 'info' || e.level === 'debug' ? null : `${String(e.level)} ${String(e.msg)}`),
    );
  }

  async destroy(): Promise<void> {
    for (const c of this.grpcClients.values()) c.close();
    this.grpcClients.clear();
    for (let i = 0; i < this.members.length; i++) {
      if (!this.isRunning(i)) continue;
      this.signal(i, 'SIGCONT');
      this.signal(i, 'SIGKILL');
      await this.waitExit(i, 10_000).catch(() => {});
    }
    if (this.options.isolatable) {
      for (const m of this.members) {
        try {
          iptables(snatRule('-D', m));
        } catch {
          // the namespace goes away with its rules anyway
        }
      }
    }
    if (!this.options.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The nat rule that gives a member's connections (matched by its uid) its own source address. */
function snatRule(action: '-A' | '-D', m: { uid: number; host: string }): string[] {
  return [
    '-t',
    'nat',
    action,
    'POSTROUTING',
    '-p',
    'tcp',
    '-m',
    'owner',
    '--uid-owner',
    String(m.uid),
  ].concat(['-j', 'SNAT', '--to-source', m.host]);
}
