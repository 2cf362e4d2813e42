// Simulated nodes: the real runtime, core, KV state machine and in-memory storage, on a simulated
// clock (with drift, steps and late timers), network and disk (writes take time). Crash, restart,
// pause and stall act on a node as they would on a process: a crash drops everything in memory
// and keeps only what storage made durable.
//
// Each node has an event loop shaped like Node's: timers and I/O (messages, connection resets,
// write completions) are separate inputs. While the loop is frozen (a paused process, or a stall:
// a long synchronous turn such as a GC pause) nothing runs; when it runs again, the timers that
// came due run first, in due order, then the I/O that queued up, as Node's event loop does after
// a long blocking turn. A clock step (a VM suspended and resumed) makes every timer due at once.
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

/** I/O events a frozen node buffers (like a socket receive buffer) before dropping more. */
const frozenQueueMax = 4096;

export interface SimNodeConfig {
  readonly tickMs: number;
  readonly raft: Partial<Omit<RaftOptions, 'id' | 'prng'>>;
  readonly snapshotEntries: number;
  readonly mutations?: Mutations;
  /** Each timer fires late by up to this much (a busy event loop); 0-delay callbacks are not late. */
  readonly timerLatenessMaxUs: number;
  /** Draws the duration of one durable write, in microseconds. */
  readonly writeLatencyUs: (prng: Prng) => number;
}

interface SimTimer {
  /** Due time on the node's own clock. */
  readonly dueMs: number;
  readonly seq: number;
  readonly latenessUs: number;
  readonly fn: () => void;
  event: EventHandle | null;
  cancelled: boolean;
}

export class SimNode {
  readonly storage = new MemoryStorage();
  runtime: RaftNode<KvResult> | null = null;
  kv: KvStore | null = null;
  up = false;
  /** Why the event loop is frozen, or null while it runs. */
  frozen: 'paused' | 'stalled' | null = null;
  /** Node-clock time at which the event loop last ran again after a freeze or a clock step. */
  lastUnfrozenAtMs = 0;
  private readonly timers = new Set<SimTimer>();
  private dueTimers: SimTimer[] = [];
  private ioQueue: (() => void)[] = [];
  private timerSeq = 0;
  /** Added to the node's clock by clock steps; kept across restarts (it is the host's clock). */
  private clockOffsetMs = 0;
  private generation = 0;
  private incarnation = 0;
  /** The node's own randomness for write latencies and timer lateness. */
  private readonly prng: Prng;

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
    this.prng = mulberry32(Math.floor(seedPrng.next() * 2 ** 32));
    network.register(id, {
      isUp: () => this.up,
      deliver: (fn) => this.io(fn),
    });
  }

  get paused(): boolean {
    return this.frozen !== null;
  }

  /** The node's monotonic clock, in milliseconds. */
  nowMs(): number {
    return (this.scheduler.nowUs / 1000) * this.clockRate + this.clockOffsetMs;
  }

  /** Global time (µs) at which the node's clock reads `nodeMs`. */
  private globalUsAt(nodeMs: number): number {
    return ((nodeMs - this.clockOffsetMs) / this.clockRate) * 1000;
  }

  /** An I/O callback of this process: not while crashed, queued while frozen. */
  io(fn: () => void): void {
    if (!this.up) return;
    if (this.frozen !== null) {
      if (this.ioQueue.length < frozenQueueMax) this.ioQueue.push(fn);
      return;
    }
    this.guarded(fn);
  }

  private guarded(fn: () => void): void {
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
    return {
      nowMs: () => this.nowMs(),
      setTimeout: (fn, delayMs) => {
        const latenessUs = delayMs > 0 ? Math.floor(this.prng.next() * this.cfg.timerLatenessMaxUs) : 0;
        const t: SimTimer = {
          dueMs: this.nowMs() + delayMs,
          seq: this.timerSeq++,
          latenessUs,
          fn: () => {
            if (gen === this.generation) fn();
          },
          event: null,
          cancelled: false,
        };
        this.timers.add(t);
        this.arm(t);
        return t as unknown as TimerHandle;
      },
      clearTimeout: (h) => {
        const t = h as unknown as SimTimer;
        t.cancelled = true;
        t.event?.cancel();
        t.event = null;
        this.timers.delete(t);
      },
    };
  }

  private arm(t: SimTimer): void {
    t.event = this.scheduler.at(this.globalUsAt(t.dueMs) + t.latenessUs, () => {
      t.event = null;
      this.timers.delete(t);
      this.fire([t]);
    });
  }

  /** Runs timers that are due now (in due order), or keeps them for when the loop runs again. */
  private fire(due: SimTimer[]): void {
    if (!this.up) return;
    if (this.frozen !== null) {
      this.dueTimers.push(...due);
      return;
    }
    due.sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq);
    for (const t of due) {
      if (!this.up || this.frozen !== null) {
        // A timer crashed the node (power loss) or froze it: the rest wait or vanish with it.
        if (this.up) this.dueTimers.push(t);
        continue;
      }
      if (!t.cancelled) this.guarded(t.fn);
    }
  }

  start(): void {
    this.generation++;
    this.incarnation++;
    this.up = true;
    this.frozen = null;
    this.dueTimers = [];
    this.ioQueue = [];
    this.lastUnfrozenAtMs = this.nowMs();
    this.checker.onRestart(this.id);
    const kv = new KvStore();
    const id = this.id;
    const checker = this.checker;
    const storage = this.storage;
    const gen = this.generation;
    const transport = this.network.transport(id);
    const runtime: RaftNode<KvResult> = new RaftNode<KvResult>({
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
        // The write takes time; it is durable only when it completes, and its completion is an
        // I/O event of this process (late while frozen, never if the process died meanwhile).
        persistAsync: (batch: PersistBatch, done: () => void) => {
          checker.onSubmit(id, batch);
          this.scheduler.after(this.cfg.writeLatencyUs(this.prng), () => {
            if (gen !== this.generation) return;
            this.io(() => {
              if (gen !== this.generation) return;
              storage.persist(batch); // throws on simulated power loss: the batch is lost whole
              checker.onPersist(id, batch, runtime.status());
              done();
            });
          });
        },
        compact: (snap) => {
          storage.compact(snap);
          checker.onCompact(id, snap.meta.index, snap.meta.term);
        },
        close: () => {},
      },
      transport: {
        ...transport,
        send: (msg) => {
          checker.onSend(msg);
          transport.send(msg);
        },
        start: (handler) =>
          transport.start({
            onMessage: (msg) => {
              checker.onReceive(id, msg, this.nowMs());
              handler.onMessage(msg);
            },
            onPeerDown: (peer) => handler.onPeerDown(peer),
          }),
      },
      stateMachine: kv,
      clock: this.clock(),
      prng: mulberry32(Math.floor(this.seedPrng.next() * 2 ** 32)),
      bootId: `b${this.incarnation}`,
      snapshotEntries: this.cfg.snapshotEntries,
      // Snapshots often, whatever their size: the point is to exercise sending and installing them.
      snapshotLogRatio: 0,
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
    this.runtime?.halt();
    this.network.detach(this.id);
    this.generation++;
    this.up = false;
    this.frozen = null;
    for (const t of this.timers) t.event?.cancel();
    this.timers.clear();
    this.dueTimers = [];
    this.ioQueue = [];
    this.runtime = null;
    this.kv = null;
    // The process is gone: its peers see their connections close (unless the link is cut).
    const seenBy = this.network.connectionClosed(this.id, 1000);
    this.trace(`${this.id} crashes; resets reach {${seenBy.join(',')}}`);
  }

  /** A frozen process (SIGSTOP, a paused VM): nothing runs until resume(). */
  pause(): void {
    if (!this.up || this.frozen !== null) return;
    this.trace(`${this.id} pauses`);
    this.frozen = 'paused';
  }

  /** The event loop is blocked for `forMs` (a GC pause, a big synchronous task). */
  stall(forMs: number): void {
    if (!this.up || this.frozen !== null) return;
    this.trace(`${this.id} stalls for ${forMs} ms`);
    this.frozen = 'stalled';
    const gen = this.generation;
    this.scheduler.after(forMs * 1000, () => {
      if (gen === this.generation && this.frozen === 'stalled') this.unfreeze();
    });
  }

  resume(): void {
    if (!this.up || this.frozen !== 'paused') return;
    this.unfreeze();
  }

  /** Ends a pause or a stall (the liveness phase). */
  thaw(): void {
    if (this.up && this.frozen !== null) this.unfreeze();
  }

  /** The monotonic clock jumps forward (a VM suspended and resumed): due timers fire at once. */
  stepClock(byMs: number): void {
    if (!this.up) return;
    this.trace(`${this.id} clock steps forward ${byMs} ms`);
    this.clockOffsetMs += byMs;
    const now = this.nowMs();
    const due: SimTimer[] = [];
    for (const t of this.timers) {
      t.event?.cancel();
      if (t.dueMs <= now) {
        t.event = null;
        due.push(t);
      } else this.arm(t);
    }
    for (const t of due) this.timers.delete(t);
    if (this.frozen === null) this.lastUnfrozenAtMs = now;
    this.fire(due);
  }

  private unfreeze(): void {
    this.trace(
      `${this.id} runs again (${this.dueTimers.length} due timers, ${this.ioQueue.length} queued I/O events)`,
    );
    this.frozen = null;
    this.lastUnfrozenAtMs = this.nowMs();
    const due = this.dueTimers;
    const queued = this.ioQueue;
    this.dueTimers = [];
    this.ioQueue = [];
    // Timers first, then I/O: the order of Node's event loop after a long blocking turn.
    this.fire(due);
    for (const fn of queued) this.io(fn);
  }
}
