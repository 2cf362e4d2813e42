// The production Transport: TCP with TLS 1.3 and mutual authentication (DESIGN.md §5).
//
// Every node listens on bindHost:bindPort and dials every peer. It sends on the link it dialled
// (outbound-link.ts) and receives on the connections it accepted (inbound-connection.ts). Both
// ends present a node certificate from the cluster CA; the handshake then checks the cluster id,
// protocol version, and that each side's claimed node id is the one its certificate names.
//
// onPeerDown fires as soon as an established connection to or from a peer closes: a crashed
// leader's sockets close at once, which is the fast failover signal. It may fire once per
// connection (inbound and outbound) for the same failure.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { HaError } from '../errors.js';
import type { Message, NodeId } from '../raft/types.js';
import { checkFrameBytesMax, encodeFrame, frameBytesMaxDefault } from './codec.js';
import {
  makeHello,
  messageCapabilities,
  refusalReasons,
  type Hello,
  type RefusalReason,
} from './handshake.js';
import { InboundConnection } from './inbound-connection.js';
import { OutboundLink, type OutboundLinkStatus, type TlsCredentials } from './outbound-link.js';
import type { Transport, TransportHandler } from './types.js';

/** Messages written to one peer but not yet taken by the kernel; beyond it send() drops. */
export const peerQueueMaxDefault = 1024;
/** Bytes buffered for one peer; beyond it send() drops (4 maximum-size frames). */
export const peerQueueBytesMaxDefault = 4 * frameBytesMaxDefault;
export const reconnectDelayMinMsDefault = 20;
export const reconnectDelayMaxMsDefault = 1000;
/** Time a new connection has to complete TLS and the hello exchange. */
export const handshakeTimeoutMsDefault = 5000;
/** Time a closing connection has to flush its last frames before it is reset. */
export const closeGraceMsDefault = 500;
/** Idle time before TCP keepalive probes: finds connections to hosts that vanished silently. */
export const keepAliveDelayMsDefault = 10_000;
/** Accepted connections at once; beyond it the kernel's backlog holds new ones. */
export const inboundConnectionsMaxDefault = 256;

export interface TlsTransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly bindHost: string;
  /** 0 picks a free port; see address(). */
  readonly bindPort: number;
  /** Peer node id -> "host:port" ("[v6addr]:port" for IPv6). This node's own id is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** PEM: the cluster CA, this node's certificate and its key. */
  readonly tls: TlsCredentials;
  readonly logger: Logger;
  readonly frameBytesMax?: number;
  readonly peerQueueMax?: number;
  readonly peerQueueBytesMax?: number;
  readonly reconnectDelayMinMs?: number;
  readonly reconnectDelayMaxMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly closeGraceMs?: number;
  readonly inboundConnectionsMax?: number;
  readonly capabilities?: readonly string[];
  /** A float in [0, 1) for reconnect jitter; tests may make it deterministic. */
  readonly random?: () => number;
}

/** Why a message was not sent; unsupported: the peer's version does not know its type. */
export type DropReason = 'unknownPeer' | 'peerDown' | 'queueFull' | 'oversize' | 'unsupported';

export interface TlsTransportStats {
  readonly framesSent: number;
  readonly framesReceived: number;
  readonly dropped: number;
  readonly droppedByReason: Readonly<Record<DropReason, number>>;
  /** Inbound connections this node refused or closed, by reason. */
  readonly refused: Readonly<Record<RefusalReason, number>>;
  readonly peers: Readonly<Record<string, OutboundLinkStatus>>;
}

interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export function parsePeerAddress(peer: string, address: string): PeerAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new HaError('HA_ERR_BAD_REQUEST', `peers.${peer}: expected "host:port", got "${address}"`, {
      field: `peers.${peer}`,
    });
  }
  return { host: m[1] ?? m[2]!, port };
}

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new HaError('HA_ERR_BAD_REQUEST', `${field}: expected a positive integer, got ${v}`, { field });
  }
  return v;
}

const zeroRefusals = (): Record<RefusalReason, number> =>
  Object.fromEntries(refusalReasons.map((r) => [r, 0])) as Record<RefusalReason, number>;

export class TlsTransport implements Transport {
  readonly nodeId: NodeId;
  readonly #o: TlsTransportOptions;
  readonly #hello: Hello;
  readonly #frameBytesMax: number;
  readonly #peerQueueMax: number;
  readonly #peerQueueBytesMax: number;
  readonly #reconnectDelayMinMs: number;
  readonly #reconnectDelayMaxMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #closeGraceMs: number;
  readonly #inboundConnectionsMax: number;
  #peers = new Map<NodeId, string>();
  readonly #links = new Map<NodeId, OutboundLink>();
  readonly #inbound = new Set<InboundConnection>();
  #server: tls.Server | null = null;
  #handler: TransportHandler | null = null;
  #closing: Promise<void> | null = null;
  #framesSent = 0;
  #framesReceived = 0;
  readonly #dropped: Record<DropReason, number> = {
    unknownPeer: 0,
    peerDown: 0,
    queueFull: 0,
    oversize: 0,
    unsupported: 0,
  };
  readonly #refused = zeroRefusals();

  constructor(options: TlsTransportOptions) {
    this.nodeId = options.nodeId;
    this.#o = options;
    this.#hello = makeHello(options.clusterId, options.nodeId, [
      ...messageCapabilities,
      ...(options.capabilities ?? []),
    ]);
    this.#frameBytesMax = checkFrameBytesMax(options.frameBytesMax ?? frameBytesMaxDefault);
    this.#peerQueueMax = positiveInt('peerQueueMax', options.peerQueueMax, peerQueueMaxDefault);
    this.#peerQueueBytesMax = positiveInt(
      'peerQueueBytesMax',
      options.peerQueueBytesMax,
      peerQueueBytesMaxDefault,
    );
    this.#reconnectDelayMinMs = positiveInt(
      'reconnectDelayMinMs',
      options.reconnectDelayMinMs,
      reconnectDelayMinMsDefault,
    );
    this.#reconnectDelayMaxMs = positiveInt(
      'reconnectDelayMaxMs',
      options.reconnectDelayMaxMs,
      Math.max(reconnectDelayMaxMsDefault, this.#reconnectDelayMinMs),
    );
    if (this.#reconnectDelayMaxMs < this.#reconnectDelayMinMs) {
      throw new HaError('HA_ERR_BAD_REQUEST', 'reconnectDelayMaxMs: expected >= reconnectDelayMinMs', {
        field: 'reconnectDelayMaxMs',
      });
    }
    this.#handshakeTimeoutMs = positiveInt(
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs,
      handshakeTimeoutMsDefault,
    );
    this.#closeGraceMs = positiveInt('closeGraceMs', options.closeGraceMs, closeGraceMsDefault);
    this.#inboundConnectionsMax = positiveInt(
      'inboundConnectionsMax',
      options.inboundConnectionsMax,
      inboundConnectionsMaxDefault,
    );
    if (!Number.isSafeInteger(options.bindPort) || options.bindPort < 0 || options.bindPort > 65535) {
      throw new HaError('HA_ERR_BAD_REQUEST', `bindPort: expected 0 to 65535, got ${options.bindPort}`, {
        field: 'bindPort',
      });
    }
    this.#peers = this.#checkedPeers(options.peers);
  }

  async start(handler: TransportHandler): Promise<void> {
    assert.equal(this.#handler, null, 'transport started twice');
    assert.equal(this.#closing, null, 'transport started after close');
    this.#handler = handler;
    const o = this.#o;
    const server = tls.createServer({
      ca: o.tls.ca,
      cert: o.tls.cert,
      key: o.tls.key,
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.#handshakeTimeoutMs,
    });
    server.maxConnections = this.#inboundConnectionsMax;
    server.on('secureConnection', (socket) => this.#accept(socket));
    // A certificate from another CA, no certificate, an older TLS version, a port scanner.
    server.on('tlsClientError', (err, socket) => {
      this.#refused['tls-handshake-failed']++;
      // When the client certificate fails verification, Node resets the socket and reports only
      // "socket hang up"; the verification result it recorded on the socket says why.
      const verifyError: unknown = socket.authorizationError;
      const detail =
        verifyError === undefined || verifyError === null
          ? err.message
          : `client certificate rejected: ${String(verifyError)}`;
      // The socket is already destroyed here, so its address is usually gone with it.
      const peer =
        socket.remoteAddress === undefined ? 'unknown' : `${socket.remoteAddress}:${socket.remotePort}`;
      o.logger.warn({ peer, reason: 'tls-handshake-failed', detail }, 'peer connection refused');
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new HaError('HA_ERR_INTERNAL', `cannot listen on ${o.bindHost}:${o.bindPort}: ${err.message}`, {
            field: 'bindPort',
          }),
        );
      };
      server.once('error', onError);
      server.listen({ host: o.bindHost, port: o.bindPort }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => o.logger.error({ err: err.message }, 'peer listener error'));
    for (const peer of this.#peers.keys()) this.#addLink(peer);
  }

  send(msg: Message): void {
    assert.equal(msg.from, this.nodeId, 'a node sends only its own messages');
    const link = this.#links.get(msg.to);
    if (link === undefined) {
      this.#dropped.unknownPeer++;
      return;
    }
    // Checked before encoding, so that a burst to a down peer costs no serialisation.
    // A peer of an older version would refuse this message type (and close the connection);
    // its client then waits out its deadline, as before the type existed.
    if (msg.type === 'proposeResp' && !link.peerHas('msg:proposeResp')) {
      this.#dropped.unsupported++;
      return;
    }
    // Snapshots travel in chunks since 'msg:snapshotChunk'; an older peer cannot take them and
    // must be upgraded before it can catch up from a snapshot (docs/ARCHITECTURE.md).
    if (
      (msg.type === 'snapshotChunk' || msg.type === 'snapshotChunkResp') &&
      !link.peerHas('msg:snapshotChunk')
    ) {
      this.#dropped.unsupported++;
      return;
    }
    const verdict = link.canSend();
    if (verdict !== 'sent') {
      this.#dropped[verdict === 'peer-down' ? 'peerDown' : 'queueFull']++;
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(msg, this.#frameBytesMax);
    } catch (err) {
      if (!(err instanceof HaError) || err.code !== 'HA_ERR_PAYLOAD_TOO_LARGE') throw err;
      // The peer would refuse the frame and close the link; a batch bound larger than the frame
      // bound (appendBytesMax, snapshot size) is a configuration error worth a loud line.
      this.#dropped.oversize++;
      this.#o.logger.warn(
        { peer: msg.to, type: msg.type, detail: err.message },
        'message dropped: frame too large',
      );
      return;
    }
    const result = link.trySend(frame);
    if (result === 'sent') this.#framesSent++;
    else this.#dropped[result === 'peer-down' ? 'peerDown' : 'queueFull']++;
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    const next = this.#checkedPeers(peers);
    const started = this.#handler !== null && this.#closing === null;
    for (const [peer, address] of this.#peers) {
      if (next.get(peer) === address) continue;
      void this.#links.get(peer)?.close();
      this.#links.delete(peer);
      // A removed node may no longer speak to this one either.
      if (!next.has(peer)) for (const conn of this.#inbound) if (conn.peer === peer) conn.destroy();
    }
    const previous = this.#peers;
    this.#peers = next;
    if (!started) return;
    for (const [peer, address] of next) if (previous.get(peer) !== address) this.#addLink(peer);
  }

  /** Closes the listener and every connection; resolves when all are closed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** The address the listener is bound to (the real port when bindPort was 0). */
  address(): { host: string; port: number } {
    const addr = this.#server?.address();
    assert.ok(addr !== null && addr !== undefined && typeof addr === 'object', 'address() before start()');
    return { host: (addr as AddressInfo).address, port: (addr as AddressInfo).port };
  }

  stats(): TlsTransportStats {
    const d = this.#dropped;
    return {
      framesSent: this.#framesSent,
      framesReceived: this.#framesReceived,
      dropped: d.unknownPeer + d.peerDown + d.queueFull + d.oversize,
      droppedByReason: { ...d },
      refused: { ...this.#refused },
      peers: Object.fromEntries([...this.#links].map(([id, link]) => [id, link.status()])),
    };
  }

  async #close(): Promise<void> {
    const server = this.#server;
    const links = [...this.#links.values()];
    this.#links.clear();
    for (const conn of this.#inbound) conn.destroy();
    await Promise.all([
      ...links.map((l) => l.close()),
      server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve())),
    ]);
  }

  #checkedPeers(peers: ReadonlyMap<NodeId, string>): Map<NodeId, string> {
    const out = new Map<NodeId, string>();
    for (const [peer, address] of peers) {
      if (peer === this.nodeId) continue;
      parsePeerAddress(peer, address);
      out.set(peer, address);
    }
    return out;
  }

  #addLink(peer: NodeId): void {
    const { host, port } = parsePeerAddress(peer, this.#peers.get(peer)!);
    const link = new OutboundLink({
      peer,
      host,
      port,
      bindHost: this.#o.bindHost,
      hello: this.#hello,
      tls: this.#o.tls,
      frameBytesMax: this.#frameBytesMax,
      peerQueueMax: this.#peerQueueMax,
      peerQueueBytesMax: this.#peerQueueBytesMax,
      reconnectDelayMinMs: this.#reconnectDelayMinMs,
      reconnectDelayMaxMs: this.#reconnectDelayMaxMs,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      closeGraceMs: this.#closeGraceMs,
      keepAliveDelayMs: keepAliveDelayMsDefault,
      logger: this.#o.logger,
      random: this.#o.random ?? Math.random,
      onDown: (p) => this.#peerDown(p),
    });
    this.#links.set(peer, link);
    link.start();
  }

  #accept(socket: tls.TLSSocket): void {
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    const conn = new InboundConnection(socket, {
      self: this.nodeId,
      hello: this.#hello,
      isKnownPeer: (id) => this.#peers.has(id),
      frameBytesMax: this.#frameBytesMax,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      closeGraceMs: this.#closeGraceMs,
      keepAliveDelayMs: keepAliveDelayMsDefault,
      logger: this.#o.logger,
      onEstablished: (established) => {
        for (const other of this.#inbound) {
          if (other !== established && other.peer === established.peer) other.supersede();
        }
      },
      onMessage: (msg) => {
        this.#framesReceived++;
        this.#handler!.onMessage(msg);
      },
      onRefused: (reason) => {
        this.#refused[reason]++;
      },
      onClosed: (c) => {
        this.#inbound.delete(c);
        // A superseded connection's peer is evidently up: it just connected again.
        if (c.peer !== null && !c.superseded) this.#peerDown(c.peer);
      },
    });
    this.#inbound.add(conn);
  }

  #peerDown(peer: NodeId): void {
    if (this.#closing !== null || this.#handler === null) return;
    this.#handler.onPeerDown(peer);
  }
}
