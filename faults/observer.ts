// Polls every node's /v1/status while the test runs and keeps what each said: the evidence for
// the election-safety and fencing-token checks. One poller per node, one request at a time, so a
// node's observations arrive in the order it answered them.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeStatusView } from '../src/api/backend.js';
import { httpJson } from '../testkit/local-cluster.js';
import type { StatusObservation } from './checks.js';
import { clientSourceAddress } from './clients.js';

export const statusPollIntervalMs = 200;
export const statusTimeoutMs = 300;
/** Bound on kept observations: 5 nodes at 5/s for well over an hour. */
export const observationsMax = 200_000;

export class StatusObserver {
  readonly observations: StatusObservation[] = [];
  private stopping = false;
  private pollers: Promise<void>[] = [];

  constructor(private readonly apiUrls: readonly string[]) {}

  start(): void {
    this.pollers = this.apiUrls.map((url) => this.poll(url));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.pollers);
  }

  /**
   * Asks every node once, now. Not recorded: these requests race the pollers', so recording them
   * could put one node's answers out of the order it gave them.
   */
  async pollAll(): Promise<(StatusObservation | null)[]> {
    return Promise.all(this.apiUrls.map((url) => this.pollOnce(url, false)));
  }

  /** The leader with the highest term among the answers to one round of polls, if any. */
  async currentLeader(): Promise<string | null> {
    const views = await this.pollAll();
    let best: StatusObservation | null = null;
    for (const v of views) if (v && v.role === 'leader' && (!best || v.term > best.term)) best = v;
    return best?.nodeId ?? null;
  }

  private async poll(url: string): Promise<void> {
    while (!this.stopping) {
      await this.pollOnce(url, true);
      await sleep(statusPollIntervalMs);
    }
  }

  private async pollOnce(url: string, record: boolean): Promise<StatusObservation | null> {
    try {
      const r = await httpJson(`${url}/v1/status`, 'GET', undefined, statusTimeoutMs, clientSourceAddress);
      if (r.status !== 200) return null;
      const v = r.body as NodeStatusView;
      const o: StatusObservation = {
        atMs: performance.now(),
        nodeId: v.nodeId,
        role: v.role,
        term: v.term,
        leaderId: v.leaderId,
        fencingToken: v.fencingToken,
        commitIndex: v.commitIndex,
      };
      if (record && this.observations.length < observationsMax) this.observations.push(o);
      return o;
    } catch {
      return null;
    }
  }
}
