import type { SnapMsg } from '../core/messages.js';
import { RaftError } from '../errors.js';
import { crc32 } from '../storage/wal/crc32.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { FRAME_HEADER_BYTES } from './framing.js';

/**
 * Frames that stream a snapshot's bytes over a peer link (§7 InstallSnapshot in chunks),
 * next to the message frames of the codec. The first payload byte tells them apart: a message
 * starts with `CODEC_VERSION` (1), a snapshot frame with {@link SNAP_CHUNK_TAG} (sender →
 * receiver) or {@link SNAP_ACK_TAG} (receiver → sender, on the same connection).
 *
 * A stream is `begin`, `data`…, `end` (all integers big-endian):
 *
 * ```
 * u8 0xF1 | u8 kind | u32 stream id | …
 *   begin: u64 size | bytes header (the snap message, encoded with empty data)
 *   data:  u64 offset | u32 CRC-32 of this chunk | chunk bytes (the rest of the frame)
 *   end:   u64 size | u32 CRC-32 of all the bytes
 * u8 0xF2 | u32 stream id | u8 ok | u16 reason length | reason (UTF-8)
 * ```
 *
 * Every chunk is checked on arrival and the whole stream at its end, so a corrupted or
 * truncated transfer is refused rather than installed. Frames of a stream may be interleaved
 * with message frames (heartbeats and appends go between chunks).
 */

/** First byte of a snapshot stream frame. */
export const SNAP_CHUNK_TAG = 0xf1;
/** First byte of a snapshot acknowledgement frame. */
export const SNAP_ACK_TAG = 0xf2;

/** One decoded frame of a snapshot stream. */
export type SnapFrame =
  | { readonly kind: 'begin'; readonly stream: number; readonly size: number; readonly msg: SnapMsg }
  | { readonly kind: 'data'; readonly stream: number; readonly offset: number; readonly data: Uint8Array }
  | { readonly kind: 'end'; readonly stream: number; readonly size: number; readonly crc: number };

/** A receiver's verdict on a stream: installed (or at least accepted) or refused. */
export interface SnapAck {
  readonly stream: number;
  readonly ok: boolean;
  readonly reason: string;
}

const KIND_BEGIN = 1;
const KIND_DATA = 2;
const KIND_END = 3;
const TWO_32 = 0x1_0000_0000;

function bad(reason: string): RaftError {
  return new RaftError('BAD_REQUEST', `malformed snapshot frame: ${reason}`);
}

function putU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / TWO_32), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

function getU64(b: Buffer, at: number): number {
  const hi = b.readUInt32BE(at);
  if (hi > 0x1fffff) throw bad('integer exceeds 2^53 - 1');
  return hi * TWO_32 + b.readUInt32BE(at + 4);
}

/** The frames (length prefix included) that open stream `stream` of `size` bytes for `msg`. */
export function encodeSnapBegin(stream: number, size: number, msg: SnapMsg): Buffer {
  const header = encodeMessage({ ...msg, snapshot: { meta: msg.snapshot.meta, data: new Uint8Array(0) } });
  const len = 6 + 8 + 4 + header.byteLength;
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
  b.writeUInt32BE(len, 0);
  b[4] = SNAP_CHUNK_TAG;
  b[5] = KIND_BEGIN;
  b.writeUInt32BE(stream >>> 0, 6);
  putU64(b, 10, size);
  b.writeUInt32BE(header.byteLength, 18);
  header.copy(b, 22);
  return b;
}

/**
 * One data chunk: `[frame header + fields, chunk]`, the chunk passed by reference (write both
 * under one cork).
 */
export function encodeSnapData(stream: number, offset: number, chunk: Uint8Array): Buffer[] {
  const len = 6 + 8 + 4 + chunk.byteLength;
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 18);
  h.writeUInt32BE(len, 0);
  h[4] = SNAP_CHUNK_TAG;
  h[5] = KIND_DATA;
  h.writeUInt32BE(stream >>> 0, 6);
  putU64(h, 10, offset);
  h.writeUInt32BE(crc32(chunk), 18);
  return [h, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)];
}

/** The frame that closes a stream: its size and the CRC-32 of all its bytes. */
export function encodeSnapEnd(stream: number, size: number, crc: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 18);
  b.writeUInt32BE(18, 0);
  b[4] = SNAP_CHUNK_TAG;
  b[5] = KIND_END;
  b.writeUInt32BE(stream >>> 0, 6);
  putU64(b, 10, size);
  b.writeUInt32BE(crc >>> 0, 18);
  return b;
}

/** The acknowledgement frame (length prefix included). */
export function encodeSnapAck(ack: SnapAck): Buffer {
  const reason = Buffer.from(ack.reason.slice(0, 1000), 'utf8');
  const len = 1 + 4 + 1 + 2 + reason.byteLength;
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
  b.writeUInt32BE(len, 0);
  b[4] = SNAP_ACK_TAG;
  b.writeUInt32BE(ack.stream >>> 0, 5);
  b[9] = ack.ok ? 1 : 0;
  b.writeUInt16BE(reason.byteLength, 10);
  reason.copy(b, 12);
  return b;
}

function asBuffer(p: Uint8Array): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/**
 * Decodes a snapshot stream frame's payload (its first byte is {@link SNAP_CHUNK_TAG}). Data
 * is a view into `payload`; a chunk whose CRC does not match is refused here.
 */
export function decodeSnapFrame(payload: Uint8Array): SnapFrame {
  const b = asBuffer(payload);
  if (b.byteLength < 6 || b[0] !== SNAP_CHUNK_TAG) throw bad('not a snapshot frame');
  const kind = b[1];
  const stream = b.readUInt32BE(2);
  switch (kind) {
    case KIND_BEGIN: {
      if (b.byteLength < 18) throw bad('begin frame too short');
      const size = getU64(b, 6);
      const n = b.readUInt32BE(14);
      if (18 + n !== b.byteLength) throw bad('begin frame length mismatch');
      const m = decodeMessage(b.subarray(18));
      if (m.type !== 'snap') throw bad(`begin frame carries a ${m.type} message`);
      if (m.snapshot.data.byteLength !== 0) throw bad('begin frame carries snapshot data');
      return { kind: 'begin', stream, size, msg: m };
    }
    case KIND_DATA: {
      if (b.byteLength < 18) throw bad('data frame too short');
      const offset = getU64(b, 6);
      const crc = b.readUInt32BE(14);
      const data = b.subarray(18);
      if (crc32(data) !== crc) throw bad(`chunk at offset ${offset} fails its checksum`);
      return { kind: 'data', stream, offset, data };
    }
    case KIND_END: {
      if (b.byteLength !== 18) throw bad('end frame length mismatch');
      return { kind: 'end', stream, size: getU64(b, 6), crc: b.readUInt32BE(14) };
    }
    default:
      throw bad(`unknown kind ${kind}`);
  }
}

/** Decodes an acknowledgement frame's payload (its first byte is {@link SNAP_ACK_TAG}). */
export function decodeSnapAck(payload: Uint8Array): SnapAck {
  const b = asBuffer(payload);
  if (b.byteLength < 8 || b[0] !== SNAP_ACK_TAG) throw bad('not a snapshot acknowledgement');
  const stream = b.readUInt32BE(1);
  const ok = b[5] === 1;
  const n = b.readUInt16BE(6);
  if (8 + n !== b.byteLength) throw bad('acknowledgement length mismatch');
  return { stream, ok, reason: b.toString('utf8', 8, 8 + n) };
}
