// Carries Raft messages between nodes. Implementations: memory.ts (tests, simulator) and tcp.ts
// (TLS 1.3 with mutual authentication, production).
//
// Contract: send() never blocks and never queues without bound. A message to a peer that is down,
// or whose queue is full, is dropped (Raft retries). Delivery is at most once, possibly reordered
// across reconnects.
import type { Message, NodeId } from '../raft/types.js';

export interface TransportHandler {
  onMessage(msg: Message): void;
  /** The connection to `peer` closed (peer crashed, restarted or reset the connection). */
  onPeerDown(peer: NodeId): void;
}

export interface Transport {
  start(handler: TransportHandler): Promise<void>;
  send(msg: Message): void;
  /** Membership changed: connect to new peers, forget removed ones. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  close(): Promise<void>;
}
