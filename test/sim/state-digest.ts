import type { Entry } from '../../src/core/messages.js';

/**
 * The simulated state machine: a digest chained over every applied entry. Two servers at the
 * same applied index hold the same state exactly when their digests agree; a snapshot is the
 * index and the digest.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The digest of the empty state. */
export const HASH0 = 2166136261;

/** Chains `e` into a state digest (FNV-1a over index, term, type and data). */
export function digest(h: number, e: Entry): number {
  let x = (h ^ e.index) >>> 0;
  x = Math.imul(x, 16777619) >>> 0;
  x = Math.imul((x ^ e.term) >>> 0, 16777619) >>> 0;
  x = Math.imul((x ^ (e.type === 'conf' ? 1 : 0)) >>> 0, 16777619) >>> 0;
  for (let i = 0; i < e.data.byteLength; i++) x = Math.imul((x ^ e.data[i]!) >>> 0, 16777619) >>> 0;
  return x;
}

/** The bytes of a simulated state machine's snapshot: its index and digest. */
export function encodeSimSnapshot(index: number, hash: number): Uint8Array {
  return enc.encode(`${index}:${hash}`);
}

export function decodeSimSnapshot(data: Uint8Array): { index: number; hash: number } {
  const [i, h] = dec.decode(data).split(':');
  return { index: Number(i), hash: Number(h) };
}
