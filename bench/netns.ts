// Partition faults need iptables rules that must not touch the machine's own firewall, so the
// benchmark re-executes itself inside a network namespace it creates for the run
// (anya-bench-<pid>), with only loopback up, and removes the namespace afterwards whatever
// happened. Inside, rules are added to the namespace's own tables and flushed to heal.
import { execFileSync, spawn } from 'node:child_process';
import { progress } from './stats.js';

export function iptables(args: readonly string[]): void {
  execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Appends all rules in one iptables-restore call, so the cut takes effect at once rather than
 * link by link. Each rule is [CHAIN, ...match and target].
 */
export function cut(rules: readonly (readonly string[])[]): void {
  const lines = [
    '*filter',
    ...rules.map(([chain, ...rest]) => `-A ${chain} ${rest.join(' ')}`),
    'COMMIT',
    '',
  ];
  execFileSync('iptables-restore', ['-w', '--noflush'], {
    input: lines.join('\n'),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

/** Removes every filter rule in the namespace. */
export function heal(): void {
  iptables(['-F']);
}

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs `node <script> <args> --inside` in a fresh namespace and resolves with its exit code. The
 * namespace is deleted on every path out: normal exit, error, SIGINT or SIGTERM to this process.
 */
export async function runInNamespace(script: string, args: readonly string[]): Promise<number> {
  const name = `anya-bench-${process.pid}`;
  ip(['netns', 'add', name]);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    // Anything the inner run left behind in the namespace was started by it: stop it by pid.
    try {
      for (const pid of ip(['netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } catch {
      // namespace listing failed: delete it anyway
    }
    try {
      ip(['netns', 'del', name]);
    } catch (err) {
      progress(`could not delete namespace ${name}: ${(err as Error).message}`);
    }
  };
  process.once('exit', remove);
  try {
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    progress(`running inside network namespace ${name}`);
    const child = spawn('ip', ['netns', 'exec', name, process.execPath, script, ...args, '--inside'], {
      stdio: 'inherit',
    });
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    } finally {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    }
  } finally {
    remove();
    process.off('exit', remove);
  }
}
