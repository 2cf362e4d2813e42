// A connection a peer dialled to this node: TLS has authenticated it against the cluster CA; this
// checks its hello, answers with ours, then reads Raft messages from it until it closes.
//
// Anything wrong with the bytes (oversize or undecodable frame, malformed message, a message
// that claims another sender, a frame cut short) closes this one connection with one logged
// reason. The node and its other connections carry on.
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { HaError } from '../errors.js';
import type { Message, NodeId } from '../raft/types.js';
import { nodeIdFromCertificate } from './peer-identity.js';
import { FrameDecoder, encodeFrame, frameErrorReason, parseMessage } from './codec.js';
import { checkHello, type Hello, type RefusalReason } from './handshake.js';

export interface InboundConnectionOptions {
  readonly self: NodeId;
  readonly hello: Hello;
  readonly isKnownPeer: (id: NodeId) => boolean;
  readonly frameBytesMax: number;
  readonly handshakeTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly keepAliveDelayMs: number;
  readonly logger: Logger;
  /** The hello was accepted: `conn.peer` is set. */
  readonly onEstablished: (conn: InboundConnection) => void;
  readonly onMessage: (msg: Message) => void;
  readonly onRefused: (reason: RefusalReason) => void;
  /** Called once when the socket has closed, whatever the cause. */
  readonly onClosed: (conn: InboundConnection) => void;
}

export class InboundConnection {
  /** The authenticated peer, set once its hello is accepted. */
  peer: NodeId | null = null;
  readonly #socket: TLSSocket;
  readonly #o: InboundConnectionOptions;
  readonly #certNodeId: string | null;
  readonly #remoteAddress: string;
  readonly #decoder: FrameDecoder;
  readonly #handshakeTimer: NodeJS.Timeout;
  #refused = false;
  /** Set when this node closes the connection, so that its end is not reported as truncation. */
  #closing = false;

  constructor(socket: TLSSocket, options: InboundConnectionOptions) {
    this.#socket = socket;
    this.#o = options;
    this.#certNodeId = nodeIdFromCertificate(socket.getPeerCertificate());
    this.#remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, options.keepAliveDelayMs);
    this.#handshakeTimer = setTimeout(
      () => this.#refuse('handshake-timeout', `no hello within ${options.handshakeTimeoutMs} ms`),
      options.handshakeTimeoutMs,
    );
    this.#handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => {
      options.logger.debug({ peer: this.#label(), err: err.message }, 'peer connection error');
    });
    socket.once('close', () => {
      clearTimeout(this.#handshakeTimer);
      // A peer that stops in the middle of a frame: a crash, or bytes that were never a frame.
      if (!this.#refused && !this.#closing && this.#decoder.partial) {
        this.#refuse(
          'truncated-frame',
          `stream ended with ${this.#decoder.bufferedBytes} bytes of an incomplete frame`,
        );
      }
      options.onClosed(this);
    });
  }

  /** Set when a newer connection from the same peer replaced this one. */
  superseded = false;

  /** Closes the connection now (this node is stopping, or the peer was removed). */
  destroy(): void {
    this.#closing = true;
    this.#socket.destroy();
  }

  /**
   * Closes this connection because the same peer opened a newer one. A peer keeps one link to
   * this node, so the older connection is dead: its host may have crashed without a reset, and
   * this node never writes on accepted connections, so nothing else would ever notice.
   */
  supersede(): void {
    this.superseded = true;
    this.#o.logger.debug(
      { peer: this.peer, remoteAddress: this.#remoteAddress },
      'peer connection superseded',
    );
    this.destroy();
  }

  #label(): string {
    return this.peer ?? this.#certNodeId ?? this.#remoteAddress;
  }

  #onData(chunk: Buffer): void {
    if (this.#refused || this.#closing) return;
    const frames = this.#decoder.frames(chunk);
    for (;;) {
      let next: IteratorResult<unknown, void>;
      try {
        next = frames.next();
      } catch (err) {
        assert.ok(err instanceof HaError, err as Error);
        this.#refuse(frameErrorReason(err), err.message);
        return;
      }
      if (next.done === true) return;
      if (this.peer === null) {
        this.#onHello(next.value);
      } else {
        const msg = this.#toMessage(next.value);
        // Outside any try: an exception from the handler is this node's bug, not the peer's.
        if (msg !== null) this.#o.onMessage(msg);
      }
      if (this.#refused) return;
    }
  }

  #onHello(frame: unknown): void {
    const check = checkHello(frame, {
      clusterId: this.#o.hello.clusterId,
      certNodeId: this.#certNodeId,
      knownPeers: { has: this.#o.isKnownPeer },
    });
    if (!check.ok) {
      this.#refuse(check.reason, check.detail);
      return;
    }
    clearTimeout(this.#handshakeTimer);
    this.peer = check.hello.nodeId;
    this.#socket.write(encodeFrame(this.#o.hello, this.#o.frameBytesMax));
    this.#o.onEstablished(this);
  }

  #toMessage(frame: unknown): Message | null {
    let msg: Message;
    try {
      msg = parseMessage(frame);
    } catch (err) {
      assert.ok(err instanceof HaError, err as Error);
      this.#refuse('bad-message', err.message);
      return null;
    }
    // The certificate proved who is on this connection; a message must not speak for anyone else.
    if (msg.from !== this.peer || msg.to !== this.#o.self) {
      this.#refuse(
        'sender-mismatch',
        `message from "${msg.from}" to "${msg.to}" on the connection of "${this.peer}" to "${this.#o.self}"`,
      );
      return null;
    }
    return msg;
  }

  /** Logs one line, tells the peer why when it can still listen, and closes the connection. */
  #refuse(reason: RefusalReason, detail: string): void {
    if (this.#refused) return;
    this.#refused = true;
    clearTimeout(this.#handshakeTimer);
    this.#o.logger.warn(
      { peer: this.#label(), remoteAddress: this.#remoteAddress, reason, detail },
      'peer connection refused',
    );
    this.#o.onRefused(reason);
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (socket.writable) {
      socket.write(encodeFrame({ refused: reason, detail }, this.#o.frameBytesMax));
      socket.end();
    }
    // A peer that does not read our refusal, or keeps writing, is cut off after the grace period.
    const grace = setTimeout(() => socket.destroy(), this.#o.closeGraceMs);
    grace.unref();
    socket.once('close', () => clearTimeout(grace));
  }
}
