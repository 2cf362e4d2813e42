// The connection this node dials to one peer and sends on. Each node sends only on links it
// dialled and receives only on connections it accepted, so there is never a question of which of
// two simultaneous connections between a pair wins.
//
// The link counts as open only after the server has accepted our hello and answered with its own:
// with TLS 1.3 the client finishes its handshake before the server has checked the client
// certificate, so "TLS connected" alone does not mean the peer will read what we write.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { HaError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import { nodeIdFromCertificate } from './peer-identity.js';
import { FrameDecoder, encodeFrame, frameErrorReason } from './codec.js';
import { checkHello, parseRefusal, type Hello } from './handshake.js';

export interface TlsCredentials {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface OutboundLinkOptions {
  readonly peer: NodeId;
  readonly host: string;
  readonly port: number;
  /** Outgoing connections start from this address, so that a firewall rule between two node
   * addresses cuts exactly one link. A wildcard address means "let the kernel choose". */
  readonly bindHost: string;
  readonly hello: Hello;
  readonly tls: TlsCredentials;
  readonly frameBytesMax: number;
  readonly peerQueueMax: number;
  readonly peerQueueBytesMax: number;
  readonly reconnectDelayMinMs: number;
  readonly reconnectDelayMaxMs: number;
  readonly handshakeTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly keepAliveDelayMs: number;
  readonly logger: Logger;
  /** A float in [0, 1) for backoff jitter. */
  readonly random: () => number;
  /** An open link closed (not called for attempts that never opened, nor on close()). */
  readonly onDown: (peer: NodeId) => void;
}

export type OutboundLinkState = 'connecting' | 'open' | 'backoff' | 'closed';
export type SendResult = 'sent' | 'peer-down' | 'queue-full';

export interface OutboundLinkStatus {
  readonly state: OutboundLinkState;
  readonly queuedFrames: number;
  readonly queuedBytes: number;
}

/** One connection attempt; its counters die with it, so a late write callback cannot skew the next. */
interface Attempt {
  readonly socket: tls.TLSSocket;
  open: boolean;
  /** Frames written whose write has not completed (still in Node's or TLS's buffers). */
  queuedFrames: number;
}

const wildcardHosts: ReadonlySet<string> = new Set(['0.0.0.0', '::', '']);

export class OutboundLink {
  readonly peer: NodeId;
  readonly #o: OutboundLinkOptions;
  #state: OutboundLinkState = 'backoff';
  #peerCapabilities: ReadonlySet<string> = new Set();
  #attempt: Attempt | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Consecutive attempts that did not open; drives the backoff. */
  #failuresInRow = 0;
  /** Reason of the last failed attempt, so that a peer down for long logs once, not per retry. */
  #lastFailure: string | null = null;
  #closed: Promise<void> | null = null;

  constructor(options: OutboundLinkOptions) {
    assert.ok(options.reconnectDelayMinMs > 0 && options.reconnectDelayMinMs <= options.reconnectDelayMaxMs);
    this.#o = options;
    this.peer = options.peer;
  }

  get state(): OutboundLinkState {
    return this.#state;
  }

  status(): OutboundLinkStatus {
    const a = this.#attempt;
    return {
      state: this.#state,
      queuedFrames: a?.queuedFrames ?? 0,
      queuedBytes: a?.socket.writableLength ?? 0,
    };
  }

  start(): void {
    assert.equal(this.#attempt, null, 'outbound link started twice');
    this.#connect();
  }

  /** Whether a frame would be accepted now; lets the caller skip encoding a message it would drop. */
  /** Whether the peer's hello, on the open connection, named capability `name`. */
  peerHas(name: string): boolean {
    return this.#peerCapabilities.has(name);
  }

  canSend(): SendResult {
    const a = this.#attempt;
    if (this.#state !== 'open' || a === null || !a.open) return 'peer-down';
    if (a.queuedFrames >= this.#o.peerQueueMax) return 'queue-full';
    return 'sent';
  }

  /** Writes one encoded frame, or refuses: never buffers beyond peerQueueMax / peerQueueBytesMax. */
  trySend(frame: Buffer): SendResult {
    const verdict = this.canSend();
    if (verdict !== 'sent') return verdict;
    const a = this.#attempt!;
    const buffered = a.socket.writableLength;
    // An empty buffer always takes one frame, so a frame larger than the byte bound still goes.
    if (buffered > 0 && buffered + frame.length > this.#o.peerQueueBytesMax) return 'queue-full';
    a.queuedFrames++;
    a.socket.write(frame, () => {
      a.queuedFrames--;
    });
    return 'sent';
  }

  /** Closes the link for good: flushes what is buffered for up to closeGraceMs, then resets. */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#state = 'closed';
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const a = this.#attempt;
    if (a === null || a.socket.destroyed) {
      this.#closed = Promise.resolve();
      return this.#closed;
    }
    this.#closed = new Promise<void>((resolve) => {
      a.socket.once('close', () => resolve());
      if (!a.open) {
        a.socket.destroy();
        return;
      }
      // end() lets the last frames (a TimeoutNow before a planned stop) reach the peer.
      a.socket.end();
      const grace = setTimeout(() => a.socket.destroy(), this.#o.closeGraceMs);
      grace.unref();
      a.socket.once('close', () => clearTimeout(grace));
    });
    return this.#closed;
  }

  #connect(): void {
    const o = this.#o;
    this.#state = 'connecting';
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      ...(wildcardHosts.has(o.bindHost) ? {} : { localAddress: o.bindHost }),
      ca: o.tls.ca,
      cert: o.tls.cert,
      key: o.tls.key,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      // The identity that matters is the node, not the host name: the server must hold a
      // certificate naming the node we meant to dial.
      checkServerIdentity: (_host, cert) => {
        const certNodeId = nodeIdFromCertificate(cert);
        if (certNodeId === o.peer) return undefined;
        return new HaError(
          'HA_ERR_FORBIDDEN',
          `server certificate names node ${certNodeId === null ? '(none)' : `"${certNodeId}"`}, not "${o.peer}"`,
          { reason: 'node-id-mismatch' },
        );
      },
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, o.keepAliveDelayMs);
    const attempt: Attempt = { socket, open: false, queuedFrames: 0 };
    this.#attempt = attempt;
    const decoder = new FrameDecoder({ frameBytesMax: o.frameBytesMax });
    let failure: string | null = null;
    const fail = (reason: string, detail: string): void => {
      failure ??= `${reason}: ${detail}`;
      socket.destroy();
    };
    const handshakeTimer = setTimeout(
      () => fail('handshake-timeout', `no answer within ${o.handshakeTimeoutMs} ms`),
      o.handshakeTimeoutMs,
    );
    handshakeTimer.unref();

    socket.once('secureConnect', () => {
      socket.write(encodeFrame(o.hello, o.frameBytesMax));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.frames(chunk)) {
          // A server may refuse even an open link (it closed it over something we sent).
          const refusal = parseRefusal(frame);
          if (refusal !== null) {
            fail(`refused by peer (${refusal.reason})`, refusal.detail);
            return;
          }
          if (attempt.open) {
            fail('unexpected-frame', 'the server sent a frame after its hello');
            return;
          }
          const check = checkHello(frame, {
            clusterId: o.hello.clusterId,
            certNodeId: nodeIdFromCertificate(socket.getPeerCertificate()),
            dialledNodeId: o.peer,
          });
          if (!check.ok) {
            fail(check.reason, check.detail);
            return;
          }
          clearTimeout(handshakeTimer);
          this.#peerCapabilities = new Set(check.hello.capabilities);
          this.#opened(attempt);
        }
      } catch (err) {
        assert.ok(err instanceof HaError, err as Error);
        fail(frameErrorReason(err), err.message);
      }
    });
    socket.on('error', (err: Error) => {
      const reason = err instanceof HaError ? String(err.details['reason']) : 'socket-error';
      failure ??= `${reason}: ${err.message}`;
    });
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      if (this.#attempt === attempt) this.#attempt = null;
      if (this.#state === 'closed') return;
      if (attempt.open) {
        o.logger.warn({ peer: o.peer, reason: failure ?? 'connection closed' }, 'peer link down');
        this.#lastFailure = null;
        o.onDown(o.peer);
      } else {
        this.#failed(failure ?? 'connection closed before the handshake completed');
      }
      this.#scheduleReconnect();
    });
  }

  #opened(attempt: Attempt): void {
    attempt.open = true;
    this.#state = 'open';
    this.#failuresInRow = 0;
    this.#lastFailure = null;
    this.#o.logger.info({ peer: this.#o.peer }, 'peer link up');
  }

  #failed(why: string): void {
    this.#failuresInRow++;
    // A peer that stays down fails every retry the same way: say so once, then quietly retry.
    const level = why === this.#lastFailure ? 'debug' : 'warn';
    this.#o.logger[level](
      { peer: this.#o.peer, address: `${this.#o.host}:${this.#o.port}`, reason: why },
      'peer link connect failed',
    );
    this.#lastFailure = why;
  }

  /** Full-jitter-from-half exponential backoff: [ceiling/2, ceiling], ceiling doubling up to max. */
  #scheduleReconnect(): void {
    const o = this.#o;
    const exponent = Math.min(this.#failuresInRow, 30);
    const ceilingMs = Math.min(o.reconnectDelayMaxMs, o.reconnectDelayMinMs * 2 ** exponent);
    const delayMs = Math.max(o.reconnectDelayMinMs, ceilingMs * (0.5 + 0.5 * o.random()));
    this.#state = 'backoff';
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state === 'backoff') this.#connect();
    }, delayMs);
    // The listening server keeps a node alive; a retry timer alone should not.
    this.#reconnectTimer.unref();
  }
}
