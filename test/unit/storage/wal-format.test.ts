import { describe, expect, it } from 'vitest';
import { crc32, tableCrc32 } from '../../../src/storage/wal/crc32.js';
import {
  align8,
  decodeEntryAt,
  decodeSegmentHeader,
  decodeTrailer,
  encodeBatch,
  encodeSegmentHeader,
  encodeTrailer,
  readU64,
  writeU64,
} from '../../../src/storage/wal/format.js';
import { LogIndex } from '../../../src/storage/wal/log-index.js';
import { CorruptionError } from '../../../src/errors.js';

describe('crc32', () => {
  it('matches the standard check value and zlib', () => {
    const check = Buffer.from('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(tableCrc32(check, 0, check.byteLength, 0)).toBe(0xcbf43926);
  });

  it('the table implementation equals the native one for any range and seed', () => {
    const buf = Buffer.alloc(5000);
    for (let k = 0; k < buf.byteLength; k++) buf[k] = (k * 73 + 11) & 0xff;
    for (const [a, b, seed] of [
      [0, 5000, 0],
      [3, 4001, 12345],
      [7, 8, 0xffffffff],
      [100, 100, 42],
      [1, 17, 7],
    ] as const) {
      expect(tableCrc32(buf, a, b, seed)).toBe(crc32(buf, a, b, seed));
    }
  });

  it('continues: crc(a + b) = crc(b, seed = crc(a))', () => {
    const buf = Buffer.from('the quick brown fox jumps over the lazy dog');
    expect(crc32(buf, 10, buf.byteLength, crc32(buf, 0, 10, 99))).toBe(crc32(buf, 0, buf.byteLength, 99));
  });
});

describe('record format', () => {
  it('u64 values up to 2^53 round-trip', () => {
    const b = Buffer.alloc(8);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      writeU64(b, 0, v);
      expect(readU64(b, 0)).toBe(v);
    }
  });

  it('a batch is 8-aligned, zero padded, and its entries decode with their checksums', () => {
    const data = new Uint8Array([1, 2, 3]);
    const { buf, entryOffsets } = encodeBatch(
      {
        entries: [
          [{ index: 2 ** 40, term: 7, type: 'conf', data }],
          [{ index: 2 ** 40 + 1, term: 8, type: 'normal', data: new Uint8Array() }],
        ],
        commit: 5,
      },
      777,
    );
    expect(buf.byteLength % 8).toBe(0);
    expect(buf.byteLength).toBe(align8(buf.readUInt32LE(12)));
    const e = decodeEntryAt('x', buf, entryOffsets[0]!, 0, 777);
    expect(e).toMatchObject({ index: 2 ** 40, term: 7, type: 'conf' });
    expect([...e.data]).toEqual([1, 2, 3]);
    expect(decodeEntryAt('x', buf, entryOffsets[1]!, 0, 777)).toMatchObject({
      index: 2 ** 40 + 1,
      type: 'normal',
    });
    // The salt is part of the checksum: the same bytes do not verify in another segment.
    expect(() => decodeEntryAt('x', buf, entryOffsets[0]!, 0, 778)).toThrow(CorruptionError);
  });

  it('segment header and seal trailer round-trip', () => {
    const h = encodeSegmentHeader(42, 9999);
    expect(decodeSegmentHeader('s', h, 32, 42)).toBe(9999);
    expect(() => decodeSegmentHeader('s', h, 32, 43)).toThrow(/file name says 43/);
    const file = Buffer.alloc(4096);
    encodeTrailer(1000, 0xabcdef, 9999).copy(file, 4096 - 32);
    expect(decodeTrailer(file, 4096, 9999)).toEqual({ sealPos: 1000, dataCrc: 0xabcdef });
    expect(decodeTrailer(file, 4096, 1)).toBeUndefined();
  });
});

describe('log index', () => {
  it('tracks terms and locations through appends, truncation and compaction', () => {
    const ix = new LogIndex<string>(0, 0);
    for (let i = 1; i <= 10; i++) ix.put(i, i <= 5 ? 1 : 2, i <= 6 ? 'a' : 'b', i * 100);
    expect(ix.term(5)).toBe(1);
    expect(ix.term(6)).toBe(2);
    expect(ix.locate(7)).toEqual({ seg: 'b', off: 700 });
    ix.put(4, 3, 'c', 5);
    expect(ix.last).toBe(4);
    expect(ix.term(3)).toBe(1);
    expect(ix.term(4)).toBe(3);
    expect(ix.locate(4)).toEqual({ seg: 'c', off: 5 });
    expect(ix.holdsAbove('b', 0)).toBe(false);
    ix.compact(3);
    expect(ix.baseIndex).toBe(3);
    expect(ix.baseTerm).toBe(1);
    expect(ix.term(4)).toBe(3);
    expect(ix.holdsAbove('a', 3)).toBe(false);
    expect(ix.holdsAbove('c', 3)).toBe(true);
    ix.compact(4);
    expect(ix.size).toBe(0);
    expect(ix.lastTerm()).toBe(3);
  });
});
