import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/core/messages.js';
import { CorruptionError, isRaftError } from '../../../src/errors.js';
import { FileStorage, type FileStorageOptions } from '../../../src/storage/file-storage.js';
import { nodeFs } from '../../../src/storage/fs.js';
import { writeMeta, decodeMeta } from '../../../src/storage/meta-file.js';
import { SnapshotStore } from '../../../src/storage/snapshot-store.js';
import { crc32 } from '../../../src/storage/wal/crc32.js';
import { batchRanges, segmentFiles, walName } from '../../support/wal-files.js';
import { tmpDirs } from '../../support/tmp-dirs.js';

const dirs = tmpDirs('recovery');
afterAll(() => dirs.cleanup());

const OPTS: FileStorageOptions = { segmentSize: 64 * 1024, onFailure: () => undefined };
const CONF = { voters: ['a', 'b', 'c'], outgoing: [], learners: [], learnersNext: [] };

/** Entry data with no zero byte, as a random payload would (almost) be. */
function ent(index: number, term: number, size: number): Entry {
  const data = new Uint8Array(size);
  for (let k = 0; k < size; k++) data[k] = 1 + ((index * 131 + k * 7) % 255);
  return { index, term, type: 'normal', data };
}

async function openOk(dir: string, opts: FileStorageOptions = OPTS): Promise<FileStorage> {
  return FileStorage.open(dir, opts);
}

async function openErr(dir: string, opts: FileStorageOptions = OPTS): Promise<unknown> {
  try {
    const s = await FileStorage.open(dir, opts);
    await s.close();
  } catch (e) {
    return e;
  }
  throw new Error('expected open to fail');
}

/** All entries of an open storage. */
function all(s: FileStorage): Entry[] {
  return s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity);
}

function same(a: readonly Entry[], b: readonly Entry[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (e, k) =>
        e.index === b[k]!.index &&
        e.term === b[k]!.term &&
        Buffer.from(e.data).equals(Buffer.from(b[k]!.data)),
    )
  );
}

/**
 * A log of 12 batches in one segment; the last batch holds 2 entries of 300 bytes (it spans
 * sectors). Returns the segment's bytes and the entries before/including the last batch.
 */
async function build(
  lastSize = 300,
): Promise<{ dir: string; seg: string; orig: Buffer; before: Entry[]; all: Entry[] }> {
  const dir = dirs.make();
  const s = await openOk(dir);
  const written: Entry[] = [];
  let i = 1;
  for (let b = 0; b < 11; b++) {
    const batch = [ent(i, 1, 40 + b * 37), ...(b % 3 === 0 ? [ent(i + 1, 1, 500)] : [])];
    i += batch.length;
    await s.save({ entries: batch, hardState: { term: 1, vote: 'a', commit: Math.max(0, i - 3) } });
    written.push(...batch);
  }
  const before = written.slice();
  const last = [ent(i, 2, lastSize), ent(i + 1, 2, lastSize)];
  await s.save({ entries: last });
  written.push(...last);
  await s.close();
  const seg = segmentFiles(dir)[0]!;
  return { dir, seg, orig: fs.readFileSync(seg), before, all: written };
}

describe('recovery: the torn final write is cut off and the log continues', () => {
  it('the file cut at every byte of the last batch', async () => {
    const b = await build();
    const last = batchRanges(b.orig).at(-1)!;
    for (let cut = last.start; cut < last.end; cut++) {
      fs.writeFileSync(b.seg, b.orig.subarray(0, cut));
      const s = await openOk(b.dir);
      expect(s.lastIndex()).toBe(b.before.length);
      if (!same(all(s), b.before)) throw new Error(`entries differ after a cut at ${cut}`);
      if (cut % 97 === 0) {
        // The log continues: append, reopen, still consistent.
        await s.save({ entries: [ent(b.before.length + 1, 3, 10)] });
        await s.close();
        const r = await openOk(b.dir);
        expect(r.lastIndex()).toBe(b.before.length + 1);
        expect(r.term(b.before.length + 1)).toBe(3);
        await r.close();
      } else {
        await s.close();
      }
    }
  });

  it('the last batch zeroed from any sector boundary, as a file system leaves an unwritten tail', async () => {
    const b = await build();
    const last = batchRanges(b.orig).at(-1)!;
    const zs = [last.start];
    for (let z = last.start - (last.start % 512) + 512; z < last.end; z += 512) zs.push(z);
    expect(zs.length).toBeGreaterThan(1);
    for (const z of zs) {
      const buf = Buffer.from(b.orig);
      buf.fill(0, z);
      fs.writeFileSync(b.seg, buf);
      const s = await openOk(b.dir);
      expect(same(all(s), b.before)).toBe(true);
      await s.close();
      // The leftovers were zeroed on disk, so the next open sees a clean end.
      expect(
        fs
          .readFileSync(b.seg)
          .subarray(last.start)
          .every((x) => x === 0),
      ).toBe(true);
    }
  });

  it('a sector of the last batch lost in the middle (non-prefix tearing) is still a torn write', async () => {
    const b = await build(1000);
    const last = batchRanges(b.orig).at(-1)!;
    const sector = last.start - (last.start % 512) + 512;
    expect(sector + 512).toBeLessThan(last.end);
    const buf = Buffer.from(b.orig);
    buf.fill(0, sector, sector + 512);
    fs.writeFileSync(b.seg, buf);
    const s = await openOk(b.dir);
    expect(same(all(s), b.before)).toBe(true);
    await s.close();
  });

  it('noise in the preallocated space after the last record is not data and is zeroed', async () => {
    const b = await build();
    const buf = Buffer.from(b.orig);
    buf[buf.byteLength - 1000] = 0x40;
    buf.writeUInt32LE(0xdeadbeef, buf.byteLength - 2048);
    fs.writeFileSync(b.seg, buf);
    const s = await openOk(b.dir);
    expect(same(all(s), b.all)).toBe(true);
    await s.close();
    expect(fs.readFileSync(b.seg)[buf.byteLength - 1000]).toBe(0);
  });
});

describe('recovery: damage refuses to open, naming the file and byte offset', () => {
  it('a bit flip in any record byte of any batch, including the last', async () => {
    const b = await build();
    const ranges = batchRanges(b.orig);
    let checked = 0;
    for (const r of ranges) {
      for (let o = r.start; o < r.end; o += 11) {
        const buf = Buffer.from(b.orig);
        buf[o] = buf[o]! ^ (1 << (o % 8));
        fs.writeFileSync(b.seg, buf);
        const e = await openErr(b.dir);
        expect(e).toBeInstanceOf(CorruptionError);
        const c = e as CorruptionError;
        expect(c.file).toBe(walName(b.seg));
        expect(c.offset).toBeGreaterThanOrEqual(r.start);
        expect(c.offset).toBeLessThan(r.end);
        expect(c.message).toContain(walName(b.seg));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('a bit flip anywhere in the file never loses an acknowledged entry silently', async () => {
    const b = await build();
    const size = b.orig.byteLength;
    const end = batchRanges(b.orig).at(-1)!.end;
    const offsets = [...Array(120).keys()].map((k) => Math.floor((k * 2654435761) % (end + 64)));
    for (let k = 0; k < 40; k++) offsets.push(end + Math.floor(((k + 1) * 40503) % (size - end)));
    for (const o of offsets) {
      const buf = Buffer.from(b.orig);
      buf[o] = buf[o]! ^ 0x10;
      fs.writeFileSync(b.seg, buf);
      let s: FileStorage | undefined;
      try {
        s = await openOk(b.dir);
      } catch (e) {
        expect(isRaftError(e, 'CORRUPT_LOG')).toBe(true);
        continue;
      }
      expect(same(all(s), b.all)).toBe(true);
      await s.close();
    }
  });

  it('a zeroed sector in an earlier batch, with valid batches after it, is damage, not a torn tail', async () => {
    const b = await build();
    const r = batchRanges(b.orig)[3]!;
    const sector = r.start - (r.start % 512) + 512;
    expect(sector).toBeLessThan(r.end);
    const buf = Buffer.from(b.orig);
    buf.fill(0, sector, Math.min(sector + 512, r.end));
    fs.writeFileSync(b.seg, buf);
    const e = (await openErr(b.dir)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.message).toMatch(/valid batch follows/);
  });

  it('a whole earlier batch zeroed is damage: records stop but valid batches follow', async () => {
    const b = await build();
    const r = batchRanges(b.orig)[5]!;
    const buf = Buffer.from(b.orig);
    buf.fill(0, r.start, r.end);
    fs.writeFileSync(b.seg, buf);
    const e = (await openErr(b.dir)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.offset).toBe(r.start);
  });

  it('a few bytes zeroed inside a written sector (not how a disk tears) is damage', async () => {
    const b = await build();
    const last = batchRanges(b.orig).at(-1)!;
    const buf = Buffer.from(b.orig);
    buf.fill(0, last.start + 100, last.start + 104);
    fs.writeFileSync(b.seg, buf);
    expect(await openErr(b.dir)).toBeInstanceOf(CorruptionError);
  });

  it('a damaged segment header or an unknown format version', async () => {
    const b = await build();
    const buf = Buffer.from(b.orig);
    buf[20] = buf[20]! ^ 4;
    fs.writeFileSync(b.seg, buf);
    expect(await openErr(b.dir)).toMatchObject({ code: 'CORRUPT_LOG', file: walName(b.seg), offset: 0 });
    const v2 = Buffer.from(b.orig);
    v2.writeUInt32LE(2, 8);
    v2.writeUInt32LE(crc32(v2, 0, 28), 28);
    fs.writeFileSync(b.seg, v2);
    const e = await openErr(b.dir);
    expect(isRaftError(e, 'UNSUPPORTED_FORMAT')).toBe(true);
    expect((e as Error).message).toMatch(/version 2/);
  });
});

/** A log spread over several small segments; returns its files and entries. */
async function buildSegments(): Promise<{
  dir: string;
  files: string[];
  entries: Entry[];
  opts: FileStorageOptions;
}> {
  const dir = dirs.make();
  const opts: FileStorageOptions = { segmentSize: 8192, onFailure: () => undefined };
  const s = await openOk(dir, opts);
  const entries: Entry[] = [];
  for (let i = 1; i <= 120; i++) {
    const e = ent(i, 1 + Math.floor(i / 50), 150);
    entries.push(e);
    await s.save({ entries: [e] });
  }
  await s.close();
  return { dir, files: segmentFiles(dir), entries, opts };
}

describe('recovery: segments', () => {
  it('reopens a log of many sealed segments', async () => {
    const b = await buildSegments();
    expect(b.files.length).toBeGreaterThan(3);
    const s = await openOk(b.dir, b.opts);
    expect(same(all(s), b.entries)).toBe(true);
    await s.close();
  });

  it('damage inside a sealed segment is found and located', async () => {
    const b = await buildSegments();
    const f = b.files[1]!;
    const buf = fs.readFileSync(f);
    const r = batchRanges(buf)[4]!;
    buf[r.start + 60] = buf[r.start + 60]! ^ 0x80;
    fs.writeFileSync(f, buf);
    const e = (await openErr(b.dir, b.opts)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.file).toBe(walName(f));
    expect(e.offset).toBeGreaterThanOrEqual(r.start);
    expect(e.offset).toBeLessThan(r.end);
  });

  it('a damaged seal trailer costs nothing: the records are checked one by one instead', async () => {
    const b = await buildSegments();
    const f = b.files[1]!;
    const buf = fs.readFileSync(f);
    buf[buf.byteLength - 10] = buf[buf.byteLength - 10]! ^ 1;
    fs.writeFileSync(f, buf);
    const s = await openOk(b.dir, b.opts);
    expect(same(all(s), b.entries)).toBe(true);
    await s.close();
  });

  it('a missing segment in the middle', async () => {
    const b = await buildSegments();
    fs.unlinkSync(b.files[2]!);
    const e = (await openErr(b.dir, b.opts)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.file).toBe(walName(b.files[3]!));
    expect(e.message).toMatch(/missing/);
  });

  it('a missing newest segment (the newest one left is sealed)', async () => {
    const b = await buildSegments();
    fs.unlinkSync(b.files.at(-1)!);
    const e = (await openErr(b.dir, b.opts)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.message).toMatch(/sealed/);
  });

  it('a missing first segment (entries between the snapshot and the log)', async () => {
    const b = await buildSegments();
    fs.unlinkSync(b.files[0]!);
    const e = (await openErr(b.dir, b.opts)) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.message).toMatch(/entries are missing/);
  });

  it('compaction deletes whole segments below the snapshot and the rest reopens', async () => {
    const b = await buildSegments();
    const s = await openOk(b.dir, b.opts);
    await s.saveSnapshot(
      { meta: { index: 100, term: s.term(100), conf: CONF }, data: new Uint8Array([1, 2, 3]) },
      90,
    );
    expect(segmentFiles(b.dir).length).toBeLessThan(b.files.length);
    await s.close();
    const r = await openOk(b.dir, b.opts);
    expect(r.firstIndex()).toBe(91);
    expect(same(all(r), b.entries.slice(90))).toBe(true);
    expect(r.snapshot().meta.index).toBe(100);
    await r.close();
  });
});

describe('recovery: meta file and snapshots', () => {
  it('a damaged meta file', async () => {
    const b = await build();
    const p = path.join(b.dir, 'meta');
    const buf = fs.readFileSync(p);
    buf[buf.byteLength - 3] = buf[buf.byteLength - 3]! ^ 2;
    fs.writeFileSync(p, buf);
    expect(await openErr(b.dir)).toMatchObject({ code: 'CORRUPT_LOG', file: 'meta' });
  });

  it('a missing meta file while the WAL holds records', async () => {
    const b = await build();
    fs.unlinkSync(path.join(b.dir, 'meta'));
    expect(await openErr(b.dir)).toMatchObject({ code: 'CORRUPT_LOG', file: 'meta' });
  });

  it('a snapshot whose checksum fails, and a missing snapshot file', async () => {
    const b = await build();
    const s = await openOk(b.dir);
    await s.saveSnapshot({ meta: { index: 5, term: 1, conf: CONF }, data: new Uint8Array(5000).fill(9) });
    await s.close();
    const snapDir = path.join(b.dir, 'snap');
    const [name] = fs.readdirSync(snapDir);
    const p = path.join(snapDir, name!);
    const orig = fs.readFileSync(p);
    const buf = Buffer.from(orig);
    buf[2000] = buf[2000]! ^ 1;
    fs.writeFileSync(p, buf);
    expect(await openErr(b.dir)).toMatchObject({ code: 'CORRUPT_LOG', file: `snap/${name}` });
    fs.unlinkSync(p);
    expect(await openErr(b.dir)).toMatchObject({ code: 'CORRUPT_LOG', file: `snap/${name}` });
    fs.writeFileSync(p, orig);
    const r = await openOk(b.dir);
    expect(r.snapshot().data).toEqual(new Uint8Array(5000).fill(9));
    await r.close();
  });

  it('leftover temp files of interrupted writes are ignored and removed', async () => {
    const b = await build();
    fs.writeFileSync(path.join(b.dir, 'meta.tmp'), 'half a meta file');
    fs.writeFileSync(path.join(b.dir, 'wal', `${'9'.padStart(20, '0')}.wal.tmp`), 'half a segment');
    fs.writeFileSync(path.join(b.dir, 'snap', 'x.snap.tmp'), 'half a snapshot');
    const s = await openOk(b.dir);
    expect(same(all(s), b.all)).toBe(true);
    await s.close();
    expect(fs.existsSync(path.join(b.dir, 'meta.tmp'))).toBe(false);
    expect(fs.readdirSync(path.join(b.dir, 'wal')).some((n) => n.endsWith('.tmp'))).toBe(false);
    expect(fs.readdirSync(path.join(b.dir, 'snap'))).toEqual([]);
  });

  it('a crash after the meta file recorded an installed snapshot but before the WAL did drops the conflicting log', async () => {
    const b = await build();
    // Reproduce the state between the two steps of installing a snapshot at 3 (term 5) that
    // conflicts with the log: the snapshot file and the meta file are written, the WAL is not.
    const meta = decodeMeta('meta', fs.readFileSync(path.join(b.dir, 'meta')));
    const sm = { index: 3, term: 5, conf: CONF };
    const ref = await new SnapshotStore(nodeFs, path.join(b.dir, 'snap')).write(sm, new Uint8Array([7]));
    await writeMeta(nodeFs, b.dir, { hardState: meta.hardState, snapshot: ref, base: { index: 3, term: 5 } });
    const s = await openOk(b.dir);
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(3);
    expect(s.term(3)).toBe(5);
    await s.close();
  });
});
