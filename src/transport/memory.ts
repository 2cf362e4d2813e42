// In-memory transport for unit tests of the runtime: a MemoryNetwork hub and one MemoryTransport
// per node. Pure TypeScript (no node:* imports, no timers): delivery goes through a scheduler
// function given to the network, by default a FIFO that the test drains with flush() or
// deliverAll(), so a test decides exactly when messages arrive.
//
// It keeps the Transport contract of the TLS transport: send() never blocks, a message to a node
// that is down or cut off is dropped, onPeerDown fires when a link breaks (disconnect, or a peer's
// transport closes), and a restarted node never receives what was sent to its earlier incarnation.
import type { Message, NodeId } from '../raft/types.js';
import type { Transport, TransportHandler } from './types.js';

/** Runs `deliver` later. Must not call it synchronously (send() would re-enter the handler). */
export type DeliveryScheduler = (deliver: () => void) => void;

/** Bound of the built-in FIFO; beyond it messages are dropped, as a full socket would. */
export const memoryPendingMaxDefault = 100_000;
/** flush() gives up after this many deliveries: nodes that answer every message forever. */
export const memoryFlushMessagesMaxDefault = 1_000_000;

export interface MemoryNetworkOptions {
  /** Default: the built-in FIFO, drained by flush() / deliverAll(). */
  readonly schedule?: DeliveryScheduler;
  /** Bound of the built-in FIFO (ignored with a custom scheduler). */
  readonly pendingMax?: number;
  /**
   * Deliver a structured clone of each message, as a real transport would deliver a decoded
   * copy, so that a receiver that mutates a message cannot corrupt the sender. Default true.
   */
  readonly cloneMessages?: boolean;
}

export interface MemoryNetworkStats {
  readonly sent: number;
  readonly delivered: number;
  readonly dropped: number;
}

const linkKey = (a: NodeId, b: NodeId): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

export class MemoryNetwork {
  readonly #schedule: DeliveryScheduler;
  readonly #usesFifo: boolean;
  readonly #pendingMax: number;
  readonly #cloneMessages: boolean;
  readonly #fifo: (() => void)[] = [];
  readonly #nodes = new Map<NodeId, MemoryTransport>();
  readonly #cut = new Set<string>();
  #sent = 0;
  #delivered = 0;
  #dropped = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.#pendingMax = options.pendingMax ?? memoryPendingMaxDefault;
    this.#cloneMessages = options.cloneMessages ?? true;
    this.#usesFifo = options.schedule === undefined;
    this.#schedule =
      options.schedule ??
      ((deliver) => {
        this.#fifo.push(deliver);
      });
  }

  /** The transport of `nodeId`. A node may get a new one (a restart) once its previous one closed. */
  transport(nodeId: NodeId): MemoryTransport {
    const current = this.#nodes.get(nodeId);
    if (current !== undefined && !current.closed) {
      throw new Error(`memory network: node ${nodeId} already has an open transport`);
    }
    const t = new MemoryTransport(nodeId, {
      send: (from, msg) => this.#send(from, msg),
      closed: (from) => this.#closed(from),
    });
    this.#nodes.set(nodeId, t);
    return t;
  }

  /** Cuts the link between a and b both ways; both ends see onPeerDown. Messages in flight are lost. */
  disconnect(a: NodeId, b: NodeId): void {
    const key = linkKey(a, b);
    if (this.#cut.has(key)) return;
    this.#cut.add(key);
    this.#peerDown(a, b);
    this.#peerDown(b, a);
  }

  /** Restores the link between a and b. */
  reconnect(a: NodeId, b: NodeId): void {
    this.#cut.delete(linkKey(a, b));
  }

  /** Cuts every link of `node` to the nodes the network knows. */
  isolate(node: NodeId): void {
    for (const other of this.#nodes.keys()) if (other !== node) this.disconnect(node, other);
  }

  /** Restores every link. */
  heal(): void {
    this.#cut.clear();
  }

  connected(a: NodeId, b: NodeId): boolean {
    return !this.#cut.has(linkKey(a, b));
  }

  /** Deliveries waiting in the built-in FIFO. */
  get pending(): number {
    return this.#fifo.length;
  }

  /** Delivers up to `messagesMax` queued events in order, including ones queued meanwhile. */
  deliverAll(messagesMax: number = Number.MAX_SAFE_INTEGER): number {
    let n = 0;
    while (n < messagesMax) {
      const deliver = this.#fifo.shift();
      if (deliver === undefined) break;
      deliver();
      n++;
    }
    return n;
  }

  /** Delivers until the FIFO is empty; throws if it does not drain within `messagesMax`. */
  flush(messagesMax: number = memoryFlushMessagesMaxDefault): number {
    const n = this.deliverAll(messagesMax);
    if (this.#fifo.length > 0) {
      throw new Error(`memory network: still ${this.#fifo.length} pending after ${n} deliveries`);
    }
    return n;
  }

  stats(): MemoryNetworkStats {
    return { sent: this.#sent, delivered: this.#delivered, dropped: this.#dropped };
  }

  #enqueue(deliver: () => void): boolean {
    // A custom scheduler owns its queue and its bound.
    if (!this.#usesFifo || this.#fifo.length < this.#pendingMax) {
      this.#schedule(deliver);
      return true;
    }
    return false;
  }

  #send(from: MemoryTransport, msg: Message): void {
    this.#sent++;
    const to = this.#nodes.get(msg.to);
    if (to === undefined || !to.started || !this.connected(from.nodeId, msg.to)) {
      this.#dropped++;
      return;
    }
    const copy = this.#cloneMessages ? structuredClone(msg) : msg;
    const queued = this.#enqueue(() => {
      // Re-checked at delivery: the link may have been cut, or the receiver restarted, meanwhile.
      if (this.#nodes.get(msg.to) !== to || !to.started || !this.connected(from.nodeId, msg.to)) {
        this.#dropped++;
        return;
      }
      this.#delivered++;
      to.deliver(copy);
    });
    if (!queued) this.#dropped++;
  }

  /** Tells `node` (if running) that its link to `peer` broke. */
  #peerDown(node: NodeId, peer: NodeId): void {
    const t = this.#nodes.get(node);
    if (t === undefined || !t.started) return;
    this.#enqueue(() => {
      if (this.#nodes.get(node) === t && t.started) t.peerDown(peer);
    });
  }

  #closed(closed: MemoryTransport): void {
    // A crashed or stopped node's connections close: every node linked to it notices.
    for (const other of this.#nodes.keys()) {
      if (other !== closed.nodeId && this.connected(closed.nodeId, other))
        this.#peerDown(other, closed.nodeId);
    }
  }
}

interface NetworkPort {
  send(from: MemoryTransport, msg: Message): void;
  closed(from: MemoryTransport): void;
}

export class MemoryTransport implements Transport {
  readonly nodeId: NodeId;
  readonly #net: NetworkPort;
  #handler: TransportHandler | null = null;
  #closed = false;
  #peers: ReadonlyMap<NodeId, string> = new Map();

  /** Created by MemoryNetwork.transport(). */
  constructor(nodeId: NodeId, net: NetworkPort) {
    this.nodeId = nodeId;
    this.#net = net;
  }

  get started(): boolean {
    return this.#handler !== null && !this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The last peer set given to setPeers (every node on the network is reachable regardless). */
  get peers(): ReadonlyMap<NodeId, string> {
    return this.#peers;
  }

  start(handler: TransportHandler): Promise<void> {
    if (this.#handler !== null || this.#closed)
      throw new Error(`memory transport ${this.nodeId}: started twice`);
    this.#handler = handler;
    return Promise.resolve();
  }

  send(msg: Message): void {
    if (msg.from !== this.nodeId) {
      throw new Error(`memory transport ${this.nodeId}: message from ${msg.from} sent through it`);
    }
    if (!this.started) return;
    this.#net.send(this, msg);
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.#peers = new Map(peers);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      const wasStarted = this.started;
      this.#closed = true;
      if (wasStarted) this.#net.closed(this);
    }
    return Promise.resolve();
  }

  /** Called by the network only. */
  deliver(msg: Message): void {
    this.#handler!.onMessage(msg);
  }

  /** Called by the network only. */
  peerDown(peer: NodeId): void {
    this.#handler!.onPeerDown(peer);
  }
}
