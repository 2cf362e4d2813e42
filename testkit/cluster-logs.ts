// The agents' own logs, for a failing integration test: LocalCluster.destroy() removes the
// directory they are in, so a test prints their tails before it does. Test-support code.
import { readFileSync } from 'node:fs';
import type { LocalCluster } from './local-cluster.js';

/** Lines of each agent's log printed for a failure. */
export const failureLogLinesMax = 40;

/** The last `linesMax` lines of every node's agent log, each line prefixed with its node id. */
export function tailLogs(cluster: LocalCluster, linesMax = failureLogLinesMax): string {
  return cluster.nodes
    .map((n) => {
      let text: string;
      try {
        text = readFileSync(n.logPath, 'utf8');
      } catch (err) {
        return `${n.id}: no log (${(err as Error).message})`;
      }
      const lines = text.trimEnd().split('\n').slice(-linesMax);
      return lines.map((l) => `${n.id}| ${l}`).join('\n');
    })
    .join('\n');
}

/** Runs `body`; if it throws, prints the agents' log tails to stderr and rethrows. */
export async function withLogsOnFailure<T>(cluster: LocalCluster, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    process.stderr.write(
      `--- agent logs (last ${failureLogLinesMax} lines each) ---\n${tailLogs(cluster)}\n`,
    );
    throw err;
  }
}
