import { RaftError } from '../errors.js';

/**
 * The commands of the replicated key-value store, as they travel in log entries. A compact
 * binary form (the value bytes are copied once, never base64'd):
 *
 * ```
 * u8 version=1 | u8 op | f64 time | u16 clientId length | clientId | f64 seq | f64 prevIndex (-1: none)
 * | u16 key length | key | u32 value length | value
 * ```
 *
 * `time` is the proposing leader's wall clock in ms; the state machine's notion of time is
 * the largest `time` applied so far ("log time"), so every replica expires client sessions
 * at the same log position.
 */
export type KvOp = 'put' | 'delete' | 'member';

export interface KvCommand {
  readonly op: KvOp;
  readonly time: number;
  /** Client session for exactly-once writes ('' when none). */
  readonly clientId: string;
  readonly seq: number;
  /** Compare-and-set on the key's modification index; -1 when unconditional. */
  readonly prevIndex: number;
  readonly key: string;
  readonly value: Uint8Array;
}

const OPS: readonly KvOp[] = ['put', 'delete', 'member'];
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeCommand(c: KvCommand): Uint8Array {
  // Buffer.byteLength agrees with TextEncoder, lone surrogates included (U+FFFD, 3 bytes).
  const idLen = Buffer.byteLength(c.clientId, 'utf8');
  const keyLen = Buffer.byteLength(c.key, 'utf8');
  const out = new Uint8Array(1 + 1 + 8 + 2 + idLen + 8 + 8 + 2 + keyLen + 4 + c.value.byteLength);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = 1;
  out[o++] = OPS.indexOf(c.op);
  dv.setFloat64(o, c.time);
  o += 8;
  dv.setUint16(o, idLen);
  o += 2;
  enc.encodeInto(c.clientId, out.subarray(o, o + idLen));
  o += idLen;
  dv.setFloat64(o, c.seq);
  o += 8;
  dv.setFloat64(o, c.prevIndex);
  o += 8;
  dv.setUint16(o, keyLen);
  o += 2;
  enc.encodeInto(c.key, out.subarray(o, o + keyLen));
  o += keyLen;
  dv.setUint32(o, c.value.byteLength);
  o += 4;
  out.set(c.value, o);
  return out;
}

function malformed(why: string): RaftError {
  return new RaftError('BAD_REQUEST', `malformed kv command: ${why}`);
}

function utf8(b: Uint8Array, from: number, to: number, what: string): string {
  try {
    return dec.decode(b.subarray(from, to));
  } catch {
    throw malformed(`the ${what} is not UTF-8`);
  }
}

/** Decodes a command (on every replica, for every entry: no closures, one DataView). */
export function decodeCommand(b: Uint8Array): KvCommand {
  const n = b.byteLength;
  if (n < 12) throw malformed('truncated');
  if (b[0] !== 1) throw malformed('unknown version');
  const op = OPS[b[1]!];
  if (!op) throw malformed('unknown op');
  const dv = new DataView(b.buffer, b.byteOffset, n);
  let o = 2;
  const time = dv.getFloat64(o);
  o += 8;
  const idLen = dv.getUint16(o);
  o += 2;
  if (o + idLen + 16 > n) throw malformed('truncated');
  const clientId = idLen === 0 ? '' : utf8(b, o, o + idLen, 'client id');
  o += idLen;
  const seq = dv.getFloat64(o);
  o += 8;
  const prevIndex = dv.getFloat64(o);
  o += 8;
  if (o + 2 > n) throw malformed('truncated');
  const keyLen = dv.getUint16(o);
  o += 2;
  if (o + keyLen + 4 > n) throw malformed('truncated');
  const key = keyLen === 0 ? '' : utf8(b, o, o + keyLen, 'key');
  o += keyLen;
  const valLen = dv.getUint32(o);
  o += 4;
  if (o + valLen > n) throw malformed('truncated');
  const value = b.subarray(o, o + valLen);
  return { op, time, clientId, seq, prevIndex, key, value };
}
