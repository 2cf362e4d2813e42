// The outer process: makes a network namespace for the run, runs the test inside it, and always
// deletes the namespace afterwards. Inside, the test owns the loopback interface, the ports and
// the iptables rules; the host's are never touched, and a crashed run leaves nothing behind but
// what this process cleans up.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runDirPrefix } from './run.js';

/** Grace the inner process gets after SIGTERM before SIGKILL. */
export const innerStopGraceMs = 20_000;
/** Beyond the fault phase: start-up, final reads, checks, and the inner process's own bound. */
export const outerSlackMs = 240_000;

const mainJs = fileURLToPath(new URL('./main.js', import.meta.url));

export function namespaceName(): string {
  return `anya-faults-${process.pid}`;
}

export async function runOutside(innerArgs: readonly string[], minutes: number): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('fault tests need root (ip netns, iptables); run them as root or in the CI container');
    return 2;
  }
  const ns = namespaceName();
  let deleted = false;
  const deleteNamespace = (): void => {
    if (deleted) return;
    deleted = true;
    killNamespaceProcesses(ns);
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never created, or already gone
    }
    // The inner run removes its folder itself unless it was killed.
    const prefix = runDirPrefix(ns);
    for (const name of readdirSync(dirname(prefix))) {
      const path = join(dirname(prefix), name);
      if (path.startsWith(prefix)) rmSync(path, { recursive: true, force: true });
    }
  };
  // Last resort for a crash of this process: 'exit' handlers run even then (synchronously).
  process.once('exit', deleteNamespace);

  let child: ChildProcess | null = null;
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    signalled = sig;
    // A terminal's Ctrl-C reaches the inner process too; a SIGTERM sent to us alone must be passed on.
    child?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'inherit' });
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { stdio: 'inherit' });
    console.log(`network namespace ${ns}`);
    const inner = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, mainJs, '--inside', '--netns', ns, ...innerArgs],
      { stdio: 'inherit' },
    );
    child = inner;
    if (signalled) inner.kill('SIGTERM');
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      inner.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const spawnFailed = new Promise<{ code: number; signal: null }>((resolve) =>
      inner.once('error', (err) => {
        console.error(`could not start the inner run: ${err.message}`);
        resolve({ code: 2, signal: null });
      }),
    );
    const boundMs = minutes * 60_000 + outerSlackMs;
    const overdue = sleep(boundMs, 'overdue' as const, { ref: false });
    const outcome = await Promise.race([exited, spawnFailed, overdue]);
    if (outcome === 'overdue') {
      console.error(`the inner run exceeded ${boundMs} ms; stopping it`);
      inner.kill('SIGTERM');
      const grace = sleep(innerStopGraceMs, 'grace' as const, { ref: false });
      if ((await Promise.race([exited, grace])) === 'grace') {
        inner.kill('SIGKILL');
        await exited;
      }
      return 124;
    }
    if (outcome.code !== null) return outcome.code;
    return 128 + (outcome.signal ? constants.signals[outcome.signal] : 15);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    deleteNamespace();
    console.log(`deleted network namespace ${ns}`);
  }
}

/**
 * SIGKILLs whatever still runs inside the namespace (agents orphaned by a killed inner run):
 * every such process descends from this one, and a namespace with processes in it outlives
 * `ip netns del`.
 */
function killNamespaceProcesses(ns: string): void {
  let pids: number[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
