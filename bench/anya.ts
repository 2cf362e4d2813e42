// anya-ha agents under benchmark: a LocalCluster of real agent processes, one loopback address per
// node (127.0.0.11, .12, ...), peer ports from 21000 and API ports from 21100.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint, Reply } from './http-client.js';
import { LocalCluster, httpJson } from '../testkit/local-cluster.js';
import type { NodeStatusView } from '../src/api/backend.js';
import { summarizeLogs, type BenchCluster, type MemberView, type WriteRequest } from './target.js';

export const anyaPeerBasePort = 21000;
export const anyaApiBasePort = 21100;

export function anyaHosts(nodes: number): string[] {
  return Array.from({ length: nodes }, (_, i) => `127.0.0.${11 + i}`);
}

export class AnyaCluster implements BenchCluster {
  readonly system = 'anya-ha';

  private constructor(private readonly cluster: LocalCluster) {}

  /** The agent processes underneath (for workloads that need their data directories). */
  get local(): LocalCluster {
    return this.cluster;
  }

  /**
   * Writes certificates and node.yaml files with the default timings; starts nothing. With keepDir
   * the directory (data, logs) outlives destroy().
   */
  static async create(nodes: number, keepDir: boolean): Promise<AnyaCluster> {
    const cluster = await LocalCluster.create({
      nodes,
      ...(keepDir ? { dir: mkdtempSync(join(tmpdir(), 'anya-bench-')) } : {}),
      hosts: anyaHosts(nodes),
      basePort: anyaPeerBasePort,
      apiBasePort: anyaApiBasePort,
      logLevel: 'info',
    });
    return new AnyaCluster(cluster);
  }

  get size(): number {
    return this.cluster.nodes.length;
  }
  get hosts(): string[] {
    return this.cluster.nodes.map((n) => n.host);
  }
  get dir(): string {
    return this.cluster.dir;
  }

  startAll(): void {
    this.cluster.startAll();
  }
  start(i: number): void {
    this.cluster.start(i);
  }
  isRunning(i: number): boolean {
    return this.cluster.isRunning(i);
  }
  pid(i: number): number | undefined {
    return this.cluster.nodes[i]!.process?.pid;
  }
  signal(i: number, sig: NodeJS.Signals): void {
    this.cluster.signal(i, sig);
  }
  async waitExit(i: number, deadlineMs: number): Promise<void> {
    await this.cluster.waitExit(i, deadlineMs);
  }

  endpoint(i: number): Endpoint {
    const n = this.cluster.nodes[i]!;
    return { host: n.host, port: n.apiPort };
  }

  writeRequest(key: string, value: string): WriteRequest {
    return {
      method: 'PUT',
      path: `/v1/kv/${encodeURIComponent(key)}`,
      body: Buffer.from(JSON.stringify({ value })),
    };
  }

  isWriteOk(reply: Reply): boolean {
    return reply.status === 200;
  }

  async views(among: readonly number[], timeoutMs: number): Promise<(MemberView | null)[]> {
    return Promise.all(
      among.map(async (i): Promise<MemberView | null> => {
        if (!this.isRunning(i)) return null;
        try {
          const r = await httpJson(`${this.cluster.nodes[i]!.apiUrl}/v1/status`, 'GET', undefined, timeoutMs);
          if (r.status !== 200) return null;
          const v = r.body as NodeStatusView;
          return { index: i, isLeader: v.role === 'leader', leader: v.leaderId, term: v.term };
        } catch {
          return null;
        }
      }),
    );
  }

  // The agents bind their outgoing peer connections to their own address, so source and
  // destination name the two ends of every node-to-node packet; client traffic comes from
  // 127.0.0.1 and is untouched.
  cutRules(i: number): string[][] {
    const me = this.cluster.nodes[i]!.host;
    const rules: string[][] = [];
    for (const other of this.cluster.nodes) {
      if (other.host === me) continue;
      rules.push(['INPUT', '-s', me, '-d', other.host, '-j', 'DROP']);
      rules.push(['INPUT', '-s', other.host, '-d', me, '-j', 'DROP']);
    }
    return rules;
  }

  logProblems(): string[] {
    return summarizeLogs(
      this.cluster.nodes.map((n) => ({ name: n.id, path: n.logPath })),
      (e) => {
        const level = typeof e.level === 'number' ? e.level : 0;
        if (level < 40) return null;
        const name = level >= 60 ? 'fatal' : level >= 50 ? 'error' : 'warn';
        const reason =
          typeof e.reason === 'string' ? ` (${e.reason.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR')})` : '';
        const err = typeof e.err === 'string' ? ` (${e.err})` : '';
        return `${name} ${String(e.msg)}${reason}${err}`;
      },
    );
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
  }
}
