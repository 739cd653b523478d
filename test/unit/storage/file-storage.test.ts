import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/core/messages.js';
import type { RaftError } from '../../../src/errors.js';
import { CorruptionError, isRaftError } from '../../../src/errors.js';
import { FileStorage, type FileStorageOptions } from '../../../src/storage/file-storage.js';
import { FaultyFs } from '../../support/faulty-fs.js';
import { tmpDirs } from '../../support/tmp-dirs.js';
import { segmentFiles } from '../../support/wal-files.js';

const dirs = tmpDirs('file');
afterAll(() => dirs.cleanup());

const CONF = { voters: ['a', 'b', 'c'], outgoing: [], learners: [], learnersNext: [] };

function ent(index: number, term: number, size = 64): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(size).fill((index % 250) + 1) };
}

function range(from: number, to: number, term: number, size = 64): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term, size));
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function openFaulty(
  options: FileStorageOptions = {},
): Promise<{ s: FileStorage; ffs: FaultyFs; dir: string; failures: RaftError[] }> {
  const dir = dirs.make();
  const ffs = new FaultyFs();
  const failures: RaftError[] = [];
  const s = await FileStorage.open(dir, {
    segmentSize: 16384,
    ...options,
    fs: ffs,
    onFailure: (e) => failures.push(e),
  });
  return { s, ffs, dir, failures };
}

describe('group commit: one write and one sync per batch', () => {
  it('a save of many entries is one O_DSYNC write', async () => {
    const { s, ffs } = await openFaulty();
    const w = ffs.count('writeSync');
    await s.save({ entries: range(1, 100, 1), hardState: { term: 0, vote: undefined, commit: 0 } });
    expect(ffs.count('writeSync') - w).toBe(1);
    expect(ffs.count('fdatasyncSync')).toBe(0);
    await s.close();
  });

  it('with syncMethod fdatasync: one write and one fdatasync', async () => {
    const { s, ffs } = await openFaulty({ syncMethod: 'fdatasync' });
    await s.save({ entries: range(1, 10, 1) });
    expect(ffs.count('writeSync')).toBe(1);
    expect(ffs.count('fdatasyncSync')).toBe(1);
    await s.close();
  });

  it('saves issued while another is pending share one write', async () => {
    const { s, ffs } = await openFaulty({ io: 'async', segmentSize: 1 << 20 });
    const w = ffs.count('write');
    const saves = [];
    for (let i = 1; i <= 50; i++) saves.push(s.save({ entries: [ent(i, 1)] }));
    await Promise.all(saves);
    expect(ffs.count('write') - w).toBe(1);
    expect(s.lastIndex()).toBe(50);
    await s.close();
  });

  it('a vote is written to the meta file (temp, fsync, rename, fsync dir) before the entries', async () => {
    const { s, ffs } = await openFaulty();
    const before = { rename: ffs.count('rename'), fsync: ffs.count('fsync') };
    await s.save({ hardState: { term: 2, vote: 'b', commit: 0 }, entries: range(1, 3, 2) });
    expect(ffs.count('rename') - before.rename).toBe(1);
    expect(ffs.count('fsync') - before.fsync).toBe(2);
    // An unchanged term and vote do not touch the meta file again.
    await s.save({ hardState: { term: 2, vote: 'b', commit: 3 }, entries: range(4, 5, 2) });
    expect(ffs.count('rename') - before.rename).toBe(1);
    await s.close();
  });
});

describe('fail-stop on disk errors', () => {
  for (const code of ['ENOSPC', 'EIO', 'EROFS']) {
    it(`${code} on the WAL write rejects the batch and every later write, loudly`, async () => {
      const { s, ffs, dir, failures } = await openFaulty();
      await s.save({ entries: range(1, 5, 1) });
      ffs.fail(code, ['writeSync']);
      const queued = [s.save({ entries: range(6, 7, 1) }), s.save({ entries: range(8, 9, 1) })];
      for (const p of queued) {
        const e = await rejection(p);
        expect(isRaftError(e, 'STORAGE_FAILED')).toBe(true);
        expect((e as Error).message).toContain(code);
        expect(((e as Error).cause as NodeJS.ErrnoException).code).toBe(code);
      }
      ffs.heal();
      // Nothing after the error is ever acknowledged, even once the disk is fine again.
      expect(isRaftError(await rejection(s.save({ entries: range(6, 6, 1) })), 'STORAGE_FAILED')).toBe(true);
      expect(failures).toHaveLength(1);
      expect(s.failed).toBe(failures[0]);
      expect(s.lastIndex()).toBe(5);
      await s.close();
      const r = await FileStorage.open(dir, { segmentSize: 16384 });
      expect(r.lastIndex()).toBe(5);
      await r.close();
    });
  }

  it('EIO on fdatasync rejects (the bytes may be on disk, but were never acknowledged)', async () => {
    const { s, ffs } = await openFaulty({ syncMethod: 'fdatasync', io: 'async' });
    await s.save({ entries: range(1, 2, 1) });
    ffs.fail('EIO', ['fdatasync']);
    expect(isRaftError(await rejection(s.save({ entries: range(3, 3, 1) })), 'STORAGE_FAILED')).toBe(true);
    expect(s.lastIndex()).toBe(2);
    await s.close();
  });

  it('a failure writing the meta file (a vote) rejects it and everything after', async () => {
    const { s, ffs } = await openFaulty();
    ffs.fail('EIO', ['fsync']);
    expect(
      isRaftError(
        await rejection(s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, entries: [] })),
        'STORAGE_FAILED',
      ),
    ).toBe(true);
    expect(s.initialState().hardState.term).toBe(0);
    ffs.heal();
    expect(isRaftError(await rejection(s.save({ entries: range(1, 1, 0) })), 'STORAGE_FAILED')).toBe(true);
    await s.close();
  });

  it('ENOSPC while preallocating the next segment surfaces at the roll-over', async () => {
    const { s, ffs } = await openFaulty({ segmentSize: 8192 });
    ffs.fail('ENOSPC', ['write']);
    let i = 1;
    let err: unknown;
    for (; i < 500 && err === undefined; i++) {
      try {
        await s.save({ entries: [ent(i, 1, 200)] });
      } catch (e) {
        err = e;
      }
    }
    expect(isRaftError(err, 'STORAGE_FAILED')).toBe(true);
    expect((err as Error).message).toContain('ENOSPC');
    expect(s.lastIndex()).toBe(i - 2);
    await s.close();
  });

  it('a failure writing a snapshot file rejects saveSnapshot and later writes', async () => {
    const { s, ffs } = await openFaulty();
    await s.save({ entries: range(1, 5, 1) });
    ffs.fail('ENOSPC', ['write']);
    const e = await rejection(
      s.saveSnapshot({ meta: { index: 3, term: 1, conf: CONF }, data: new Uint8Array(10) }),
    );
    expect(isRaftError(e, 'STORAGE_FAILED')).toBe(true);
    expect(s.firstIndex()).toBe(1);
    await s.close();
  });
});

describe('reads', () => {
  it('reads of any retained range come from disk below the cached tail', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir, { segmentSize: 8192, cacheBytes: 2000 });
    const written = range(1, 300, 1, 100);
    for (let i = 0; i < 300; i += 7) await s.save({ entries: written.slice(i, i + 7) });
    for (const [lo, hi] of [
      [1, 301],
      [1, 2],
      [150, 160],
      [290, 301],
      [37, 38],
    ] as const) {
      const got = s.entries(lo, hi, Infinity);
      expect(got.map((e) => e.index)).toEqual(written.slice(lo - 1, hi - 1).map((e) => e.index));
      expect(got.every((e) => Buffer.from(e.data).equals(Buffer.from(written[e.index - 1]!.data)))).toBe(
        true,
      );
    }
    // maxBytes applies across the disk/cache boundary too.
    expect(s.entries(1, 301, 124 * 10)).toHaveLength(10);
    await s.close();
  });

  it('reopening fills the cache with the newest entries, whatever their size', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir, { segmentSize: 1 << 20, cacheBytes: 50_000 });
    const written = range(1, 40, 1, 10_000);
    await s.save({ entries: written });
    await s.close();
    const r = await FileStorage.open(dir, { segmentSize: 1 << 20, cacheBytes: 50_000 });
    expect(r.entries(1, 41, Infinity).map((e) => e.data.byteLength)).toEqual(written.map(() => 10_000));
    await r.save({ entries: range(41, 45, 1, 10_000) });
    expect(r.entries(30, 46, Infinity).map((e) => e.index)).toEqual([...Array(16).keys()].map((k) => 30 + k));
    await r.close();
  });

  it('damage found by a later read is reported, not returned', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir, { segmentSize: 8192, cacheBytes: 0 });
    await s.save({ entries: range(1, 20, 1, 100) });
    const f = segmentFiles(dir)[0]!;
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0xff]), 0, 2, 32 + 20 + 40);
    fs.closeSync(fd);
    expect(() => s.entries(1, 2, Infinity)).toThrow(CorruptionError);
    await s.close();
  });
});

describe('snapshots', () => {
  it('are readable as a stream of chunks, checked as they go', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: range(1, 10, 1) });
    const data = new Uint8Array(3 * 1024 * 1024 + 17);
    for (let k = 0; k < data.length; k++) data[k] = (k * 7) & 0xff;
    await s.saveSnapshot({ meta: { index: 8, term: 1, conf: CONF }, data });
    const chunks: Buffer[] = [];
    for await (const c of s.snapshotStream(256 * 1024)) chunks.push(c as Buffer);
    expect(chunks.length).toBe(13);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
    // Damage the file under the stream: it ends with a CorruptionError, not with bad bytes.
    const snap = path.join(dir, 'snap', fs.readdirSync(path.join(dir, 'snap'))[0]!);
    const fd = fs.openSync(snap, 'r+');
    fs.writeSync(fd, Buffer.from([1]), 0, 1, 1000);
    fs.closeSync(fd);
    await expect(async () => {
      for await (const _ of s.snapshotStream()) void _;
    }).rejects.toThrow(CorruptionError);
    await s.close();
  });

  it('older snapshot files are pruned once the new one is durable', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: range(1, 10, 1) });
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf: CONF }, data: new Uint8Array([3]) });
    await s.saveSnapshot({ meta: { index: 6, term: 1, conf: CONF }, data: new Uint8Array([6]) });
    const files = fs.readdirSync(path.join(dir, 'snap'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^0+6-0+1-[0-9a-f]{8}\.snap$/);
    await s.close();
    const r = await FileStorage.open(dir);
    expect(r.snapshot().data).toEqual(new Uint8Array([6]));
    await r.close();
  });
});

describe('options', () => {
  it('initialConf is recorded for a new directory only', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir, { initialConf: CONF });
    expect(s.initialState().confState).toEqual(CONF);
    await s.close();
    const r = await FileStorage.open(dir, { initialConf: { ...CONF, voters: ['x'] } });
    expect(r.initialState().confState).toEqual(CONF);
    await r.close();
  });

  it('rejects an impossible segment size', async () => {
    const e = await rejection(FileStorage.open(dirs.make(), { segmentSize: 100 }));
    expect(isRaftError(e, 'CONFIG_INVALID')).toBe(true);
  });
});
