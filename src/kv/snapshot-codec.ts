import { RaftError } from '../errors.js';

/**
 * The byte format of a KV snapshot (version 1), written and read in chunks so that a store of
 * millions of keys is never serialized into (or parsed from) one buffer:
 *
 * ```
 * u32 header length | header: JSON { v: 1, appliedIndex, logTime, lastExpiry, sessions, members, keys }
 * keys × ( u16 key length | key (UTF-8) | f64 modIndex | f64 createIndex | u32 value length | value )
 * ```
 *
 * All integers big-endian. `keys` in the header is the number of records that follow.
 */

/** Chunk size the writer aims for: small enough that producing one is a short pause for applying. */
export const KV_SNAPSHOT_CHUNK = 256 * 1024;
const RECORD_FIXED = 2 + 16 + 4;
const MAX_KEY_BYTES = 0xffff;

/** Packs records into chunks of about {@link KV_SNAPSHOT_CHUNK} bytes. */
export class KvSnapshotWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly ready: Uint8Array[] = [];

  constructor(private readonly chunk = KV_SNAPSHOT_CHUNK) {
    this.buf = Buffer.allocUnsafe(chunk);
  }

  /** Chunks completed so far (taken by the caller). */
  take(): Uint8Array[] {
    return this.ready.splice(0);
  }

  private room(n: number): void {
    if (this.buf.byteLength - this.pos >= n) return;
    this.flush();
    if (n > this.buf.byteLength) this.buf = Buffer.allocUnsafe(n);
  }

  /** Completes the current chunk (if it holds anything). */
  flush(): void {
    if (this.pos === 0) return;
    this.ready.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(this.chunk, 0));
    this.pos = 0;
  }

  header(h: unknown): void {
    const json = Buffer.from(JSON.stringify(h), 'utf8');
    this.room(4 + json.byteLength);
    this.buf.writeUInt32BE(json.byteLength, this.pos);
    json.copy(this.buf, this.pos + 4);
    this.pos += 4 + json.byteLength;
  }

  record(key: string, modIndex: number, createIndex: number, value: Uint8Array): void {
    const kl = Buffer.byteLength(key, 'utf8');
    if (kl > MAX_KEY_BYTES) throw new RaftError('INVARIANT', `key of ${kl} bytes cannot be snapshotted`);
    this.room(RECORD_FIXED + kl + value.byteLength);
    const b = this.buf;
    let o = this.pos;
    b.writeUInt16BE(kl, o);
    o += 2;
    o += b.write(key, o, 'utf8');
    b.writeDoubleBE(modIndex, o);
    b.writeDoubleBE(createIndex, o + 8);
    b.writeUInt32BE(value.byteLength, o + 16);
    o += 20;
    b.set(value, o);
    this.pos = o + value.byteLength;
    if (this.pos >= this.chunk) this.flush();
  }
}

/** What the header of a KV snapshot holds (besides the records). */
export interface KvSnapshotHeader {
  readonly v: number;
  readonly appliedIndex: number;
  readonly logTime: number;
  readonly lastExpiry: number;
  readonly sessions: [string, number, unknown, number][];
  readonly members: [string, unknown][];
  readonly keys: number;
}

/**
 * Parses a KV snapshot from chunks of any size, calling `onHeader` once and `onRecord` per key,
 * as bytes arrive. A record split across chunks is reassembled (only its bytes are copied).
 */
export class KvSnapshotParser {
  private pending: Buffer = Buffer.alloc(0);
  private header: KvSnapshotHeader | undefined;
  private records = 0;

  constructor(
    private readonly onHeader: (h: KvSnapshotHeader) => void,
    private readonly onRecord: (
      key: string,
      modIndex: number,
      createIndex: number,
      value: Uint8Array,
    ) => void,
  ) {}

  private bad(reason: string): RaftError {
    return new RaftError('CORRUPT_LOG', `kv snapshot is malformed: ${reason}`);
  }

  push(chunk: Uint8Array): void {
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const b = this.pending.byteLength === 0 ? c : Buffer.concat([this.pending, c]);
    let o = 0;
    const n = b.byteLength;
    if (this.header === undefined) {
      if (n < 4) {
        this.pending = Buffer.from(b);
        return;
      }
      const hl = b.readUInt32BE(0);
      if (n < 4 + hl) {
        this.pending = Buffer.from(b);
        return;
      }
      let h: KvSnapshotHeader;
      try {
        h = JSON.parse(b.toString('utf8', 4, 4 + hl)) as KvSnapshotHeader;
      } catch {
        throw this.bad('the header is not JSON');
      }
      if (h?.v !== 1 || !Number.isSafeInteger(h.keys) || h.keys < 0) throw this.bad('unknown header');
      this.header = h;
      this.onHeader(h);
      o = 4 + hl;
    }
    const total = this.header.keys;
    while (this.records < total) {
      if (n - o < 2) break;
      const kl = b.readUInt16BE(o);
      if (n - o < RECORD_FIXED + kl) break;
      const vl = b.readUInt32BE(o + 2 + kl + 16);
      if (n - o < RECORD_FIXED + kl + vl) break;
      const key = b.toString('utf8', o + 2, o + 2 + kl);
      const modIndex = b.readDoubleBE(o + 2 + kl);
      const createIndex = b.readDoubleBE(o + 2 + kl + 8);
      const vs = o + RECORD_FIXED + kl;
      // Copied: the chunk's buffer is not ours to keep.
      this.onRecord(key, modIndex, createIndex, Uint8Array.prototype.slice.call(b, vs, vs + vl));
      o = vs + vl;
      this.records++;
    }
    if (this.records === total && o < n) throw this.bad(`${n - o} bytes after the last record`);
    this.pending = o === n ? Buffer.alloc(0) : Buffer.from(b.subarray(o));
  }

  /** The input ended: it must have held exactly the records the header announced. */
  end(): void {
    if (this.header === undefined) throw this.bad('no header');
    if (this.records !== this.header.keys || this.pending.byteLength > 0) {
      throw this.bad(`${this.records} of ${this.header.keys} records`);
    }
  }
}
