// Shared helpers for the transport tests: captured logs, polling with a deadline, certificates in
// a temporary directory, and a hand-driven TLS client that can send bytes a real node never would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino, type Logger } from 'pino';
import { initCa, issueNodeCert, loadTlsFiles, type TlsMaterial } from '../../src/transport/certs.js';
import { FrameDecoder, encodeFrame } from '../../src/transport/codec.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import type { TransportHandler } from '../../src/transport/types.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as LogLine);
      },
    },
  );
  return { logger, lines };
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 5000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface CertDirs {
  /** Node certificates n1..n3 from the cluster CA. */
  readonly nodes: Record<string, TlsMaterial>;
  /** A certificate for n2 from a CA the cluster does not trust. */
  readonly foreignN2: TlsMaterial;
  cleanup(): Promise<void>;
}

export async function makeCerts(): Promise<CertDirs> {
  const dir = await mkdtemp(join(tmpdir(), 'anya-ha-certs-'));
  const foreignDir = await mkdtemp(join(tmpdir(), 'anya-ha-foreign-'));
  const ca = await initCa(dir);
  const nodes: Record<string, TlsMaterial> = {};
  for (const id of ['n1', 'n2', 'n3']) {
    const c = await issueNodeCert(dir, id);
    nodes[id] = await loadTlsFiles({ ca: ca.caCertPath, cert: c.certPath, key: c.keyPath });
  }
  await initCa(foreignDir);
  const f = await issueNodeCert(foreignDir, 'n2');
  // Trusts the real CA (so that the test proves the server's check, not the client's) but
  // presents a certificate from the foreign one.
  const foreignN2 = await loadTlsFiles({ ca: ca.caCertPath, cert: f.certPath, key: f.keyPath });
  return {
    nodes,
    foreignN2,
    cleanup: async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(foreignDir, { recursive: true, force: true });
    },
  };
}

/** Records what a transport delivers. */
export class Recorder implements TransportHandler {
  readonly messages: Message[] = [];
  readonly downs: NodeId[] = [];
  onMessage(msg: Message): void {
    this.messages.push(msg);
  }
  onPeerDown(peer: NodeId): void {
    this.downs.push(peer);
  }
}

/** A TLS client driven by hand: it sends whatever bytes a test wants and collects the frames it gets. */
export class RawPeer {
  readonly socket: tls.TLSSocket;
  readonly frames: unknown[] = [];
  readonly closed: Promise<void>;
  readonly #decoder = new FrameDecoder();

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.#decoder.frames(chunk)) this.frames.push(f);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Connects; resolves once the client side of TLS has finished (or failed). */
  static async connect(port: number, creds: TlsMaterial): Promise<RawPeer> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...creds,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    const peer = new RawPeer(socket);
    await new Promise<void>((resolve) => {
      socket.once('secureConnect', () => resolve());
      socket.once('close', () => resolve());
    });
    return peer;
  }

  sendFrame(value: unknown): void {
    this.socket.write(encodeFrame(value));
  }

  sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }
}

export const heartbeat = (from: string, to: string, seq = 1): Message => ({
  type: 'heartbeat',
  from: from as NodeId,
  to: to as NodeId,
  term: 3,
  commit: 7,
  seq,
  tick: 11,
});
