// Filling a cluster with a large state and bringing a wiped follower back: shared by the catch-up
// integration test and the `catchup` benchmark.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { httpJson, type LocalCluster } from './local-cluster.js';

export interface FillOptions {
  /** Bytes of state to write (keys times value size, roughly). */
  readonly bytes: number;
  readonly valueBytes: number;
  readonly concurrency: number;
  /** Per-request deadline; a failed or timed-out PUT is retried (PUT of a fixed value is idempotent). */
  readonly requestTimeoutMs: number;
  readonly deadlineMs: number;
}

/** The key of fill entry i: fill/000000, fill/000001, ... */
export const fillKey = (i: number): string => `fill/${String(i).padStart(6, '0')}`;

/** The value of fill entry i: valueBytes characters, different for every key. */
export function fillValue(i: number, valueBytes: number): string {
  const head = `${i}:`;
  return head + 'x'.repeat(Math.max(0, valueBytes - head.length));
}

/** PUTs bytes/valueBytes distinct keys through every node in turn; resolves with the key count. */
export async function fill(cluster: LocalCluster, o: FillOptions): Promise<number> {
  const count = Math.ceil(o.bytes / o.valueBytes);
  const urls = cluster.nodes.map((n) => n.apiUrl);
  const until = Date.now() + o.deadlineMs;
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      for (let attempt = 0; ; attempt++) {
        if (Date.now() > until) throw new Error(`fill: key ${i} of ${count} not written before the deadline`);
        const url = `${urls[(w + attempt) % urls.length]}/v1/kv/${encodeURIComponent(fillKey(i))}`;
        try {
          const r = await httpJson(url, 'PUT', { value: fillValue(i, o.valueBytes) }, o.requestTimeoutMs);
          if (r.status === 200) break;
        } catch {
          // a node restarting or a timeout: try the next node
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)));
  return count;
}

/** Stops node i with SIGKILL and removes its data directory (as an operator replacing a disk). */
export async function wipe(cluster: LocalCluster, i: number): Promise<void> {
  cluster.signal(i, 'SIGKILL');
  await cluster.waitExit(i);
  rmSync(join(cluster.dir, cluster.nodes[i]!.id, 'data'), { recursive: true, force: true });
}
