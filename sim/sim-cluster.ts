// Simulated nodes: the real runtime, core, KV state machine and in-memory storage, on a simulated
// clock (with drift) and network. Crash, restart and pause act on a node as they would on a
// process: a crash drops everything in memory and keeps only what storage made durable.
import { RaftNode } from '../src/runtime/raft-node.js';
import type { Clock, TimerHandle } from '../src/runtime/clock.js';
import type { ClusterConfig, Mutations, NodeId, Prng, RaftOptions } from '../src/raft/types.js';
import { mulberry32 } from '../src/raft/index.js';
import { MemoryStorage } from '../src/storage/memory.js';
import { KvStore } from '../src/state/kv.js';
import type { KvResult } from '../src/state/kv-types.js';
import type { PersistBatch } from '../src/storage/types.js';
import type { EventHandle, Scheduler } from './scheduler.js';
import type { SimNetwork } from './sim-network.js';
import type { InvariantChecker } from './invariants.js';

/** Messages a paused node buffers (like a socket receive buffer) before dropping more. */
const pausedQueueMax = 4096;

export interface SimNodeConfig {
  readonly tickMs: number;
  readonly raft: Partial<Omit<RaftOptions, 'id' | 'prng'>>;
  readonly snapshotEntries: number;
  readonly mutations?: Mutations;
}

export class SimNode {
  readonly storage = new MemoryStorage();
  runtime: RaftNode<KvResult> | null = null;
  kv: KvStore | null = null;
  up = false;
  paused = false;
  private pausedQueue: (() => void)[] = [];
  private generation = 0;
  private incarnation = 0;

  constructor(
    readonly id: NodeId,
    /** Clock rate relative to global time, e.g. 1.02 runs 2% fast. */
    readonly clockRate: number,
    private readonly scheduler: Scheduler,
    private readonly network: SimNetwork,
    private readonly checker: InvariantChecker,
    private readonly seedPrng: Prng,
    private readonly bootstrap: ClusterConfig,
    private readonly cfg: SimNodeConfig,
    private readonly trace: (line: string) => void,
  ) {
    network.register(id, {
      isUp: () => this.up,
      deliver: (fn) => this.run(fn),
    });
  }

  /** Runs `fn` as this node's process would: not while crashed, later if paused. */
  run(fn: () => void): void {
    if (!this.up) return;
    if (this.paused) {
      if (this.pausedQueue.length < pausedQueueMax) this.pausedQueue.push(fn);
      return;
    }
    try {
      fn();
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('simulated power loss')) {
        this.trace(`${this.id} lost power during fsync`);
        this.crash();
        return;
      }
      throw err;
    }
  }

  private clock(): Clock {
    const gen = this.generation;
    const rate = this.clockRate;
    const s = this.scheduler;
    return {
      nowMs: () => (s.nowUs / 1000) * rate,
      setTimeout: (fn, delayMs) => {
        const h = s.after((delayMs * 1000) / rate, () => {
          if (gen === this.generation) this.run(fn);
        });
        return h as unknown as TimerHandle;
      },
      clearTimeout: (h) => (h as unknown as EventHandle).cancel(),
    };
  }

  start(): void {
    this.generation++;
    this.incarnation++;
    this.up = true;
    this.paused = false;
    this.pausedQueue = [];
    this.checker.onRestart(this.id);
    const kv = new KvStore();
    const id = this.id;
    const checker = this.checker;
    const storage = this.storage;
    const runtime = new RaftNode<KvResult>({
      id,
      bootstrap: this.bootstrap,
      tickMs: this.cfg.tickMs,
      raft: this.cfg.raft,
      storage: {
        load: (b) => storage.load(b),
        persist: (batch: PersistBatch) => {
          storage.persist(batch);
          checker.onPersist(id, batch, runtime.status());
        },
        compact: (snap) => {
          storage.compact(snap);
          checker.mirror(id).installSnapshot(snap.meta.index, snap.meta.term);
        },
        close: () => {},
      },
      transport: this.network.transport(id),
      stateMachine: kv,
      clock: this.clock(),
      prng: mulberry32(Math.floor(this.seedPrng.next() * 2 ** 32)),
      bootId: `b${this.incarnation}`,
      snapshotEntries: this.cfg.snapshotEntries,
      mutations: this.cfg.mutations,
      hooks: {
        onApply: (e) => checker.onApply(id, e),
        onLeaseRead: (index) => checker.onLeaseRead(id, index),
        onRoleChange: (role, leader, term) =>
          this.trace(`${id} is ${role} in term ${term}, leader ${leader ?? '-'}`),
      },
    });
    this.runtime = runtime;
    this.kv = kv;
    // start() only attaches the handler and schedules timers; it completes synchronously here.
    void runtime.start();
  }

  crash(): void {
    if (!this.up) return;
    this.trace(`${this.id} crashes`);
    this.runtime?.halt();
    this.network.detach(this.id);
    this.generation++;
    this.up = false;
    this.paused = false;
    this.pausedQueue = [];
    this.runtime = null;
    this.kv = null;
    // The process is gone: its peers see their connections close (unless the link is cut).
    this.network.connectionClosed(this.id, 1000);
  }

  pause(): void {
    if (!this.up || this.paused) return;
    this.trace(`${this.id} pauses`);
    this.paused = true;
  }

  resume(): void {
    if (!this.up || !this.paused) return;
    this.trace(`${this.id} resumes (${this.pausedQueue.length} queued events)`);
    this.paused = false;
    const queued = this.pausedQueue;
    this.pausedQueue = [];
    for (const fn of queued) this.run(fn);
  }
}
