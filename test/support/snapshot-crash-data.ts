/** The size of the snapshot at `index` in the snapshot crash test (0.25 to ~2.3 MiB). */
export function snapshotSize(index: number): number {
  return 256 * 1024 + ((index * 7919) % (2 * 1024 * 1024));
}

/** Bytes `[from, to)` of the snapshot (index, term): the parent checks every byte against this. */
export function snapshotBytes(index: number, term: number, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  for (let k = from; k < to; k++) out[k - from] = (index * 131 + term * 17 + ((k * 7) >>> 3)) & 0xff;
  return out;
}
