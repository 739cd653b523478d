import { RaftError } from '../errors.js';

/**
 * Length-prefixed framing over a byte stream: each frame is a big-endian `u32` payload length
 * followed by that many payload bytes.
 */

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest frame payload accepted (and sent): 64 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** The largest payload a `u32` length prefix can describe. */
export const MAX_FRAME_LIMIT = 0xffffffff;

const EMPTY = Buffer.alloc(0);

/** `[header, payload]` for one frame (no copy of `payload`). */
export function frame(payload: Uint8Array): Buffer[] {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payload.byteLength, 0);
  return [header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)];
}

/** One frame as a single buffer (header + payload, one copy). */
export function frameBuffer(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  out.writeUInt32BE(payload.byteLength, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Reassembles frames from stream chunks of any size.
 *
 * Cost is linear in the bytes received: chunks are kept in a list (never concatenated as they
 * arrive) and each payload byte is copied at most once, only when a frame spans chunks; a frame
 * that lies within one chunk is returned as a view of it. Nothing is allocated from a length
 * field before the bytes it announces have actually arrived, so a lying length costs only what
 * the peer really sent, and a length over `maxFrameBytes` fails at once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Index of the first unconsumed chunk in `chunks`. */
  private head = 0;
  /** Bytes already consumed from `chunks[head]`. */
  private offset = 0;
  private buffered = 0;
  /** Payload length of the frame being read, or -1 while its header is incomplete. */
  private need = -1;
  private stopped = false;

  /** @param maxFrameBytes largest payload accepted; may be changed between frames (e.g. after a handshake). */
  constructor(public maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True when a frame has started but not completed (a stream ending now ends mid-frame). */
  get hasPartialFrame(): boolean {
    return this.buffered > 0;
  }

  /** Stops delivering frames (e.g. the connection was closed from inside `onFrame`). */
  stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.buffered = 0;
  }

  /**
   * Adds a chunk and calls `onFrame` for every frame completed by it, in order. A frame is a view
   * of received memory: do not modify it. Throws `BAD_REQUEST` for a length over `maxFrameBytes`
   * (the stream is then unusable).
   */
  push(chunk: Uint8Array, onFrame: (payload: Buffer) => void): void {
    if (this.stopped || chunk.byteLength === 0) return;
    this.chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    this.buffered += chunk.byteLength;
    while (!this.stopped) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return;
        const len = this.readHeader();
        if (len > this.maxFrameBytes) {
          this.stop();
          throw new RaftError(
            'BAD_REQUEST',
            `frame of ${len} bytes exceeds the maximum of ${this.maxFrameBytes}`,
          );
        }
        this.need = len;
      }
      if (this.buffered < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      onFrame(payload);
    }
  }

  private readHeader(): number {
    const first = this.chunks[this.head]!;
    if (first.byteLength - this.offset >= FRAME_HEADER_BYTES) {
      const v = first.readUInt32BE(this.offset);
      this.consume(FRAME_HEADER_BYTES);
      return v;
    }
    const h = this.take(FRAME_HEADER_BYTES);
    return h.readUInt32BE(0);
  }

  /** Removes `n` ≤ `buffered` bytes from the front: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (first.byteLength - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.byteLength - this.offset, n - filled);
      c.copy(out, filled, this.offset, this.offset + k);
      filled += k;
      this.consume(k);
    }
    return out;
  }

  private consume(n: number): void {
    this.buffered -= n;
    this.offset += n;
    const c = this.chunks[this.head]!;
    if (this.offset < c.byteLength) return;
    this.offset = 0;
    this.chunks[this.head] = EMPTY; // release the consumed chunk now
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024) {
      // Drop consumed chunk references in bulk (amortized O(1)).
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
