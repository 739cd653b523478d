import fs from 'node:fs';
import { entrySize, type Entry, type Index } from '../../core/messages.js';
import { CorruptionError } from '../../errors.js';
import { fsyncDir, writeFully, writeFullySync, type StorageFs } from '../fs.js';
import { crc32 } from './crc32.js';
import {
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  TRAILER_SIZE,
  align8,
  batchLength,
  decodeEntryAt,
  encodeBatch,
  encodeTrailer,
  type WalBatch,
} from './format.js';
import type { LogIndex } from './log-index.js';
import { recoverWal } from './recovery.js';
import { createSegment, type Segment } from './segment.js';

/** How the write path reaches the disk. */
export interface WalWriteOptions {
  readonly sfs: StorageFs;
  /** The `wal/` directory. */
  readonly dir: string;
  /** Roll over to a new segment when the next batch would not fit in this many bytes. */
  readonly segmentSize: number;
  /** Fill each new segment with zeros up front (faster syncs later). */
  readonly preallocate: boolean;
  /** 'sync': write and sync on the calling thread; 'async': through the libuv thread pool. */
  readonly io: 'sync' | 'async';
  /** 'dsync': O_DSYNC writes (the write is the sync); 'fdatasync': write, then fdatasync. */
  readonly syncMethod: 'dsync' | 'fdatasync';
}

const READ_CHUNK = 256 * 1024;

/**
 * The write-ahead log: segments on disk plus the in-memory index of where each entry is.
 * Not safe for concurrent `write` calls; FileStorage serializes them.
 */
export class Wal {
  private segments: Segment[];
  private active: Segment;
  private wfd: number;
  private writeOffset: number;
  private runningCrc: number;
  private next: Promise<Segment> | undefined;
  private readonly dsync: boolean;

  private constructor(
    private readonly opts: WalWriteOptions,
    readonly index: LogIndex<Segment>,
    segments: Segment[],
    wfd: number,
    writeOffset: number,
    runningCrc: number,
  ) {
    this.segments = segments;
    this.active = segments[segments.length - 1]!;
    this.wfd = wfd;
    this.writeOffset = writeOffset;
    this.runningCrc = runningCrc;
    this.dsync = opts.syncMethod === 'dsync';
  }

  /** Create the first segment of a new, empty WAL. */
  static async init(opts: WalWriteOptions): Promise<void> {
    await opts.sfs.mkdir(opts.dir);
    await createSegment(opts.sfs, opts.dir, 1, opts.segmentSize, opts.preallocate);
  }

  /** Recover the WAL (see recovery.ts) and get ready to append. */
  static async open(
    opts: WalWriteOptions,
    base: { index: Index; term: number },
  ): Promise<{ wal: Wal; commit: Index }> {
    const r = await recoverWal({ sfs: opts.sfs, dir: opts.dir, base });
    const last = r.segments[r.segments.length - 1]!;
    let wfd: number;
    try {
      const flags = fs.constants.O_RDWR | (opts.syncMethod === 'dsync' ? fs.constants.O_DSYNC : 0);
      wfd = await opts.sfs.open(last.path, flags);
    } catch (e) {
      for (const s of r.segments) if (s.fd !== undefined) await opts.sfs.close(s.fd).catch(() => undefined);
      throw e;
    }
    if (last.fd !== undefined) await opts.sfs.close(last.fd);
    last.fd = wfd;
    const wal = new Wal(opts, r.index, r.segments, wfd, r.writeOffset, r.runningCrc);
    // The meta file recorded a snapshot that replaced the log, and the crash came before the WAL
    // said so: say it now, before anything is appended after it (see RecoveredWal.resetToBase).
    if (r.resetToBase) await wal.write({ reset: { index: base.index, term: base.term }, entries: [] });
    return { wal, commit: r.commit };
  }

  /** Number of segment files (for tests and metrics). */
  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * Append one batch with one write and one sync. Returns the segment and the file offset of
   * each entry's record, in order. Throws the file system's error untouched on failure.
   */
  async write(batch: WalBatch): Promise<{ seg: Segment; offsets: number[] }> {
    const padded = align8(batchLength(batch));
    const room = this.opts.segmentSize - TRAILER_SIZE;
    if (this.writeOffset > SEGMENT_HEADER_SIZE && this.writeOffset + padded > room) await this.roll();
    const seg = this.active;
    const { buf, entryOffsets } = encodeBatch(batch, seg.salt);
    const at = this.writeOffset;
    const { sfs } = this.opts;
    if (this.opts.io === 'sync') {
      writeFullySync(sfs, this.wfd, buf, at);
      if (!this.dsync) sfs.fdatasyncSync(this.wfd);
    } else {
      await writeFully(sfs, this.wfd, buf, at);
      if (!this.dsync) await sfs.fdatasync(this.wfd);
    }
    this.writeOffset = at + buf.byteLength;
    if (this.writeOffset > seg.size) seg.size = this.writeOffset;
    this.runningCrc = crc32(buf, 0, buf.byteLength, this.runningCrc);
    for (let k = 0; k < entryOffsets.length; k++) entryOffsets[k]! += at;
    if (this.next === undefined && this.writeOffset * 2 > this.opts.segmentSize) this.prepareNext();
    return { seg, offsets: entryOffsets };
  }

  /** Start creating the next segment in the background (a failure surfaces at the next roll). */
  private prepareNext(): void {
    const { sfs, dir, segmentSize, preallocate } = this.opts;
    const p = createSegment(sfs, dir, this.active.seq + 1, segmentSize, preallocate);
    p.catch(() => undefined);
    this.next = p;
  }

  /**
   * Move to the next segment. Order matters for recovery: the next segment exists durably
   * before this one is sealed, so a sealed segment is never the newest one.
   */
  private async roll(): Promise<void> {
    if (this.next === undefined) this.prepareNext();
    const next = await this.next!;
    this.next = undefined;
    const seg = this.active;
    const { sfs } = this.opts;
    const at = Math.max(seg.size - TRAILER_SIZE, this.writeOffset);
    await writeFully(sfs, this.wfd, encodeTrailer(this.writeOffset, this.runningCrc, seg.salt), at);
    if (!this.dsync) await sfs.fdatasync(this.wfd);
    seg.size = Math.max(seg.size, at + TRAILER_SIZE);
    seg.sealed = true;
    const flags = fs.constants.O_RDWR | (this.dsync ? fs.constants.O_DSYNC : 0);
    const wfd = await sfs.open(next.path, flags);
    next.fd = wfd;
    this.segments.push(next);
    this.active = next;
    this.wfd = wfd;
    this.writeOffset = SEGMENT_HEADER_SIZE;
    this.runningCrc = next.salt;
  }

  /**
   * Delete segments from the front that hold nothing above the index's base (after
   * compaction). One at a time, oldest first, each unlink made durable before the next, so a
   * crash never leaves a hole in the sequence.
   */
  async dropCompacted(): Promise<number> {
    const { sfs, dir } = this.opts;
    let dropped = 0;
    while (this.segments.length > 1) {
      const s = this.segments[0]!;
      if (s === this.active || this.index.holdsAbove(s, this.index.baseIndex)) break;
      await sfs.unlink(s.path);
      await fsyncDir(sfs, dir);
      this.segments.shift();
      if (s.fd !== undefined) await sfs.close(s.fd).catch(() => undefined);
      s.fd = undefined;
      dropped++;
    }
    return dropped;
  }

  /**
   * Read entries `[lo, hi)` (all in the log) from disk into `out` until `maxBytes` is reached
   * (always at least one entry when `out` is empty). Returns the byte total including `bytes`.
   */
  readEntries(lo: Index, hi: Index, maxBytes: number, out: Entry[], bytes: number): number {
    const { sfs } = this.opts;
    let chunk: Buffer | undefined;
    let chunkSeg: Segment | undefined;
    let chunkPos = 0;
    const load = (seg: Segment, off: number, len: number): void => {
      const buf = Buffer.allocUnsafe(Math.max(READ_CHUNK, len));
      let got = 0;
      while (got < buf.byteLength) {
        const n = sfs.readSync(seg.fd!, buf, got, buf.byteLength - got, off + got);
        if (n === 0) break;
        got += n;
      }
      chunk = buf.subarray(0, got);
      chunkSeg = seg;
      chunkPos = off;
    };
    for (let i = lo; i < hi; i++) {
      const { seg, off } = this.index.locate(i);
      if (
        chunk === undefined ||
        chunkSeg !== seg ||
        off < chunkPos ||
        off + RECORD_HEADER_SIZE > chunkPos + chunk.byteLength
      ) {
        load(seg, off, RECORD_HEADER_SIZE);
      }
      if (off + RECORD_HEADER_SIZE > chunkPos + chunk!.byteLength) {
        throw new CorruptionError(seg.name, off, `entry ${i} lies past the end of the file`);
      }
      const len = chunk!.readUInt32LE(off - chunkPos + 4);
      if (off + RECORD_HEADER_SIZE + len > chunkPos + chunk!.byteLength) {
        load(seg, off, RECORD_HEADER_SIZE + len);
        if (RECORD_HEADER_SIZE + len > chunk!.byteLength) {
          throw new CorruptionError(seg.name, off, `entry ${i} runs past the end of the file`);
        }
      }
      const e = decodeEntryAt(seg.name, chunk!, off - chunkPos, chunkPos, seg.salt);
      if (e.index !== i)
        throw new CorruptionError(seg.name, off, `expected entry ${i}, found entry ${e.index}`);
      const size = entrySize(e);
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(e);
      bytes += size;
    }
    return bytes;
  }

  /** Finish background work and close every file. */
  async close(): Promise<void> {
    const { sfs } = this.opts;
    if (this.next !== undefined) await this.next.catch(() => undefined);
    this.next = undefined;
    for (const s of this.segments) {
      if (s.fd !== undefined) await sfs.close(s.fd).catch(() => undefined);
      s.fd = undefined;
    }
  }
}
