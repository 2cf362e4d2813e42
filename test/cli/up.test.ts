import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runUp } from '../../src/cli/up.js';
import { HaError } from '../../src/errors.js';

const mainPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const leaderDeadlineMs = 45_000;
const exitDeadlineMs = 20_000;

const tempDirs: string[] = [];
after(() => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'anya-ha-up-'));
  tempDirs.push(d);
  return d;
}

function listen(port: number): Promise<Server | null> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(null));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => done(s));
  });
}

/**
 * The first of `count` consecutive free ports: the kernel picks one, the rest are probed. One range
 * per test, split into peer and API ports, so that the two can never overlap.
 */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const probe = await listen(0);
    assert.ok(probe);
    const base = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    if (base + count > 65535) continue;
    const held: Server[] = [];
    for (let p = base; p < base + count; p++) {
      const s = await listen(p);
      if (s === null) break;
      held.push(s);
    }
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    if (held.length === count) return base;
  }
  assert.fail('no free port range found');
}

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface UpRun {
  readonly lines: string[];
  readonly stderr: () => string;
  waitForLine(pattern: RegExp, deadlineMs: number): Promise<string>;
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

function startUp(dir: string, basePort: number, apiBasePort: number): UpRun {
  const args = [
    'up',
    '--nodes',
    '3',
    '--dir',
    dir,
    '--base-port',
    `${basePort}`,
    '--api-base-port',
    `${apiBasePort}`,
  ];
  const child = spawn(process.execPath, [mainPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  void exited.then(() => waiters.splice(0).forEach((w) => w()));
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  return {
    lines,
    stderr: () => stderr,
    async waitForLine(pattern, deadlineMs) {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) return found;
        if (hasExited || Date.now() > deadline) {
          child.kill('SIGKILL');
          assert.fail(`no line matching ${pattern}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, 250);
          waiters.push(() => (clearTimeout(t), r()));
        });
      }
    },
    async stop(signal) {
      child.kill(signal);
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), exitDeadlineMs).unref());
      const result = await Promise.race([exited, timeout]);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        assert.fail(`up did not exit within ${exitDeadlineMs} ms after ${signal}`);
      }
      return result;
    },
  };
}

/** The pids printed by up, one per "node-i  api ...  pid N" line. */
const pidsOf = (lines: readonly string[]): number[] =>
  lines.flatMap((l) => {
    const m = /^node-\d+ .*\bpid (\d+)\b/.exec(l);
    return m === null ? [] : [Number(m[1])];
  });

describe('anya-ha up', () => {
  it('starts 3 agents that elect a leader, and on SIGINT stops every agent and exits 0', async () => {
    const dir = join(tempDir(), 'cluster');
    const ports = await freePortRange(6);
    const run = startUp(dir, ports, ports + 3);
    const leader = await run.waitForLine(/^leader: node-[1-3] \(term \d+\)$/, leaderDeadlineMs);
    assert.ok(leader);
    const pids = pidsOf(run.lines);
    assert.equal(pids.length, 3, run.lines.join('\n'));
    assert.ok(pids.every(isRunning));

    assert.equal(await run.stop('SIGINT'), 0, run.stderr());
    assert.deepEqual(pids.filter(isRunning), [], 'every agent has exited');
    for (const i of [1, 2, 3]) {
      assert.ok(existsSync(join(dir, `node-${i}`, 'node.yaml')));
      assert.ok(existsSync(join(dir, `node-${i}`, 'agent.log')));
      assert.ok(existsSync(join(dir, 'certs', `node-${i}.crt`)));
    }
  });

  it('restarts the same cluster from disk on a second run, keeping certificates and configs', async () => {
    const dir = join(tempDir(), 'cluster');
    const basePort = await freePortRange(6);
    const apiBasePort = basePort + 3;
    const first = startUp(dir, basePort, apiBasePort);
    await first.waitForLine(/^leader: /, leaderDeadlineMs);
    assert.equal(await first.stop('SIGTERM'), 0, first.stderr());
    const cert = readFileSync(join(dir, 'certs', 'node-2.crt'));
    const config = readFileSync(join(dir, 'node-2', 'node.yaml'));

    const second = startUp(dir, basePort, apiBasePort);
    await second.waitForLine(/^leader: /, leaderDeadlineMs);
    const pids = pidsOf(second.lines);
    assert.equal(await second.stop('SIGINT'), 0, second.stderr());
    assert.deepEqual(pids.filter(isRunning), []);
    assert.deepEqual(readFileSync(join(dir, 'certs', 'node-2.crt')), cert);
    assert.deepEqual(readFileSync(join(dir, 'node-2', 'node.yaml')), config);
  });

  it('refuses ports already in use, naming them, before creating or starting anything', async () => {
    const dir = join(tempDir(), 'cluster');
    const basePort = await freePortRange(6);
    const apiBasePort = basePort + 3;
    const held = await listen(apiBasePort + 1);
    assert.ok(held);
    try {
      await assert.rejects(
        runUp({ nodes: 3, dir, basePort, apiBasePort, out: () => {}, err: () => {} }),
        (err) =>
          err instanceof HaError &&
          err.code === 'HA_ERR_BAD_REQUEST' &&
          err.message.includes(`${apiBasePort + 1} (node-2 API`),
      );
      assert.equal(existsSync(dir), false);
    } finally {
      await new Promise((r) => held.close(r));
    }
  });

  it('refuses a directory that holds a cluster of a different size', async () => {
    const dir = tempDir();
    for (const i of [1, 2, 3]) {
      mkdirSync(join(dir, `node-${i}`));
      const yaml = [
        `nodeId: node-${i}`,
        `bindAddress: 127.0.0.1:${7800 + i}`,
        'nodes: [node-1@127.0.0.1:7801, node-2@127.0.0.1:7802, node-3@127.0.0.1:7803]',
        'dataDir: data',
        'tls: { ca: ../certs/ca.crt, cert: c, key: k }',
      ].join('\n');
      writeFileSync(join(dir, `node-${i}`, 'node.yaml'), yaml);
    }
    await assert.rejects(
      runUp({ nodes: 5, dir, basePort: 7800, apiBasePort: 8080, out: () => {}, err: () => {} }),
      (err) => err instanceof HaError && /holds a 3-node cluster.*--nodes 3/.test(err.message),
    );
    assert.equal(existsSync(join(dir, 'certs')), false, 'nothing was created');
  });
});
