/**
 * Just enough protobuf and gRPC framing for the etcd requests of the benchmark, encoded by
 * hand: the messages are fixed ahead of time, so the load generator does no encoding at all
 * while it measures.
 */

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** A varint (non-negative integers up to 2^53). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field (bytes, string or embedded message). */
export function bytesField(field: number, data: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | LEN), varint(data.length), data]);
}

/** A varint field. */
export function varintField(field: number, n: number): Buffer {
  return Buffer.concat([varint((field << 3) | VARINT), varint(n)]);
}

/** One gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + message.length);
  b[0] = 0;
  b.writeUInt32BE(message.length, 1);
  b.set(message, 5);
  return b;
}

/** The message of a gRPC response body holding exactly one uncompressed message. */
export function grpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC body of ${body.length} bytes`);
  if (body[0] !== 0) throw new Error('compressed gRPC message');
  const len = body.readUInt32BE(1);
  if (body.length !== 5 + len) throw new Error(`gRPC body of ${body.length} bytes, message of ${len}`);
  return body.subarray(5);
}

export interface Field {
  readonly field: number;
  readonly wire: number;
  /** Value of a varint or fixed field. */
  readonly int: bigint;
  /** Value of a length-delimited field (empty otherwise). */
  readonly bytes: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new Error('truncated varint');
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, pos];
    shift += 7n;
  }
}

const EMPTY = Buffer.alloc(0);

/** The top-level fields of a message, in order (not for the hot path). */
export function decode(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p] = readVarint(buf, pos);
    pos = p;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === VARINT) {
      const [v, q] = readVarint(buf, pos);
      pos = q;
      out.push({ field, wire, int: v, bytes: EMPTY });
    } else if (wire === LEN) {
      const [len, q] = readVarint(buf, pos);
      const end = q + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ field, wire, int: 0n, bytes: buf.subarray(q, end) });
      pos = end;
    } else if (wire === FIXED64) {
      if (pos + 8 > buf.length) throw new Error('truncated field');
      out.push({ field, wire, int: buf.readBigUInt64LE(pos), bytes: EMPTY });
      pos += 8;
    } else if (wire === FIXED32) {
      if (pos + 4 > buf.length) throw new Error('truncated field');
      out.push({ field, wire, int: BigInt(buf.readUInt32LE(pos)), bytes: EMPTY });
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

/** The first field numbered `field`, if any. */
export function first(buf: Buffer, field: number): Field | undefined {
  return decode(buf).find((f) => f.field === field);
}

/**
 * The first length-delimited field numbered `field` at the top level of `buf`, skipping the
 * others without decoding them (the hot path of reads: no BigInt, no allocation but the view).
 */
export function findBytes(buf: Buffer, field: number): Buffer | undefined {
  let pos = 0;
  const n = buf.length;
  const small = (): number => {
    // A varint known to be small (a tag or a length): below 2^28.
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined || shift > 21) throw new Error('bad varint');
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (pos < n) {
    const tag = small();
    const wire = tag & 7;
    if (wire === LEN) {
      const len = small();
      if (pos + len > n) throw new Error('truncated field');
      if (tag >>> 3 === field) return buf.subarray(pos, pos + len);
      pos += len;
    } else if (wire === VARINT) {
      while ((buf[pos++] ?? 0) >= 0x80);
    } else if (wire === FIXED64) {
      pos += 8;
    } else if (wire === FIXED32) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return undefined;
}
