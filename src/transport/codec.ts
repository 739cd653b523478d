import {
  unreachable,
  type ConfState,
  type Entry,
  type Message,
  type MessageType,
  type NodeId,
} from '../core/messages.js';
import { RaftError } from '../errors.js';
import { FRAME_HEADER_BYTES } from './framing.js';

/**
 * The one binary codec for every {@link Message} (DESIGN.md "transport and node").
 *
 * Layout of an encoded message (all integers big-endian):
 *
 * ```
 * u8  format version (CODEC_VERSION)
 * u8  message type code (TYPE_CODES)
 * u8  flags (booleans; meaning per type, unknown bits are rejected)
 * str from, str to            str   = u16 byte length + UTF-8
 * u64 term                    u64   = unsigned integer ≤ 2^53 - 1 (hi u32, lo u32)
 * ...type-specific fields     bytes = u32 byte length + raw bytes
 * ```
 *
 * Entries are `u32 count` then per entry `u64 term, u64 index, u8 type, bytes data`. Entry
 * payloads are opaque and never re-encoded: {@link encodeFrames} copies small payloads once into
 * the frame buffer and passes large ones (≥ `refThreshold`) by reference, so a socket can write
 * the whole batch with one `writev`. {@link decodeMessage} returns entries whose `data` are views
 * into the received bytes (no copy).
 *
 * Decoding never trusts a length: every read is bounds-checked against the bytes actually
 * present, so a lying length fails with `BAD_REQUEST` instead of allocating.
 */

/** The format byte leading every encoded message. Bump on any incompatible change. */
export const CODEC_VERSION = 1;

/** Payloads at least this large are passed to the socket by reference rather than copied. */
export const DEFAULT_REF_THRESHOLD = 8 * 1024;

/** Stable wire codes of every message type (never reuse a retired code). */
export const TYPE_CODES: Readonly<Record<MessageType, number>> = Object.freeze({
  hup: 1,
  beat: 2,
  'check-quorum': 3,
  prop: 4,
  vote: 5,
  prevote: 6,
  'vote-resp': 7,
  'prevote-resp': 8,
  app: 9,
  'app-resp': 10,
  heartbeat: 11,
  'heartbeat-resp': 12,
  snap: 13,
  'snap-status': 14,
  unreachable: 15,
  'transfer-leader': 16,
  'timeout-now': 17,
  'read-index': 18,
  'read-index-resp': 19,
});

const TYPES_BY_CODE: (MessageType | undefined)[] = [];
for (const [type, code] of Object.entries(TYPE_CODES)) TYPES_BY_CODE[code] = type as MessageType;

// Flag bits. A boolean that is optional in the Message type uses two bits (present, value) so
// that decode(encode(m)) reproduces `m` exactly (absent stays absent under exactOptionalPropertyTypes).
const F_REJECT = 0x01;
const F_TRANSFER_SET = 0x02;
const F_TRANSFER = 0x04;
const F_LEASE_SET = 0x08;
const F_LEASE = 0x10;

const HEADER_FIXED = 3 + 8; // version, type, flags, term
const STR_OVERHEAD = 2;
const BYTES_OVERHEAD = 4;
const ENTRY_FIXED = 8 + 8 + 1 + BYTES_OVERHEAD;
const MAX_STR_BYTES = 0xffff;
const TWO_32 = 0x1_0000_0000;
/** hi word limit so that hi * 2^32 + lo stays a safe integer. */
const MAX_HI = 0x1fffff;

function bad(reason: string): RaftError {
  return new RaftError('BAD_REQUEST', `malformed message: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Sizes

/** Sums a message's encoded size; `ref` counts payload bytes passed by reference. */
class Sizer {
  total = 0;
  ref = 0;
  constructor(private readonly threshold: number) {}

  str(s: string): void {
    this.total += STR_OVERHEAD + Buffer.byteLength(s, 'utf8');
  }
  bytes(b: Uint8Array): void {
    this.total += BYTES_OVERHEAD + b.byteLength;
    if (b.byteLength >= this.threshold) this.ref += b.byteLength;
  }
  strs(list: readonly string[]): void {
    this.total += 4;
    for (const s of list) this.str(s);
  }
  entries(ents: readonly Entry[]): void {
    this.total += 4 + ents.length * ENTRY_FIXED;
    for (const e of ents) {
      const n = e.data.byteLength;
      this.total += n;
      if (n >= this.threshold) this.ref += n;
    }
  }
  conf(c: ConfState): void {
    this.strs(c.voters);
    this.strs(c.outgoing);
    this.strs(c.learners);
    this.strs(c.learnersNext);
  }

  message(m: Message): void {
    this.total += HEADER_FIXED;
    this.str(m.from);
    this.str(m.to);
    switch (m.type) {
      case 'hup':
      case 'beat':
      case 'check-quorum':
      case 'vote-resp':
      case 'prevote-resp':
      case 'snap-status':
      case 'unreachable':
      case 'timeout-now':
        return;
      case 'prop':
        return this.entries(m.entries);
      case 'vote':
      case 'prevote':
        this.total += 16;
        return;
      case 'app':
        this.total += 24;
        return this.entries(m.entries);
      case 'app-resp':
        this.total += 24;
        return;
      case 'heartbeat':
        this.total += 8;
        return this.bytes(m.context);
      case 'heartbeat-resp':
        return this.bytes(m.context);
      case 'snap':
        this.total += 16;
        this.conf(m.snapshot.meta.conf);
        return this.bytes(m.snapshot.data);
      case 'transfer-leader':
        return this.str(m.transferee);
      case 'read-index':
        return this.bytes(m.context);
      case 'read-index-resp':
        this.total += 8;
        return this.bytes(m.context);
      default:
        return unreachable(m);
    }
  }
}

/** The exact number of bytes {@link encodeMessage} produces for `m` (without a frame header). */
export function encodedSize(m: Message): number {
  const s = new Sizer(Infinity);
  s.message(m);
  return s.total;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Writes into one preallocated buffer. With a `chunks` list, payloads ≥ `threshold` are not
 * copied: the bytes written so far are cut off as a chunk, then the payload itself is pushed.
 */
class Writer {
  private chunkStart: number;
  constructor(
    readonly buf: Buffer,
    public pos: number,
    private readonly chunks: Buffer[] | undefined,
    private readonly threshold: number,
  ) {
    this.chunkStart = pos;
  }

  // Byte-wise stores: plain typed-array writes, cheaper than Buffer#writeUInt32BE's checks. The
  // buffer was sized exactly beforehand, so nothing can run past its end.
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.pos = p + 2;
  }
  u32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }
  u64(v: number, field: string): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v)) {
      throw new RaftError('BAD_REQUEST', `cannot encode ${field}=${v}: not a non-negative safe integer`);
    }
    if (v <= 0xffffffff) {
      this.u32(0);
    } else {
      this.u32((v / TWO_32) >>> 0);
    }
    this.u32(v >>> 0);
  }
  str(s: string): void {
    // Write the UTF-8 bytes first, then backfill the length: no second byteLength pass.
    const at = this.pos;
    const n = this.buf.write(s, at + 2, 'utf8');
    if (n > MAX_STR_BYTES) throw new RaftError('BAD_REQUEST', `cannot encode a string of ${n} bytes`);
    this.u16(n);
    this.pos = at + 2 + n;
  }
  strs(list: readonly string[]): void {
    this.u32(list.length);
    for (const s of list) this.str(s);
  }
  /** Raw payload bytes (the caller wrote the length). */
  raw(b: Uint8Array): void {
    const n = b.byteLength;
    if (n === 0) return;
    if (this.chunks !== undefined && n >= this.threshold) {
      if (this.pos > this.chunkStart) this.chunks.push(this.buf.subarray(this.chunkStart, this.pos));
      this.chunks.push(Buffer.from(b.buffer, b.byteOffset, n));
      this.chunkStart = this.pos;
      return;
    }
    this.buf.set(b, this.pos);
    this.pos += n;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.raw(b);
  }
  entries(ents: readonly Entry[]): void {
    this.u32(ents.length);
    for (const e of ents) {
      this.u64(e.term, 'entry.term');
      this.u64(e.index, 'entry.index');
      this.u8(e.type === 'conf' ? 1 : 0);
      this.bytes(e.data);
    }
  }
  conf(c: ConfState): void {
    this.strs(c.voters);
    this.strs(c.outgoing);
    this.strs(c.learners);
    this.strs(c.learnersNext);
  }
  /** Cuts off the bytes written since the last cut as a chunk. */
  finish(): void {
    if (this.chunks !== undefined && this.pos > this.chunkStart) {
      this.chunks.push(this.buf.subarray(this.chunkStart, this.pos));
    }
    this.chunkStart = this.pos;
  }

  message(m: Message): void {
    this.u8(CODEC_VERSION);
    this.u8(TYPE_CODES[m.type]);
    const flagsAt = this.pos++;
    let flags = 0;
    this.str(m.from);
    this.str(m.to);
    this.u64(m.term, 'term');
    switch (m.type) {
      case 'hup':
        flags = optionalFlag(m.transfer, F_TRANSFER_SET, F_TRANSFER);
        break;
      case 'beat':
      case 'check-quorum':
      case 'unreachable':
      case 'timeout-now':
        break;
      case 'prop':
        this.entries(m.entries);
        break;
      case 'vote':
      case 'prevote':
        flags = optionalFlag(m.transfer, F_TRANSFER_SET, F_TRANSFER);
        this.u64(m.lastLogIndex, 'lastLogIndex');
        this.u64(m.lastLogTerm, 'lastLogTerm');
        break;
      case 'vote-resp':
      case 'prevote-resp':
      case 'snap-status':
        flags = m.reject ? F_REJECT : 0;
        break;
      case 'app':
        this.u64(m.prevIndex, 'prevIndex');
        this.u64(m.prevTerm, 'prevTerm');
        this.u64(m.commit, 'commit');
        this.entries(m.entries);
        break;
      case 'app-resp':
        flags = m.reject ? F_REJECT : 0;
        this.u64(m.index, 'index');
        this.u64(m.hintIndex, 'hintIndex');
        this.u64(m.hintTerm, 'hintTerm');
        break;
      case 'heartbeat':
        this.u64(m.commit, 'commit');
        this.bytes(m.context);
        break;
      case 'heartbeat-resp':
        this.bytes(m.context);
        break;
      case 'snap':
        this.u64(m.snapshot.meta.index, 'snapshot.index');
        this.u64(m.snapshot.meta.term, 'snapshot.term');
        this.conf(m.snapshot.meta.conf);
        this.bytes(m.snapshot.data);
        break;
      case 'transfer-leader':
        this.str(m.transferee);
        break;
      case 'read-index':
        flags = optionalFlag(m.lease, F_LEASE_SET, F_LEASE);
        this.bytes(m.context);
        break;
      case 'read-index-resp':
        flags = m.reject ? F_REJECT : 0;
        this.u64(m.index, 'index');
        this.bytes(m.context);
        break;
      default:
        return unreachable(m);
    }
    this.buf[flagsAt] = flags;
  }
}

function optionalFlag(v: boolean | undefined, set: number, value: number): number {
  if (v === undefined) return 0;
  return v ? set | value : set;
}

/**
 * Encodes one message into one contiguous buffer (no frame header). Throws `BAD_REQUEST` for
 * a value that cannot be encoded (a negative or unsafe integer, a string over 64 KiB).
 */
export function encodeMessage(m: Message): Buffer {
  const size = encodedSize(m);
  const w = new Writer(Buffer.allocUnsafe(size), 0, undefined, Infinity);
  w.message(m);
  return w.buf;
}

/** Options of {@link encodeFrames}. */
export interface EncodeFramesOptions {
  /**
   * Payloads of at least this many bytes are passed by reference (one extra iovec) rather than
   * copied. Default {@link DEFAULT_REF_THRESHOLD}; `Infinity` copies everything into one buffer.
   */
  readonly refThreshold?: number;
}

/**
 * Encodes a batch of messages as length-prefixed frames, ready for `socket.write` of each chunk
 * under one `cork()` (or `Buffer.concat` when one buffer is wanted). All headers and small
 * payloads share one allocation; large payloads are referenced, not copied, so the caller must
 * not mutate entry data after handing it over (Raft entries are immutable anyway).
 *
 * Returns the chunks and their total byte length (frame headers included).
 */
export function encodeFrames(
  msgs: readonly Message[],
  opts: EncodeFramesOptions = {},
): { chunks: Buffer[]; bytes: number } {
  const threshold = opts.refThreshold ?? DEFAULT_REF_THRESHOLD;
  const sizer = new Sizer(threshold);
  const sizes: number[] = new Array<number>(msgs.length);
  let prev = 0;
  for (let i = 0; i < msgs.length; i++) {
    sizer.message(msgs[i]!);
    sizes[i] = sizer.total - prev;
    prev = sizer.total;
  }
  const headers = msgs.length * FRAME_HEADER_BYTES;
  const inline = sizer.total - sizer.ref + headers;
  const chunks: Buffer[] = [];
  const w = new Writer(Buffer.allocUnsafe(inline), 0, chunks, threshold);
  for (let i = 0; i < msgs.length; i++) {
    w.u32(sizes[i]!);
    w.message(msgs[i]!);
  }
  w.finish();
  return { chunks, bytes: sizer.total + headers };
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bounds-checked reads over untrusted bytes; every failure is a `BAD_REQUEST`. */
class Reader {
  pos = 0;
  readonly end: number;
  constructor(readonly buf: Buffer) {
    this.end = buf.byteLength;
  }

  need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw bad(`${what} needs ${n} bytes but only ${this.end - this.pos} remain at offset ${this.pos}`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }
  /** Unchecked big-endian u32 at `p` (the caller checked bounds). */
  private at32(p: number): number {
    const b = this.buf;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.at32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const hi = this.at32(this.pos);
    if (hi > MAX_HI) throw bad(`${what} exceeds 2^53 - 1`);
    const lo = this.at32(this.pos + 4);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }
  str(what: string): string {
    const n = this.u16(what);
    this.need(n, what);
    const start = this.pos;
    this.pos += n;
    let ascii = true;
    for (let i = start; i < start + n; i++) {
      if (this.buf[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return this.buf.toString('latin1', start, start + n);
    try {
      return utf8.decode(this.buf.subarray(start, start + n));
    } catch {
      throw bad(`${what} is not valid UTF-8`);
    }
  }
  /** A view of the next `bytes` field (no copy). */
  bytes(what: string): Uint8Array {
    const n = this.u32(what);
    this.need(n, what);
    const v = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos += n;
    return v;
  }
  strs(what: string): NodeId[] {
    const n = this.u32(what);
    // A lying count fails here, before anything is allocated: each item takes ≥ 2 bytes.
    this.need(n * STR_OVERHEAD, what);
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(this.str(what));
    return out;
  }
  entries(): Entry[] {
    const n = this.u32('entries.count');
    this.need(n * ENTRY_FIXED, 'entries');
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const term = this.u64('entry.term');
      const index = this.u64('entry.index');
      const t = this.u8('entry.type');
      if (t > 1) throw bad(`unknown entry type ${t}`);
      const data = this.bytes('entry.data');
      out.push({ term, index, type: t === 1 ? 'conf' : 'normal', data });
    }
    return out;
  }
  conf(): ConfState {
    return {
      voters: this.strs('conf.voters'),
      outgoing: this.strs('conf.outgoing'),
      learners: this.strs('conf.learners'),
      learnersNext: this.strs('conf.learnersNext'),
    };
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function checkFlags(flags: number, allowed: number, type: MessageType): void {
  if ((flags & ~allowed) !== 0) throw bad(`flags 0x${flags.toString(16)} not valid for ${type}`);
}

function optionalBool(flags: number, set: number, value: number): boolean | undefined {
  if ((flags & set) === 0) {
    if ((flags & value) !== 0) throw bad('flag value without its presence bit');
    return undefined;
  }
  return (flags & value) !== 0;
}

/**
 * Decodes one message from untrusted bytes (one frame's payload). Throws only a
 * {@link RaftError} with code `BAD_REQUEST`. Entry data, contexts and snapshot data in the result
 * are views into `payload`: keep `payload` unmodified while they are in use.
 */
export function decodeMessage(payload: Uint8Array): Message {
  try {
    return decode(new Reader(asBuffer(payload)));
  } catch (e) {
    if (e instanceof RaftError) throw e;
    throw new RaftError('BAD_REQUEST', `malformed message: ${(e as Error).message}`, { cause: e });
  }
}

function decode(r: Reader): Message {
  const version = r.u8('version');
  if (version !== CODEC_VERSION) throw bad(`unsupported format version ${version}`);
  const code = r.u8('type');
  const type = TYPES_BY_CODE[code];
  if (type === undefined) throw bad(`unknown message type code ${code}`);
  const flags = r.u8('flags');
  const from = r.str('from');
  const to = r.str('to');
  const term = r.u64('term');
  const m = decodeBody(r, type, flags, from, to, term);
  if (r.pos !== r.end) throw bad(`${r.end - r.pos} trailing bytes after ${type}`);
  return m;
}

function decodeBody(
  r: Reader,
  type: MessageType,
  flags: number,
  from: NodeId,
  to: NodeId,
  term: number,
): Message {
  switch (type) {
    case 'hup': {
      checkFlags(flags, F_TRANSFER_SET | F_TRANSFER, type);
      const transfer = optionalBool(flags, F_TRANSFER_SET, F_TRANSFER);
      return transfer === undefined ? { type, from, to, term } : { type, from, to, term, transfer };
    }
    case 'beat':
    case 'check-quorum':
    case 'unreachable':
    case 'timeout-now':
      checkFlags(flags, 0, type);
      return { type, from, to, term };
    case 'prop':
      checkFlags(flags, 0, type);
      return { type, from, to, term, entries: r.entries() };
    case 'vote':
    case 'prevote': {
      checkFlags(flags, F_TRANSFER_SET | F_TRANSFER, type);
      const transfer = optionalBool(flags, F_TRANSFER_SET, F_TRANSFER);
      const lastLogIndex = r.u64('lastLogIndex');
      const lastLogTerm = r.u64('lastLogTerm');
      const m = { type, from, to, term, lastLogIndex, lastLogTerm };
      return transfer === undefined ? m : { ...m, transfer };
    }
    case 'vote-resp':
    case 'prevote-resp':
    case 'snap-status':
      checkFlags(flags, F_REJECT, type);
      return { type, from, to, term, reject: (flags & F_REJECT) !== 0 };
    case 'app': {
      checkFlags(flags, 0, type);
      const prevIndex = r.u64('prevIndex');
      const prevTerm = r.u64('prevTerm');
      const commit = r.u64('commit');
      return { type, from, to, term, prevIndex, prevTerm, commit, entries: r.entries() };
    }
    case 'app-resp': {
      checkFlags(flags, F_REJECT, type);
      const index = r.u64('index');
      const hintIndex = r.u64('hintIndex');
      const hintTerm = r.u64('hintTerm');
      return { type, from, to, term, reject: (flags & F_REJECT) !== 0, index, hintIndex, hintTerm };
    }
    case 'heartbeat': {
      checkFlags(flags, 0, type);
      const commit = r.u64('commit');
      return { type, from, to, term, commit, context: r.bytes('context') };
    }
    case 'heartbeat-resp':
      checkFlags(flags, 0, type);
      return { type, from, to, term, context: r.bytes('context') };
    case 'snap': {
      checkFlags(flags, 0, type);
      const index = r.u64('snapshot.index');
      const sterm = r.u64('snapshot.term');
      const conf = r.conf();
      const data = r.bytes('snapshot.data');
      return { type, from, to, term, snapshot: { meta: { index, term: sterm, conf }, data } };
    }
    case 'transfer-leader':
      checkFlags(flags, 0, type);
      return { type, from, to, term, transferee: r.str('transferee') };
    case 'read-index': {
      checkFlags(flags, F_LEASE_SET | F_LEASE, type);
      const lease = optionalBool(flags, F_LEASE_SET, F_LEASE);
      const context = r.bytes('context');
      return lease === undefined
        ? { type, from, to, term, context }
        : { type, from, to, term, context, lease };
    }
    case 'read-index-resp': {
      checkFlags(flags, F_REJECT, type);
      const index = r.u64('index');
      const context = r.bytes('context');
      return { type, from, to, term, index, context, reject: (flags & F_REJECT) !== 0 };
    }
    default:
      return unreachable(type);
  }
}
