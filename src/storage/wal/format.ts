/**
 * The on-disk format of WAL segments (format version 1). All integers are little-endian; 64-bit
 * values are written as two u32 halves (low first) and must be below 2^53.
 *
 * Segment file `wal/<seq, 20 digits>.wal`:
 *
 *     [segment header, 32 bytes] [batch] [batch] ... [zeros: preallocated space] [seal trailer?]
 *
 * Segment header: magic "TSRFWAL\0", u32 version, u32 salt, u64 seq, u32 reserved, u32 CRC-32 of
 * the 28 bytes before it. The salt (random per segment) seeds every record checksum in the
 * segment, so bytes copied or left over from another segment never verify.
 *
 * A batch is what one `save()` writes with one write and one sync (group commit). It starts at
 * an 8-byte aligned offset, begins with a BATCH record (its exact byte length and record count),
 * ends with the 4-byte marker 7B E1 C3 A5 (so its last bytes are never zero: a lost final
 * sector always shows) and is followed by zero padding to the next multiple of 8. Every record is
 *
 *     u32 crc | u32 len | body[len]        crc = CRC-32(len..end of body, seed = salt)
 *
 * and body[0] is the kind:
 *
 *     BATCH  (1): kind, 3 pad, u32 batchLen (unpadded, including this record), u32 count (records after it)
 *     ENTRY  (2): kind, u8 type (0 normal, 1 conf), u16 pad, u64 index, u64 term, data
 *     COMMIT (3): kind, 3 pad, u64 commit index
 *     RESET  (4): kind, 3 pad, u64 index, u64 term   (the log was replaced by a snapshot at index)
 *
 * An ENTRY whose index is at or below the last one replayed truncates the log there first
 * (§5.3 conflict truncation is an append, never an in-place overwrite: crash-safe by construction).
 *
 * Seal trailer (last 32 bytes of the file, written once the next segment exists): magic
 * "TSRFSEAL", u32 sealPos (end of the last batch), u32 dataCrc (CRC-32 of [32, sealPos), seed =
 * salt), u32 salt, 3 x u32 reserved, u32 CRC-32 of the 28 bytes before it. A sealed segment is
 * checked on open with one bulk checksum instead of one per record.
 */
import type { Entry, Index, Term } from '../../core/messages.js';
import { CorruptionError, RaftError } from '../../errors.js';
import { crc32 } from './crc32.js';

export const WAL_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 32;
export const TRAILER_SIZE = 32;
export const RECORD_HEADER_SIZE = 8;
export const KIND_BATCH = 1;
export const KIND_ENTRY = 2;
export const KIND_COMMIT = 3;
export const KIND_RESET = 4;
export const BATCH_RECORD_SIZE = RECORD_HEADER_SIZE + 12;
export const ENTRY_OVERHEAD = RECORD_HEADER_SIZE + 20;
export const COMMIT_RECORD_SIZE = RECORD_HEADER_SIZE + 12;
export const RESET_RECORD_SIZE = RECORD_HEADER_SIZE + 20;
/** The last 4 bytes of every batch (no zero byte in it). */
export const BATCH_END_MARK = 0xa5c3e17b;
export const BATCH_END_SIZE = 4;

const SEGMENT_MAGIC = 'TSRFWAL\0';
const TRAILER_MAGIC = 'TSRFSEAL';
const TWO_32 = 0x1_0000_0000;

/** Round up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * What one batch records, in this order: a RESET (the log was replaced by a snapshot), the
 * entries (one group per save merged into the batch), a COMMIT.
 */
export interface WalBatch {
  readonly reset?: { readonly index: Index; readonly term: Term } | undefined;
  readonly entries: readonly (readonly Entry[])[];
  readonly commit?: Index | undefined;
}

export function writeU64(buf: Uint8Array, off: number, v: number): void {
  const lo = v % TWO_32;
  const hi = (v - lo) / TWO_32;
  buf[off] = lo & 0xff;
  buf[off + 1] = (lo >>> 8) & 0xff;
  buf[off + 2] = (lo >>> 16) & 0xff;
  buf[off + 3] = lo >>> 24;
  buf[off + 4] = hi & 0xff;
  buf[off + 5] = (hi >>> 8) & 0xff;
  buf[off + 6] = (hi >>> 16) & 0xff;
  buf[off + 7] = hi >>> 24;
}

/** u32 at `off` (byte arithmetic: much cheaper than Buffer#readUInt32LE in hot loops). */
export function u32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = v >>> 24;
}

export function readU64(buf: Uint8Array, off: number): number {
  return u32(buf, off) + u32(buf, off + 4) * TWO_32;
}

/** Unpadded byte length of `batch`. */
export function batchLength(batch: WalBatch): number {
  let n = BATCH_RECORD_SIZE + BATCH_END_SIZE;
  if (batch.reset !== undefined) n += RESET_RECORD_SIZE;
  for (const group of batch.entries) {
    for (const e of group) n += ENTRY_OVERHEAD + e.data.byteLength;
  }
  if (batch.commit !== undefined) n += COMMIT_RECORD_SIZE;
  return n;
}

function seal(buf: Buffer, off: number, bodyLen: number, salt: number): void {
  writeU32(buf, off + 4, bodyLen);
  writeU32(buf, off, crc32(buf, off + 4, off + RECORD_HEADER_SIZE + bodyLen, salt));
}

/**
 * Encode one batch for a segment with `salt`. Returns the padded bytes to write and, for each
 * entry in order, the offset of its record relative to the start of the batch.
 */
export function encodeBatch(batch: WalBatch, salt: number): { buf: Buffer; entryOffsets: number[] } {
  const len = batchLength(batch);
  const padded = align8(len);
  const buf = Buffer.allocUnsafe(padded);
  buf.fill(0, len);
  const entryOffsets: number[] = [];
  let p = BATCH_RECORD_SIZE;
  let count = 0;
  if (batch.reset !== undefined) {
    const b = p + RECORD_HEADER_SIZE;
    writeU32(buf, b, KIND_RESET);
    writeU64(buf, b + 4, batch.reset.index);
    writeU64(buf, b + 12, batch.reset.term);
    seal(buf, p, 20, salt);
    p += RESET_RECORD_SIZE;
    count++;
  }
  for (const group of batch.entries) {
    for (const e of group) {
      const b = p + RECORD_HEADER_SIZE;
      writeU32(buf, b, KIND_ENTRY | ((e.type === 'conf' ? 1 : 0) << 8));
      writeU64(buf, b + 4, e.index);
      writeU64(buf, b + 12, e.term);
      buf.set(e.data, b + 20);
      seal(buf, p, 20 + e.data.byteLength, salt);
      entryOffsets.push(p);
      p += ENTRY_OVERHEAD + e.data.byteLength;
      count++;
    }
  }
  if (batch.commit !== undefined) {
    const b = p + RECORD_HEADER_SIZE;
    writeU32(buf, b, KIND_COMMIT);
    writeU64(buf, b + 4, batch.commit);
    seal(buf, p, 12, salt);
    p += COMMIT_RECORD_SIZE;
    count++;
  }
  writeU32(buf, p, BATCH_END_MARK);
  writeU32(buf, RECORD_HEADER_SIZE, KIND_BATCH);
  writeU32(buf, RECORD_HEADER_SIZE + 4, len);
  writeU32(buf, RECORD_HEADER_SIZE + 8, count);
  seal(buf, 0, 12, salt);
  return { buf, entryOffsets };
}

/**
 * Decode the ENTRY record at `off` of `buf` (which holds file bytes starting at file offset
 * `base`), checking its checksum. `data` is a view into `buf`.
 */
export function decodeEntryAt(file: string, buf: Buffer, off: number, base: number, salt: number): Entry {
  const len = buf.readUInt32LE(off + 4);
  if (len < 20 || off + RECORD_HEADER_SIZE + len > buf.byteLength) {
    throw new CorruptionError(file, base + off, `entry record has impossible length ${len}`);
  }
  if (crc32(buf, off + 4, off + RECORD_HEADER_SIZE + len, salt) !== buf.readUInt32LE(off)) {
    throw new CorruptionError(file, base + off, 'entry record checksum mismatch');
  }
  const b = off + RECORD_HEADER_SIZE;
  const word = buf.readUInt32LE(b);
  if ((word & 0xff) !== KIND_ENTRY) throw new CorruptionError(file, base + off, 'expected an entry record');
  return {
    index: readU64(buf, b + 4),
    term: readU64(buf, b + 12),
    type: ((word >>> 8) & 0xff) === 1 ? 'conf' : 'normal',
    data: new Uint8Array(buf.buffer, buf.byteOffset + b + 20, len - 20),
  };
}

/** The 32-byte header of segment `seq`. */
export function encodeSegmentHeader(seq: number, salt: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_SIZE);
  buf.write(SEGMENT_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(WAL_VERSION, 8);
  buf.writeUInt32LE(salt, 12);
  writeU64(buf, 16, seq);
  buf.writeUInt32LE(crc32(buf, 0, 28), 28);
  return buf;
}

/** Check a segment header; returns its salt. */
export function decodeSegmentHeader(file: string, buf: Buffer, size: number, seq: number): number {
  if (size < SEGMENT_HEADER_SIZE) {
    throw new CorruptionError(
      file,
      size,
      `segment is ${size} bytes, shorter than its ${SEGMENT_HEADER_SIZE}-byte header`,
    );
  }
  if (buf.toString('latin1', 0, 8) !== SEGMENT_MAGIC) {
    throw new CorruptionError(file, 0, 'bad magic: not a tsraft WAL segment');
  }
  if (crc32(buf, 0, 28) !== buf.readUInt32LE(28)) {
    throw new CorruptionError(file, 0, 'segment header checksum mismatch');
  }
  const version = buf.readUInt32LE(8);
  if (version !== WAL_VERSION) {
    throw new RaftError(
      'UNSUPPORTED_FORMAT',
      `${file}: WAL format version ${version}; this build reads version ${WAL_VERSION}`,
    );
  }
  const got = readU64(buf, 16);
  if (got !== seq) throw new CorruptionError(file, 16, `header says segment ${got}, file name says ${seq}`);
  return buf.readUInt32LE(12);
}

/** The seal trailer for a segment whose batches end at `sealPos`. */
export function encodeTrailer(sealPos: number, dataCrc: number, salt: number): Buffer {
  const buf = Buffer.alloc(TRAILER_SIZE);
  buf.write(TRAILER_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(sealPos, 8);
  buf.writeUInt32LE(dataCrc, 12);
  buf.writeUInt32LE(salt, 16);
  buf.writeUInt32LE(crc32(buf, 0, 28), 28);
  return buf;
}

/** The seal trailer at the end of `buf[0, size)`, if there is a valid one for `salt`. */
export function decodeTrailer(
  buf: Buffer,
  size: number,
  salt: number,
): { sealPos: number; dataCrc: number } | undefined {
  const t = size - TRAILER_SIZE;
  if (t < SEGMENT_HEADER_SIZE) return undefined;
  if (buf.toString('latin1', t, t + 8) !== TRAILER_MAGIC) return undefined;
  if (crc32(buf, t, t + 28) !== buf.readUInt32LE(t + 28)) return undefined;
  if (buf.readUInt32LE(t + 16) !== salt) return undefined;
  const sealPos = buf.readUInt32LE(t + 8);
  if (sealPos < SEGMENT_HEADER_SIZE || sealPos > t) return undefined;
  return { sealPos, dataCrc: buf.readUInt32LE(t + 12) };
}

/** `wal/<seq>.wal` file name. */
export function segmentFileName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.wal`;
}

/** The sequence number of a segment file name, or `undefined` if it is not one. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = /^(\d{20})\.wal$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
