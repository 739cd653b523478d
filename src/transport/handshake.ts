import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../core/messages.js';
import { RaftError } from '../errors.js';
import { CODEC_VERSION } from './codec.js';
import { frameBuffer } from './framing.js';

/**
 * The peer handshake: mutual challenge-response over the cluster secret, before any message.
 *
 * ```
 * server → client  CHALLENGE  serverNonce
 * client → server  HELLO      clientNonce, clientId, HMAC(secret, "tsraft/1 client" ‖ serverNonce ‖ clientNonce ‖ clientId)
 * server → client  ACCEPT     serverId, HMAC(secret, "tsraft/1 server" ‖ serverNonce ‖ clientNonce ‖ clientId ‖ serverId)
 * ```
 *
 * Each side proves knowledge of the secret over the other side's fresh nonce, so a recorded
 * exchange cannot be replayed, and each proof is bound to the ids it claims. The server checks
 * HELLO before it answers; the client checks ACCEPT (and that `serverId` is the peer it meant to
 * reach) before it sends anything. A failed check closes the connection. Ids are length-prefixed
 * inside the MAC input so that `"ab"‖"c"` and `"a"‖"bc"` differ.
 *
 * Without TLS this authenticates the connection, not each later frame: an attacker able to
 * rewrite TCP segments in flight could still inject. Use TLS where the network is not trusted.
 *
 * Handshake frames use the same framing and version byte as messages, with kinds above every
 * message type code, and are capped at {@link HANDSHAKE_MAX_FRAME_BYTES}, so an unauthenticated
 * peer cannot make us buffer more than that.
 */

/** Bytes of each nonce. */
export const NONCE_BYTES = 32;
/** Bytes of each MAC (HMAC-SHA256). */
export const MAC_BYTES = 32;
/** Largest handshake frame accepted before the peer is authenticated. */
export const HANDSHAKE_MAX_FRAME_BYTES = 1024;
/** Largest node id accepted in a handshake. */
const MAX_ID_BYTES = 512;

const KIND_CHALLENGE = 0xf1;
const KIND_HELLO = 0xf2;
const KIND_ACCEPT = 0xf3;

const CLIENT_LABEL = Buffer.from('tsraft/1 client');
const SERVER_LABEL = Buffer.from('tsraft/1 server');

function bad(reason: string): RaftError {
  return new RaftError('BAD_REQUEST', `bad handshake: ${reason}`);
}

function lp(id: NodeId): Buffer {
  const b = Buffer.from(id, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.byteLength);
  out.writeUInt16BE(b.byteLength, 0);
  b.copy(out, 2);
  return out;
}

function mac(secret: Uint8Array, parts: readonly Uint8Array[]): Buffer {
  const h = createHmac('sha256', secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Constant-time comparison of two MACs. */
function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** A fresh random nonce. */
export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

function header(kind: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(2 + size);
  b[0] = CODEC_VERSION;
  b[1] = kind;
  return b;
}

function readHeader(frame: Uint8Array, kind: number, name: string): void {
  if (frame.byteLength < 2) throw bad(`${name} frame too short`);
  if (frame[0] !== CODEC_VERSION) throw bad(`unsupported version ${frame[0]}`);
  if (frame[1] !== kind) throw bad(`expected ${name}, got kind 0x${frame[1]!.toString(16)}`);
}

function readId(frame: Buffer, at: number, name: string): NodeId {
  if (frame.byteLength < at + 2) throw bad(`${name} frame too short`);
  const n = frame.readUInt16BE(at);
  if (n === 0 || n > MAX_ID_BYTES) throw bad(`${name} id of ${n} bytes`);
  if (frame.byteLength !== at + 2 + n) throw bad(`${name} frame has the wrong length`);
  return frame.toString('utf8', at + 2, at + 2 + n);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Framed CHALLENGE (server → client). */
export function encodeChallenge(serverNonce: Uint8Array): Buffer {
  const b = header(KIND_CHALLENGE, NONCE_BYTES);
  b.set(serverNonce, 2);
  return frameBuffer(b);
}

/** The server nonce of a CHALLENGE payload. Throws `BAD_REQUEST`. */
export function decodeChallenge(payload: Uint8Array): Buffer {
  readHeader(payload, KIND_CHALLENGE, 'CHALLENGE');
  if (payload.byteLength !== 2 + NONCE_BYTES) throw bad('CHALLENGE frame has the wrong length');
  return Buffer.from(payload.subarray(2));
}

/** What a client claims in HELLO. */
export interface Hello {
  readonly clientId: NodeId;
  readonly clientNonce: Buffer;
  readonly mac: Buffer;
}

function clientMac(
  secret: Uint8Array,
  serverNonce: Uint8Array,
  clientNonce: Uint8Array,
  clientId: NodeId,
): Buffer {
  return mac(secret, [CLIENT_LABEL, serverNonce, clientNonce, lp(clientId)]);
}

function serverMac(
  secret: Uint8Array,
  serverNonce: Uint8Array,
  clientNonce: Uint8Array,
  clientId: NodeId,
  serverId: NodeId,
): Buffer {
  return mac(secret, [SERVER_LABEL, serverNonce, clientNonce, lp(clientId), lp(serverId)]);
}

/** Framed HELLO (client → server), proving the secret over `serverNonce`. */
export function encodeHello(
  secret: Uint8Array,
  serverNonce: Uint8Array,
  clientNonce: Uint8Array,
  clientId: NodeId,
): Buffer {
  const id = lp(clientId);
  const b = header(KIND_HELLO, NONCE_BYTES + MAC_BYTES + id.byteLength);
  b.set(clientNonce, 2);
  b.set(clientMac(secret, serverNonce, clientNonce, clientId), 2 + NONCE_BYTES);
  b.set(id, 2 + NONCE_BYTES + MAC_BYTES);
  return frameBuffer(b);
}

/** Parses a HELLO payload (does not verify it). Throws `BAD_REQUEST`. */
export function decodeHello(payload: Uint8Array): Hello {
  const f = asBuffer(payload);
  readHeader(f, KIND_HELLO, 'HELLO');
  const at = 2 + NONCE_BYTES + MAC_BYTES;
  const clientId = readId(f, at, 'HELLO');
  return {
    clientId,
    clientNonce: Buffer.from(f.subarray(2, 2 + NONCE_BYTES)),
    mac: Buffer.from(f.subarray(2 + NONCE_BYTES, at)),
  };
}

/** True when `hello` proves the secret over our `serverNonce` (constant-time). */
export function verifyHello(secret: Uint8Array, serverNonce: Uint8Array, hello: Hello): boolean {
  return macEqual(hello.mac, clientMac(secret, serverNonce, hello.clientNonce, hello.clientId));
}

/** Framed ACCEPT (server → client), proving the secret over the client's nonce. */
export function encodeAccept(
  secret: Uint8Array,
  serverNonce: Uint8Array,
  hello: Hello,
  serverId: NodeId,
): Buffer {
  const id = lp(serverId);
  const b = header(KIND_ACCEPT, MAC_BYTES + id.byteLength);
  b.set(serverMac(secret, serverNonce, hello.clientNonce, hello.clientId, serverId), 2);
  b.set(id, 2 + MAC_BYTES);
  return frameBuffer(b);
}

/** What a server claims in ACCEPT. */
export interface Accept {
  readonly serverId: NodeId;
  readonly mac: Buffer;
}

/** Parses an ACCEPT payload (does not verify it). Throws `BAD_REQUEST`. */
export function decodeAccept(payload: Uint8Array): Accept {
  const f = asBuffer(payload);
  readHeader(f, KIND_ACCEPT, 'ACCEPT');
  const serverId = readId(f, 2 + MAC_BYTES, 'ACCEPT');
  return { serverId, mac: Buffer.from(f.subarray(2, 2 + MAC_BYTES)) };
}

/** True when `accept` proves the secret over our `clientNonce` for this exchange (constant-time). */
export function verifyAccept(
  secret: Uint8Array,
  serverNonce: Uint8Array,
  clientNonce: Uint8Array,
  clientId: NodeId,
  accept: Accept,
): boolean {
  return macEqual(accept.mac, serverMac(secret, serverNonce, clientNonce, clientId, accept.serverId));
}
