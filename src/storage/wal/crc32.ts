import zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib and gzip) of `data[start, end)`, continuing from
 * `seed` (0 for a fresh checksum; the WAL seeds each segment's records with that segment's salt
 * so bytes copied from another segment never verify).
 *
 * Uses `zlib.crc32` (Node >= 20.15) and falls back to a slicing-by-8 table implementation on
 * older 20.x releases. Both give identical results.
 */
export function crc32(data: Uint8Array, start = 0, end = data.byteLength, seed = 0): number {
  return impl(data, start, end, seed);
}

type Crc = (data: Uint8Array, start: number, end: number, seed: number) => number;

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const nativeCrc: Crc = (data, start, end, seed) => {
  if (start === 0 && end === data.byteLength) return native!(data, seed);
  return native!(new Uint8Array(data.buffer, data.byteOffset + start, end - start), seed);
};

let table: Int32Array | undefined;

function makeTable(): Int32Array {
  const t = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 255]!;
    }
  }
  return t;
}

/** The table-driven implementation (slicing-by-8); exported for tests that compare it with zlib's. */
export const tableCrc32: Crc = (b, start, end, seed) => {
  const t = (table ??= makeTable());
  let c = ~seed;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) ^ c;
    const d = b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24);
    c =
      t[1792 + (a & 255)]! ^
      t[1536 + ((a >>> 8) & 255)]! ^
      t[1280 + ((a >>> 16) & 255)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (d & 255)]! ^
      t[512 + ((d >>> 8) & 255)]! ^
      t[256 + ((d >>> 16) & 255)]! ^
      t[d >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ b[i]!) & 255]! ^ (c >>> 8);
  return ~c >>> 0;
};

const impl: Crc = native === undefined ? tableCrc32 : nativeCrc;
