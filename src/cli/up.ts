// `anya-ha up`: a local cluster of agent processes in one command, for development and demos.
// Everything lives under one directory (certificates, a node.yaml, data and a log per node), so a
// second run restarts the same cluster from disk. The launcher supervises but never restarts: a
// node that dies stays dead and is reported, because hiding a crash would hide the bug.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, writeSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { stringify } from 'yaml';
import type { NodeStatusView } from '../api/backend.js';
import { loadAgentConfig } from '../cluster/config.js';
import { HaError } from '../errors.js';

/** Voter counts `up` starts: odd, so that a majority survives a minority of failures. */
export const upNodeCounts = [3, 5, 7] as const;
export const upLeaderDeadlineMs = 30_000;
/** How long stopping nodes get to hand off leadership and exit before they are killed. */
export const upStopDeadlineMs = 10_000;
const statusPollIntervalMs = 200;
const statusRequestTimeoutMs = 1000;
const localHost = '127.0.0.1';

export interface UpOptions {
  readonly nodes: number;
  readonly dir: string;
  readonly basePort: number;
  readonly apiBasePort: number;
  readonly leaderDeadlineMs?: number;
  readonly stopDeadlineMs?: number;
  /** Where progress lines go (default stdout) and errors (default stderr). */
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
}

interface UpNode {
  readonly id: string;
  readonly nodeDir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly peerPort: number;
  readonly apiPort: number;
}

interface RunningNode extends UpNode {
  readonly child: ChildProcess;
  /** Settles when the process has exited (or failed to start). */
  readonly exited: Promise<string>;
  done: boolean;
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('start a local cluster of agents and supervise it until Ctrl-C')
    .option('--nodes <count>', `number of nodes: ${upNodeCounts.join(', ')}`, parseNodeCount, 3)
    .option('--dir <dir>', 'cluster directory (certificates, configs, data, logs)', './.anya-ha/cluster')
    .option('--base-port <port>', 'peer port of node-1; node-i uses base + i - 1', parsePort, 7800)
    .option('--api-base-port <port>', 'HTTP API port of node-1; node-i uses base + i - 1', parsePort, 8080)
    .action(async (opts: { nodes: number; dir: string; basePort: number; apiBasePort: number }) => {
      process.exit(await runUp(opts));
    });
}

function parseNodeCount(text: string): number {
  const n = Number(text);
  if (!(upNodeCounts as readonly number[]).includes(n)) {
    throw new InvalidArgumentError(`expected one of ${upNodeCounts.join(', ')}, got "${text}"`);
  }
  return n;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`expected a port in 1..65535, got "${text}"`);
  }
  return port;
}

/**
 * Starts the cluster, waits for a leader, then supervises until SIGINT/SIGTERM. Resolves with the
 * process exit code: 0 after a requested stop, 1 when no leader was elected in time or every node
 * died. Throws HaError for bad options, busy ports or a directory holding a different cluster,
 * before anything was started.
 */
export async function runUp(options: UpOptions): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = options.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = resolve(options.dir);
  const layout = planCluster(dir, options);
  await checkPortsFree(layout);
  await prepareCluster(dir, layout.nodes, layout.reused);

  const running = layout.nodes.map(startNode);
  // Detached children do not die with this process; make sure an unexpected exit kills them.
  const killAll = () => running.forEach((n) => !n.done && n.child.kill('SIGKILL'));
  process.on('exit', killAll);
  for (const n of running) {
    out(`${n.id}  api http://${localHost}:${n.apiPort}  pid ${n.child.pid ?? '?'}  log ${n.logPath}`);
  }

  let stopping = false;
  let requestStop: () => void = () => {};
  const stopRequested = new Promise<void>((r) => (requestStop = r));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      err(`${signal} again: killing the remaining nodes now`);
      killAll();
      return;
    }
    stopping = true;
    requestStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let allDead: () => void = () => {};
  const allDeadPromise = new Promise<void>((r) => (allDead = r));
  for (const n of running) {
    void n.exited.then((how) => {
      if (!stopping) err(`${n.id} (pid ${n.child.pid ?? '?'}) exited unexpectedly: ${how}; see ${n.logPath}`);
      if (running.every((m) => m.done)) allDead();
    });
  }

  try {
    const leader = await Promise.race([
      waitForLeader(running, options.leaderDeadlineMs ?? upLeaderDeadlineMs, () => stopping),
      stopRequested.then(() => 'stopped' as const),
    ]);
    if (leader === 'stopped' || stopping) {
      await stopNodes(running, options.stopDeadlineMs ?? upStopDeadlineMs, out);
      return 0;
    }
    if (typeof leader === 'string') {
      err(`error: ${leader}`);
      err(`node logs:\n${running.map((n) => `  ${n.logPath}`).join('\n')}`);
      stopping = true;
      await stopNodes(running, options.stopDeadlineMs ?? upStopDeadlineMs, out);
      return 1;
    }
    out(`leader: ${leader.leaderId} (term ${leader.term})`);
    const why = await Promise.race([
      stopRequested.then(() => 'stop' as const),
      allDeadPromise.then(() => 'dead' as const),
    ]);
    if (why === 'dead' && !stopping) {
      err('error: every node has exited; nothing left to supervise');
      return 1;
    }
    await stopNodes(running, options.stopDeadlineMs ?? upStopDeadlineMs, out);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }
}

/** Node names, ports and paths; reads an existing cluster's node.yaml files but changes nothing. */
function planCluster(dir: string, options: UpOptions): { nodes: UpNode[]; reused: boolean } {
  const count = options.nodes;
  if (!(upNodeCounts as readonly number[]).includes(count)) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `--nodes: expected one of ${upNodeCounts.join(', ')}, got ${count}`,
    );
  }
  const peerEnd = options.basePort + count - 1;
  const apiEnd = options.apiBasePort + count - 1;
  if (peerEnd > 65535 || apiEnd > 65535) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `--base-port/--api-base-port: ${count} nodes need ports up to 65535`,
    );
  }
  if (options.basePort <= apiEnd && options.apiBasePort <= peerEnd) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `--base-port ${options.basePort}..${peerEnd} overlaps --api-base-port ${options.apiBasePort}..${apiEnd}`,
    );
  }
  const existing = existsSync(dir)
    ? readdirSync(dir).filter((name) => /^node-\d+$/.test(name) && existsSync(join(dir, name, 'node.yaml')))
    : [];
  const nodes: UpNode[] = [];
  for (let i = 1; i <= count; i++) {
    const nodeDir = join(dir, `node-${i}`);
    nodes.push({
      id: `node-${i}`,
      nodeDir,
      configPath: join(nodeDir, 'node.yaml'),
      logPath: join(nodeDir, 'agent.log'),
      peerPort: options.basePort + i - 1,
      apiPort: options.apiBasePort + i - 1,
    });
  }
  if (existing.length === 0) return { nodes, reused: false };

  // Restarting from disk: the node.yaml files are the cluster's identity (its members and
  // addresses), so they are kept as written and their ports win over the command line.
  const configs = existing.map((name) => loadAgentConfig(join(dir, name, 'node.yaml')));
  const sizes = new Set(configs.map((c) => c.nodes.length));
  if (sizes.size !== 1 || configs[0].nodes.length !== count || existing.length !== count) {
    const was = [...sizes].join(' or ');
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `${dir} already holds a ${was}-node cluster (${existing.length} node directories); refusing to start ` +
        `${count} nodes there. Run with --nodes ${was} to restart it, or pick another --dir.`,
      { dir },
    );
  }
  return {
    reused: true,
    nodes: nodes.map((n) => {
      const config = configs[existing.indexOf(n.id)];
      if (config === undefined) {
        throw new HaError(
          'HA_ERR_BAD_REQUEST',
          `${dir}: ${n.configPath} is missing; the cluster directory is incomplete`,
        );
      }
      return { ...n, peerPort: config.bindPort, apiPort: config.apiPort };
    }),
  };
}

/** Fails before anything starts, naming every busy port, rather than leaving agents half up. */
async function checkPortsFree(layout: { nodes: UpNode[] }): Promise<void> {
  const busy: string[] = [];
  for (const n of layout.nodes) {
    for (const [port, what] of [
      [n.peerPort, 'peer'],
      [n.apiPort, 'API'],
    ] as const) {
      const reason = await tryListen(port);
      if (reason !== null) busy.push(`${port} (${n.id} ${what}: ${reason})`);
    }
  }
  if (busy.length > 0) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `ports not available on ${localHost}: ${busy.join(', ')}. ` +
        'Stop whatever holds them or choose others with --base-port and --api-base-port.',
      { ports: busy },
    );
  }
}

function tryListen(port: number): Promise<string | null> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    server.listen({ port, host: localHost, exclusive: true }, () => server.close(() => done(null)));
  });
}

async function prepareCluster(dir: string, nodes: readonly UpNode[], reused: boolean): Promise<void> {
  const certsDir = join(dir, 'certs');
  await mkdir(certsDir, { recursive: true, mode: 0o700 });
  // Loaded on demand, so that `anya-ha agent` (same entry point) never loads the CA code.
  const { initCa, issueNodeCert } = await import('../transport/certs.js');
  const ca = await initCa(certsDir);
  for (const n of nodes) {
    await mkdir(join(n.nodeDir, 'data'), { recursive: true });
    const certPath = join(certsDir, `${n.id}.crt`);
    const keyPath = join(certsDir, `${n.id}.key`);
    // issueNodeCert replaces an existing certificate; reuse them so that a restart changes nothing.
    if (!existsSync(certPath) || !existsSync(keyPath)) {
      await issueNodeCert(certsDir, n.id, { hosts: [localHost, 'localhost'] });
    }
    if (reused) continue;
    const config = {
      nodeId: n.id,
      bindAddress: `${localHost}:${n.peerPort}`,
      apiAddress: `${localHost}:${n.apiPort}`,
      nodes: nodes.map((m) => `${m.id}@${localHost}:${m.peerPort}`),
      // Relative paths resolve against this file's directory, so the cluster directory can move.
      dataDir: 'data',
      tls: {
        ca: `../certs/${basename(ca.caCertPath)}`,
        cert: `../certs/${n.id}.crt`,
        key: `../certs/${n.id}.key`,
      },
    };
    const text = `# Written by "anya-ha up"; edits are kept on the next run.\n${stringify(config)}`;
    // Write then rename: a crash mid-write must not leave a truncated node.yaml behind.
    await writeFile(`${n.configPath}.tmp`, text, { mode: 0o644 });
    await rename(`${n.configPath}.tmp`, n.configPath);
  }
}

function startNode(node: UpNode): RunningNode {
  const mainPath = fileURLToPath(new URL('./main.js', import.meta.url));
  const log = openSync(node.logPath, 'a');
  writeSync(log, `--- anya-ha up: starting ${node.id} at ${new Date().toISOString()} ---\n`);
  let child: ChildProcess;
  try {
    // Detached: a terminal's Ctrl-C reaches only this launcher, which then stops the nodes in order.
    child = spawn(process.execPath, [mainPath, 'agent', '--config', node.configPath], {
      stdio: ['ignore', log, log],
      detached: true,
    });
  } finally {
    closeSync(log);
  }
  const running: RunningNode = {
    ...node,
    child,
    done: false,
    exited: new Promise((settle) => {
      const finish = (how: string) => {
        if (running.done) return;
        running.done = true;
        settle(how);
      };
      child.once('exit', (code, signal) =>
        finish(signal === null ? `exit code ${code}` : `signal ${signal}`),
      );
      child.once('error', (e) => finish(`failed to start: ${e.message}`));
    }),
  };
  return running;
}

interface LeaderSeen {
  readonly leaderId: string;
  readonly term: number;
}

/** Polls every node's status until a majority name the same leader; a string says why not. */
async function waitForLeader(
  nodes: readonly RunningNode[],
  deadlineMs: number,
  stopped: () => boolean,
): Promise<LeaderSeen | string> {
  const majority = Math.floor(nodes.length / 2) + 1;
  const deadline = Date.now() + deadlineMs;
  while (!stopped()) {
    const alive = nodes.filter((n) => !n.done).length;
    if (alive < majority) {
      return `only ${alive} of ${nodes.length} nodes are running; a leader needs ${majority}`;
    }
    const views = await Promise.all(nodes.map((n) => (n.done ? null : fetchStatus(n.apiPort))));
    const votes = new Map<string, number[]>();
    for (const v of views) {
      if (v === null || v.leaderId === null) continue;
      votes.set(v.leaderId, [...(votes.get(v.leaderId) ?? []), v.term]);
    }
    for (const [leaderId, terms] of votes) {
      if (terms.length >= majority) return { leaderId, term: Math.max(...terms) };
    }
    if (Date.now() >= deadline) {
      return `no leader elected within ${Math.round(deadlineMs / 1000)}s (a majority of ${majority} must agree)`;
    }
    await new Promise((r) => setTimeout(r, statusPollIntervalMs));
  }
  return 'stopped';
}

async function fetchStatus(apiPort: number): Promise<Pick<NodeStatusView, 'leaderId' | 'term'> | null> {
  try {
    const res = await fetch(`http://${localHost}:${apiPort}/v1/status`, {
      signal: AbortSignal.timeout(statusRequestTimeoutMs),
    });
    if (!res.ok) return null;
    const body = (await res.json()) as Partial<NodeStatusView>;
    const leaderId = typeof body.leaderId === 'string' ? body.leaderId : null;
    return { leaderId, term: typeof body.term === 'number' ? body.term : 0 };
  } catch {
    return null; // not listening yet, or restarting: the next poll asks again
  }
}

/** SIGTERM lets each agent hand off leadership and exit; SIGKILL only after the deadline. */
async function stopNodes(
  nodes: readonly RunningNode[],
  deadlineMs: number,
  out: (line: string) => void,
): Promise<void> {
  const live = nodes.filter((n) => !n.done);
  out(`stopping ${live.length} node${live.length === 1 ? '' : 's'}...`);
  for (const n of live) n.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)));
  await Promise.race([Promise.all(live.map((n) => n.exited)), timedOut]);
  clearTimeout(timer);
  const stragglers = live.filter((n) => !n.done);
  for (const n of stragglers) n.child.kill('SIGKILL');
  await Promise.all(stragglers.map((n) => n.exited));
  const killed =
    stragglers.length === 0
      ? ''
      : ` (killed after ${deadlineMs / 1000}s: ${stragglers.map((n) => n.id).join(', ')})`;
  out(`stopped ${live.length} node${live.length === 1 ? '' : 's'}${killed}`);
}
