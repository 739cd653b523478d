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
  const id = enc.encode(c.clientId);
  const key = enc.encode(c.key);
  const out = new Uint8Array(
    1 + 1 + 8 + 2 + id.byteLength + 8 + 8 + 2 + key.byteLength + 4 + c.value.byteLength,
  );
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = 1;
  out[o++] = OPS.indexOf(c.op);
  dv.setFloat64(o, c.time);
  o += 8;
  dv.setUint16(o, id.byteLength);
  o += 2;
  out.set(id, o);
  o += id.byteLength;
  dv.setFloat64(o, c.seq);
  o += 8;
  dv.setFloat64(o, c.prevIndex);
  o += 8;
  dv.setUint16(o, key.byteLength);
  o += 2;
  out.set(key, o);
  o += key.byteLength;
  dv.setUint32(o, c.value.byteLength);
  o += 4;
  out.set(c.value, o);
  return out;
}

export function decodeCommand(b: Uint8Array): KvCommand {
  const bad = (why: string): RaftError => new RaftError('BAD_REQUEST', `malformed kv command: ${why}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const need = (n: number): void => {
    if (o + n > b.byteLength) throw bad('truncated');
  };
  need(2);
  if (b[o++] !== 1) throw bad('unknown version');
  const op = OPS[b[o++]!];
  if (!op) throw bad('unknown op');
  need(10);
  const time = dv.getFloat64(o);
  o += 8;
  const idLen = dv.getUint16(o);
  o += 2;
  need(idLen + 16);
  const clientId = dec.decode(b.subarray(o, o + idLen));
  o += idLen;
  const seq = dv.getFloat64(o);
  o += 8;
  const prevIndex = dv.getFloat64(o);
  o += 8;
  need(2);
  const keyLen = dv.getUint16(o);
  o += 2;
  need(keyLen + 4);
  const key = dec.decode(b.subarray(o, o + keyLen));
  o += keyLen;
  const valLen = dv.getUint32(o);
  o += 4;
  need(valLen);
  const value = b.subarray(o, o + valLen);
  return { op, time, clientId, seq, prevIndex, key, value };
}
