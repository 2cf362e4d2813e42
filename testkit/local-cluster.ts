// A cluster of real agent processes for integration tests, fault tests and benchmarks: one OS
// process per node, generated certificates, node.yaml files in a temporary directory, and each
// node on its own loopback address when asked (127.0.0.11, .12, ...) so that iptables rules
// inside a network namespace can cut exactly one link. Test-support code: production never
// imports it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa, issueNodeCert } from '../src/transport/certs.js';
import type { NodeStatusView } from '../src/api/backend.js';

const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export interface LocalClusterOptions {
  readonly nodes: number;
  /** One host per node (e.g. 127.0.0.11..); default 127.0.0.1 for all. */
  readonly hosts?: readonly string[];
  /** Peer ports are basePort + i, API ports apiBasePort + i (i from 0). */
  readonly basePort: number;
  readonly apiBasePort: number;
  readonly dir?: string;
  readonly heartbeatInterval?: string;
  readonly electionTimeout?: string;
  readonly logLevel?: string;
  /** Extra YAML lines for every node.yaml. */
  readonly extraConfig?: string;
}

export interface LocalNode {
  readonly id: string;
  readonly host: string;
  readonly peerPort: number;
  readonly apiPort: number;
  readonly apiUrl: string;
  readonly configPath: string;
  readonly logPath: string;
  process: ChildProcess | null;
}

export interface HttpResult {
  readonly status: number;
  readonly body: unknown;
}

/** One HTTP request with a deadline; never rejects on HTTP errors, only on transport failure. */
export function httpJson(
  url: string,
  method = 'GET',
  body?: unknown,
  timeoutMs = 2000,
  localAddress?: string,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        timeout: timeoutMs,
        localAddress,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (metrics): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export class LocalCluster {
  readonly dir: string;
  readonly nodes: LocalNode[] = [];
  private readonly ownsDir: boolean;

  private constructor(
    readonly options: LocalClusterOptions,
    dir: string,
    ownsDir: boolean,
  ) {
    this.dir = dir;
    this.ownsDir = ownsDir;
  }

  /** Writes certificates and configuration; starts nothing. */
  static async create(options: LocalClusterOptions): Promise<LocalCluster> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'anya-cluster-'));
    const cluster = new LocalCluster(options, dir, ownsDir);
    const certDir = join(dir, 'certs');
    await initCa(certDir);
    const list: string[] = [];
    for (let i = 0; i < options.nodes; i++) {
      const id = `node-${i + 1}`;
      const host = options.hosts?.[i] ?? '127.0.0.1';
      const node: LocalNode = {
        id,
        host,
        peerPort: options.basePort + i,
        apiPort: options.apiBasePort + i,
        apiUrl: `http://${host}:${options.apiBasePort + i}`,
        configPath: join(dir, id, 'node.yaml'),
        logPath: join(dir, id, 'agent.log'),
        process: null,
      };
      cluster.nodes.push(node);
      list.push(`${id}@${host}:${node.peerPort}`);
      await issueNodeCert(certDir, id, { hosts: [host, 'localhost'] });
    }
    for (const n of cluster.nodes) {
      mkdirSync(dirname(n.configPath), { recursive: true });
      const yaml = [
        `nodeId: ${n.id}`,
        `bindAddress: ${n.host}:${n.peerPort}`,
        `apiAddress: ${n.host}:${n.apiPort}`,
        `nodes:`,
        ...list.map((x) => `  - ${x}`),
        `dataDir: ${join(dir, n.id, 'data')}`,
        `tls:`,
        `  ca: ${join(certDir, 'ca.crt')}`,
        `  cert: ${join(certDir, `${n.id}.crt`)}`,
        `  key: ${join(certDir, `${n.id}.key`)}`,
        `logLevel: ${options.logLevel ?? 'info'}`,
        ...(options.heartbeatInterval ? [`heartbeatInterval: ${options.heartbeatInterval}`] : []),
        ...(options.electionTimeout ? [`electionTimeout: ${options.electionTimeout}`] : []),
        ...(options.extraConfig ? [options.extraConfig] : []),
      ].join('\n');
      writeFileSync(n.configPath, `${yaml}\n`);
    }
    return cluster;
  }

  start(i: number): void {
    const n = this.nodes[i]!;
    if (n.process && n.process.exitCode === null && n.process.signalCode === null) return;
    const log = openSync(n.logPath, 'a');
    n.process = spawn(process.execPath, [mainJs, 'agent', '--config', n.configPath], {
      stdio: ['ignore', log, log],
    });
  }

  startAll(): void {
    for (let i = 0; i < this.nodes.length; i++) this.start(i);
  }

  isRunning(i: number): boolean {
    const p = this.nodes[i]!.process;
    return p !== null && p.exitCode === null && p.signalCode === null;
  }

  signal(i: number, sig: NodeJS.Signals): void {
    this.nodes[i]!.process?.kill(sig);
  }

  /** Resolves with the exit code or signal once the process has exited (deadline in ms). */
  waitExit(i: number, deadlineMs = 15_000): Promise<{ code: number | null; signal: string | null }> {
    const p = this.nodes[i]!.process;
    if (!p) return Promise.resolve({ code: null, signal: null });
    if (p.exitCode !== null || p.signalCode !== null) {
      return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.nodes[i]!.id} did not exit within ${deadlineMs} ms`)),
        deadlineMs,
      );
      p.once('exit', (code, signal) => {
        clearTimeout(t);
        resolve({ code, signal });
      });
    });
  }

  async status(i: number, timeoutMs = 1000): Promise<NodeStatusView | null> {
    try {
      const r = await httpJson(`${this.nodes[i]!.apiUrl}/v1/status`, 'GET', undefined, timeoutMs);
      return r.status === 200 ? (r.body as NodeStatusView) : null;
    } catch {
      return null;
    }
  }

  /** Polls until a running node reports itself leader and a majority agree; returns its index. */
  async waitForLeader(
    deadlineMs = 20_000,
    exclude: readonly number[] = [],
  ): Promise<{ index: number; term: number }> {
    const until = Date.now() + deadlineMs;
    const majority = Math.floor(this.nodes.length / 2) + 1;
    while (Date.now() < until) {
      const views = await Promise.all(
        this.nodes.map((_, i) => (this.isRunning(i) ? this.status(i, 500) : null)),
      );
      for (let i = 0; i < views.length; i++) {
        const v = views[i];
        if (!v || v.role !== 'leader' || exclude.includes(i)) continue;
        const agree = views.filter((w) => w && w.leaderId === v.nodeId && w.term === v.term).length;
        if (agree >= majority) return { index: i, term: v.term };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no leader within ${deadlineMs} ms; logs in ${this.dir}`);
  }

  /** SIGKILLs every node still running. */
  async killAll(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      if (this.isRunning(i)) {
        this.signal(i, 'SIGCONT');
        this.signal(i, 'SIGKILL');
        await this.waitExit(i).catch(() => {});
      }
    }
  }

  /** Stops every node and removes the directory (when this object created it). */
  async destroy(): Promise<void> {
    await this.killAll();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
