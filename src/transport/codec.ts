// Frames on a node-to-node connection: a 4-byte big-endian payload length, then a MessagePack
// payload (DESIGN.md §5). Plain MessagePack maps (no msgpackr records) so that a peer written with
// any MessagePack library can decode every frame.
//
// The decoder is the first thing that touches bytes from outside: it checks the announced length
// against frameBytesMax before buffering any of the payload, so a peer cannot make this node
// allocate more than one maximum-size frame per connection, and it never throws anything but a
// HaError, which the connection turns into a logged refusal.
import { Packr, Unpackr, type Options as MsgpackOptions } from 'msgpackr';
import { HaError } from '../errors.js';

export { parseMessage } from './parse-message.js';

export const frameHeaderBytes = 4;
/** Default bound on one frame's payload; a Raft append or snapshot message must fit in it. */
export const frameBytesMaxDefault = 16 * 1024 * 1024;
/** The 4-byte header cannot announce more than this, whatever the configured bound. */
const frameBytesLimit = 0xffff_ffff;

// skipValues is supported by msgpackr 2.x but missing from its typings. Optional fields that are
// undefined are left out instead of being written as msgpackr's private "undefined" extension.
const msgpackOptions: MsgpackOptions & { skipValues: unknown[] } = {
  useRecords: false,
  mapsAsObjects: true,
  // Decoded byte strings get their own memory: a Uint8Array kept in the Raft log must not pin
  // the whole socket chunk it arrived in.
  copyBuffers: true,
  skipValues: [undefined],
};

// Encoding keeps no state between calls (no records), so one encoder serves every connection.
const packr = new Packr(msgpackOptions);

export function checkFrameBytesMax(frameBytesMax: number): number {
  if (!Number.isSafeInteger(frameBytesMax) || frameBytesMax < 1 || frameBytesMax > frameBytesLimit) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `frameBytesMax: expected an integer between 1 and ${frameBytesLimit}, got ${frameBytesMax}`,
      { field: 'frameBytesMax' },
    );
  }
  return frameBytesMax;
}

/**
 * Encodes one value as a complete frame (header + payload). Throws HA_ERR_PAYLOAD_TOO_LARGE when
 * the payload exceeds frameBytesMax: the receiver would refuse it and close the connection, so the
 * sender drops it instead.
 */
export function encodeFrame(value: unknown, frameBytesMax: number = frameBytesMaxDefault): Buffer {
  const payload = packr.pack(value);
  if (payload.length > frameBytesMax) {
    throw new HaError(
      'HA_ERR_PAYLOAD_TOO_LARGE',
      `frame payload of ${payload.length} bytes exceeds frameBytesMax ${frameBytesMax}`,
      { reason: 'frame-too-large', frameBytes: payload.length, frameBytesMax },
    );
  }
  // A fresh buffer: the encoder's output may share memory with its scratch space.
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

/** Why a byte stream was rejected; also the reason a connection logs when it closes. */
export type FrameErrorReason = 'frame-too-large' | 'bad-frame';

export const frameErrorReason = (err: HaError): FrameErrorReason =>
  err.details['reason'] === 'frame-too-large' ? 'frame-too-large' : 'bad-frame';

/**
 * Streaming decoder for one connection. Feed it socket chunks with frames(); it yields each
 * complete decoded payload in order and throws a HaError at the first bad frame (after yielding
 * the good frames before it). After an error the decoder stays failed: the connection must close.
 */
export class FrameDecoder {
  readonly frameBytesMax: number;
  // A decoder per connection: msgpackr's decoder can learn state from the bytes it reads, and
  // one peer's bytes must never change how another peer's frames decode.
  readonly #unpackr = new Unpackr(msgpackOptions);
  // Chunks not yet consumed. Joined only once a whole frame is present, so a large frame that
  // arrives in many chunks is copied once, not once per chunk.
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  /** Payload length of the frame being assembled; -1 while its header is incomplete. */
  #payloadBytes = -1;
  #failure: HaError | null = null;

  constructor(options: { frameBytesMax?: number } = {}) {
    this.frameBytesMax = checkFrameBytesMax(options.frameBytesMax ?? frameBytesMaxDefault);
  }

  /** Bytes received but not yet decoded: never more than one frame plus one chunk. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** True when part of a frame is buffered: the stream ending now truncates a frame. */
  get partial(): boolean {
    return this.#bufferedBytes > 0;
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  *frames(chunk: Uint8Array): Generator<unknown, void, void> {
    if (this.#failure) throw this.#failure;
    if (chunk.length > 0) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      this.#chunks.push(buf);
      this.#bufferedBytes += buf.length;
    }
    for (;;) {
      if (this.#payloadBytes < 0) {
        if (this.#bufferedBytes < frameHeaderBytes) return;
        const payloadBytes = this.#take(frameHeaderBytes).readUInt32BE(0);
        if (payloadBytes > this.frameBytesMax) {
          throw this.#fail(
            new HaError(
              'HA_ERR_PAYLOAD_TOO_LARGE',
              `peer frame: length ${payloadBytes} bytes exceeds frameBytesMax ${this.frameBytesMax}`,
              { reason: 'frame-too-large', frameBytes: payloadBytes, frameBytesMax: this.frameBytesMax },
            ),
          );
        }
        this.#payloadBytes = payloadBytes;
      }
      if (this.#bufferedBytes < this.#payloadBytes) return;
      const payload = this.#take(this.#payloadBytes);
      this.#payloadBytes = -1;
      let value: unknown;
      try {
        value = this.#unpackr.unpack(payload);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw this.#fail(
          new HaError('HA_ERR_BAD_REQUEST', `peer frame: undecodable MessagePack payload (${why})`, {
            reason: 'bad-frame',
          }),
        );
      }
      yield value;
    }
  }

  #fail(err: HaError): HaError {
    this.#failure = err;
    this.#chunks = [];
    this.#bufferedBytes = 0;
    return err;
  }

  /** Removes and returns the first `bytes` buffered bytes; the caller checked they are there. */
  #take(bytes: number): Buffer {
    let out: Buffer;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= bytes) {
      out = first.subarray(0, bytes);
      if (first.length === bytes) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(bytes);
    } else {
      out = Buffer.allocUnsafe(bytes);
      let filled = 0;
      while (filled < bytes) {
        const head = this.#chunks[0]!;
        const n = Math.min(head.length, bytes - filled);
        head.copy(out, filled, 0, n);
        filled += n;
        if (n === head.length) this.#chunks.shift();
        else this.#chunks[0] = head.subarray(n);
      }
    }
    this.#bufferedBytes -= bytes;
    return out;
  }
}
