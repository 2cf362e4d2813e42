// The simulated network: per-message delay (which reorders), loss, duplication, and blocked
// directed links (symmetric and asymmetric partitions, an isolated leader, flapping links).
// A closed connection (crashed peer) is reported to the other side, as a TCP reset would be,
// unless the link is blocked: then nothing reaches the other side, not even the reset. Resets
// need not be seen by everyone: a crash's reset may reach only some peers (the others find out
// by timeout), and one end of a live connection may see it reset while the other sees nothing.
import type { Message, NodeId } from '../src/raft/types.js';
import type { Transport, TransportHandler } from '../src/transport/types.js';
import type { Prng } from '../src/raft/types.js';
import type { Scheduler } from './scheduler.js';
import { reconnectDelayMaxMsDefault, reconnectDelayMinMsDefault } from '../src/transport/tcp.js';

export interface NetworkFaults {
  /** Probability in [0, 1) that a message is lost. */
  lossRatio: number;
  /** Probability that a message is delivered twice. */
  duplicateRatio: number;
  /** Delay bounds in microseconds; each message draws its own, so messages reorder. */
  delayMinUs: number;
  delayMaxUs: number;
}

export interface NetworkEndpoint {
  /** False while the node is crashed: messages to it vanish. */
  isUp(): boolean;
  /** Delivers now, or queues while the node is paused. */
  deliver(fn: () => void): void;
}

export class SimNetwork {
  readonly faults: NetworkFaults = { lossRatio: 0, duplicateRatio: 0, delayMinUs: 200, delayMaxUs: 2000 };
  private readonly blocked = new Set<string>();
  /** Directed links whose connection is down until a reconnect (microseconds). */
  private readonly downUntilUs = new Map<string, number>();
  /** The newest redial loop of each directed link: an older one (an earlier crash) stops. */
  private readonly redialChains = new Map<string, number>();
  /** Directed links whose sender missed the reset of a crash: the next send finds out. */
  private readonly halfOpen = new Set<string>();
  private healEpoch = 0;
  private readonly handlers = new Map<NodeId, TransportHandler>();
  private readonly endpoints = new Map<NodeId, NetworkEndpoint>();
  messagesSent = 0;
  messagesDropped = 0;
  /** Snapshot chunks delivered, and answers asking the leader to resume elsewhere. */
  snapshotChunksDelivered = 0;
  snapshotRewinds = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
  ) {}

  register(id: NodeId, endpoint: NetworkEndpoint): void {
    this.endpoints.set(id, endpoint);
  }

  transport(id: NodeId): Transport {
    return {
      start: async (handler) => {
        this.handlers.set(id, handler);
      },
      send: (msg) => this.send(msg),
      setPeers: () => {},
      close: async () => {
        this.handlers.delete(id);
      },
    };
  }

  /** Attaches the handler synchronously (the simulator cannot await). */
  attach(id: NodeId, handler: TransportHandler): void {
    this.handlers.set(id, handler);
  }

  detach(id: NodeId): void {
    this.handlers.delete(id);
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(`${from}>${to}`);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    if (this.blocked.has(`${from}>${to}`)) return true;
    const downUntil = this.downUntilUs.get(`${from}>${to}`);
    return downUntil !== undefined && this.scheduler.nowUs < downUntil;
  }

  /** Every link up, and resets scheduled before this moment never happen. */
  healAll(): void {
    this.blocked.clear();
    this.downUntilUs.clear();
    this.halfOpen.clear();
    this.healEpoch++;
  }

  blockedLinks(): number {
    return this.blocked.size;
  }

  /**
   * Tells reachable nodes that their connection to `peer` closed: every one of them, or (a
   * quarter of crashes) only some, as when a host dies without its kernel sending resets.
   */
  connectionClosed(peer: NodeId, delayUs: number): NodeId[] {
    const partial = this.prng.next() < 0.25;
    const seenBy: NodeId[] = [];
    for (const id of this.endpoints.keys()) {
      if (id === peer || this.isBlocked(peer, id)) continue;
      if (partial && this.prng.next() < 0.5) {
        // No reset reached this peer (the host died silently): its connection is half-open
        // and it goes on sending into it. The restarted process never gets those messages:
        // the first one after the restart draws a reset from the peer's host, and the sender
        // then redials like everyone else.
        this.halfOpen.add(`${id}>${peer}`);
        continue;
      }
      seenBy.push(id);
      this.halfOpen.delete(`${id}>${peer}`);
      this.resetSeenBy(id, peer, delayUs);
      const epoch = this.healEpoch;
      this.scheduler.after(delayUs, () => {
        if (epoch === this.healEpoch) this.redial(id, peer);
      });
    }
    return seenBy;
  }

  /**
   * The observer's own connection to the crashed peer is gone too: what it sends meanwhile is
   * lost, and it dials again on the production transport's schedule (outbound-link.ts: after
   * max(min, ceiling * [0.5, 1]) with the ceiling doubling from reconnectDelayMinMs up to
   * reconnectDelayMaxMs on every refused attempt). The first attempt after the peer is up again
   * succeeds, so a restarted node is reached 0 to one backoff step after its restart.
   */
  private redial(from: NodeId, peer: NodeId): void {
    const key = `${from}>${peer}`;
    const epoch = this.healEpoch;
    const chain = (this.redialChains.get(key) ?? 0) + 1;
    this.redialChains.set(key, chain);
    this.downUntilUs.set(key, Number.POSITIVE_INFINITY);
    const attempt = (failures: number): void => {
      const ceilingMs = Math.min(reconnectDelayMaxMsDefault, reconnectDelayMinMsDefault * 2 ** failures);
      const delayMs = Math.max(reconnectDelayMinMsDefault, ceilingMs * (0.5 + 0.5 * this.prng.next()));
      this.scheduler.after(Math.floor(delayMs * 1000), () => {
        if (epoch !== this.healEpoch || this.redialChains.get(key) !== chain) return;
        if (this.endpoints.get(peer)?.isUp()) this.downUntilUs.delete(key);
        else attempt(failures + 1);
      });
    };
    attempt(0);
  }

  /**
   * `observer` alone sees its connection to `peer` reset; `peer` sees nothing, nobody crashed.
   * With `reconnectUs`, the connection that carried `peer`'s messages to `observer` is gone:
   * what was in flight on it is lost, and so is everything `peer` sends until it has
   * reconnected (its transport's jittered backoff).
   */
  resetSeenBy(observer: NodeId, peer: NodeId, delayUs: number, reconnectUs = 0): void {
    const ep = this.endpoints.get(observer);
    if (!ep) return;
    const epoch = this.healEpoch;
    this.scheduler.after(delayUs, () => {
      if (epoch !== this.healEpoch) return;
      if (reconnectUs > 0) this.downUntilUs.set(`${peer}>${observer}`, this.scheduler.nowUs + reconnectUs);
      const h = this.handlers.get(observer);
      if (!h || !ep.isUp()) return;
      ep.deliver(() => h.onPeerDown(peer));
    });
  }

  private send(msg: Message): void {
    this.messagesSent++;
    const f = this.faults;
    const link = `${msg.from}>${msg.to}`;
    if (this.halfOpen.has(link) && this.endpoints.get(msg.to)?.isUp() && !this.isBlocked(msg.from, msg.to)) {
      this.halfOpen.delete(link);
      this.messagesDropped++;
      const rttUs = 2 * f.delayMinUs + Math.floor(this.prng.next() * 2 * (f.delayMaxUs - f.delayMinUs));
      this.resetSeenBy(msg.from, msg.to, rttUs);
      this.downUntilUs.set(link, Number.POSITIVE_INFINITY);
      const epoch = this.healEpoch;
      this.scheduler.after(rttUs, () => {
        if (epoch === this.healEpoch) this.redial(msg.from, msg.to);
      });
      return;
    }
    if (this.isBlocked(msg.from, msg.to) || this.prng.next() < f.lossRatio) {
      this.messagesDropped++;
      return;
    }
    const copies = this.prng.next() < f.duplicateRatio ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delayUs = f.delayMinUs + Math.floor(this.prng.next() * (f.delayMaxUs - f.delayMinUs));
      this.scheduler.after(delayUs, () => this.deliver(msg));
    }
  }

  private deliver(msg: Message): void {
    // Packets in flight when a link is cut are lost too.
    if (this.isBlocked(msg.from, msg.to)) {
      this.messagesDropped++;
      return;
    }
    const ep = this.endpoints.get(msg.to);
    if (!ep || !ep.isUp()) return;
    if (msg.type === 'snapshotChunk') this.snapshotChunksDelivered++;
    if (msg.type === 'snapshotChunkResp' && msg.rewind) this.snapshotRewinds++;
    ep.deliver(() => this.handlers.get(msg.to)?.onMessage(msg));
  }
}
