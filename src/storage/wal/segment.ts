import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { fsyncDir, writeFully, type StorageFs } from '../fs.js';
import { SEGMENT_HEADER_SIZE, encodeSegmentHeader, segmentFileName } from './format.js';

/** One WAL segment file. */
export class Segment {
  /** Read descriptor (for the active segment: the write descriptor). */
  fd: number | undefined;
  /** Current physical size of the file. */
  size: number;
  /** Whether a seal trailer was written (the segment is immutable). */
  sealed = false;

  constructor(
    readonly seq: number,
    readonly path: string,
    readonly salt: number,
    size: number,
  ) {
    this.size = size;
  }

  /** Relative name for messages (`wal/0000…0001.wal`). */
  get name(): string {
    return `wal/${path.basename(this.path)}`;
  }
}

const ZEROS = Buffer.alloc(1 << 20);

/**
 * Create segment `seq` durably: write a header and (when `preallocate`) zeros up to `size` into
 * `<name>.tmp`, fdatasync it, rename it into place and fsync the directory. Writing real zeros
 * (rather than a sparse ftruncate or an unwritten-extent fallocate) is what makes later
 * overwrite-and-sync cheaper than append-and-sync: the file's size and block map never change.
 */
export async function createSegment(
  sfs: StorageFs,
  dir: string,
  seq: number,
  size: number,
  preallocate: boolean,
): Promise<Segment> {
  const final = path.join(dir, segmentFileName(seq));
  const tmp = `${final}.tmp`;
  const salt = randomInt(1, 0xffff_ffff);
  const fd = await sfs.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC);
  let written = SEGMENT_HEADER_SIZE;
  try {
    await writeFully(sfs, fd, encodeSegmentHeader(seq, salt), 0);
    if (preallocate) {
      while (written < size) {
        const n = Math.min(ZEROS.byteLength, size - written);
        await writeFully(sfs, fd, n === ZEROS.byteLength ? ZEROS : ZEROS.subarray(0, n), written);
        written += n;
      }
    }
    await sfs.fdatasync(fd);
  } finally {
    await sfs.close(fd);
  }
  await sfs.rename(tmp, final);
  await fsyncDir(sfs, dir);
  return new Segment(seq, final, salt, written);
}
