import fs from 'node:fs';
import path from 'node:path';
import type { Index, Term } from '../../core/messages.js';
import { CorruptionError } from '../../errors.js';
import { unlinkIfExists, writeFully, type StorageFs } from '../fs.js';
import { crc32 } from './crc32.js';
import {
  BATCH_END_MARK,
  BATCH_END_SIZE,
  BATCH_RECORD_SIZE,
  COMMIT_RECORD_SIZE,
  KIND_BATCH,
  KIND_COMMIT,
  KIND_ENTRY,
  KIND_RESET,
  RECORD_HEADER_SIZE,
  RESET_RECORD_SIZE,
  SEGMENT_HEADER_SIZE,
  TRAILER_SIZE,
  align8,
  decodeSegmentHeader,
  decodeTrailer,
  encodeTrailer,
  parseSegmentFileName,
  readU64,
  u32,
  segmentFileName,
} from './format.js';
import { LogIndex } from './log-index.js';
import { Segment } from './segment.js';

/**
 * Recovery on open.
 *
 * Segments are replayed in sequence order, batch by batch; a batch is applied only once all of
 * its records verified. Where the records stop, the rest of the segment must be the zeros it
 * was preallocated with. Anything else is classified:
 *
 * - a torn write: the crash hit the last write, which was never acknowledged (its sync had
 *   not returned). Evidence: the batch runs past the end of the file, or its part in some
 *   512-byte sector is still all zero (sectors are written whole or not at all), and no valid
 *   batch follows anywhere. It is cut off and its bytes zeroed, and the log continues from there;
 * - damage: anything else, including a bad record followed by a valid batch (a synced batch
 *   was written after it, so it had been synced too), a checksum failure in a batch whose
 *   bytes are all present, a missing segment, a gap in the indexes. Open fails with a
 *   CorruptionError naming the file and byte offset; nothing is dropped silently.
 */

/** What recovery hands to the WAL writer. */
export interface RecoveredWal {
  readonly segments: Segment[];
  readonly index: LogIndex<Segment>;
  /** Highest COMMIT record seen (0 if none). */
  readonly commit: Index;
  /** Where the next batch goes in the last segment. */
  readonly writeOffset: number;
  /** CRC-32 of the last segment's `[header, writeOffset)`, seeded with its salt (for sealing). */
  readonly runningCrc: number;
  /**
   * The meta file's compaction point replaced the log the WAL holds (a snapshot was installed
   * and recorded, and the crash came before the WAL's RESET record): the caller must write that
   * RESET now, before anything is appended after it, or the next recovery would find a gap.
   */
  readonly resetToBase: boolean;
}

const SECTOR = 512;
const ZERO_CHUNK = Buffer.alloc(64 * 1024);

interface Bad {
  offset: number;
  reason: string;
}

type Outcome = { kind: 'clean'; end: number } | { kind: 'torn'; end: number; dirtyTo: number; bad: Bad };

/** End (exclusive) of the last non-zero byte in `buf[from, limit)`, or `from` if all zero. */
function nonZeroEnd(buf: Buffer, from: number, limit: number): number {
  let last = from;
  for (let p = from; p < limit; p += ZERO_CHUNK.byteLength) {
    const n = Math.min(ZERO_CHUNK.byteLength, limit - p);
    if (
      !buf.subarray(p, p + n).equals(n === ZERO_CHUNK.byteLength ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, n))
    ) {
      last = p + n;
    }
  }
  while (last > from && buf[last - 1] === 0) last--;
  return last;
}

/**
 * Whether the part of `[a, b)` in some 512-byte sector is all zero: a sector of the batch that
 * never reached the disk. (A batch's first sector holds its non-zero header and its last one
 * its non-zero end marker, so only a whole sector of zero entry data could look the same.)
 */
function hasZeroSector(buf: Buffer, a: number, b: number): boolean {
  for (let s = a - (a % SECTOR); s < b; s += SECTOR) {
    const lo = Math.max(a, s);
    const hi = Math.min(b, s + SECTOR);
    if (nonZeroEnd(buf, lo, hi) === lo) return true;
  }
  return false;
}

function batchHeaderValid(buf: Buffer, p: number, limit: number, salt: number): boolean {
  return (
    p + BATCH_RECORD_SIZE <= limit &&
    u32(buf, p + 4) === 12 &&
    buf[p + RECORD_HEADER_SIZE] === KIND_BATCH &&
    crc32(buf, p + 4, p + BATCH_RECORD_SIZE, salt) === u32(buf, p)
  );
}

/** First 8-aligned offset in `[from, limit)` holding a valid BATCH record, or -1. */
function findValidBatch(buf: Buffer, from: number, limit: number, salt: number): number {
  for (let p = align8(from); p + BATCH_RECORD_SIZE <= limit; p += 8) {
    if (u32(buf, p + 4) === 12 && batchHeaderValid(buf, p, limit, salt)) return p;
  }
  return -1;
}

/**
 * Check the batch at `pos`. Returns its unpadded end, or a Bad describing the first problem
 * plus how far the batch claims to extend (for torn-write classification).
 */
function checkBatch(
  buf: Buffer,
  pos: number,
  limit: number,
  salt: number,
  verify: boolean,
): number | { bad: Bad; extent: number; maybeTorn: boolean } {
  if (pos + RECORD_HEADER_SIZE > limit) {
    return {
      bad: { offset: pos, reason: 'record header cut short by the end of the file' },
      extent: pos + 8,
      maybeTorn: true,
    };
  }
  const len = u32(buf, pos + 4);
  if (len !== 12) {
    // The 8-byte header sits inside one sector (batches are 8-aligned), so a torn write cannot
    // half-write it. If nothing follows it, it is noise in empty space, not a batch; otherwise
    // a batch header was damaged.
    return {
      bad: { offset: pos, reason: `batch header has impossible length ${len}` },
      extent: pos + 8,
      maybeTorn: nonZeroEnd(buf, pos + 8, limit) === pos + 8,
    };
  }
  if (pos + BATCH_RECORD_SIZE > limit) {
    return {
      bad: { offset: pos, reason: 'batch header cut short by the end of the file' },
      extent: pos + BATCH_RECORD_SIZE,
      maybeTorn: true,
    };
  }
  if (verify && crc32(buf, pos + 4, pos + BATCH_RECORD_SIZE, salt) !== u32(buf, pos)) {
    // Torn only if the part of the record in the next sector never made it (is zero).
    const boundary = pos - (pos % SECTOR) + SECTOR;
    const torn =
      boundary < pos + BATCH_RECORD_SIZE && nonZeroEnd(buf, boundary, pos + BATCH_RECORD_SIZE) === boundary;
    return {
      bad: { offset: pos, reason: 'batch header checksum mismatch' },
      extent: pos + BATCH_RECORD_SIZE,
      maybeTorn: torn,
    };
  }
  if (buf[pos + RECORD_HEADER_SIZE] !== KIND_BATCH) {
    return {
      bad: { offset: pos, reason: `expected a batch record, found kind ${buf[pos + RECORD_HEADER_SIZE]}` },
      extent: pos + 8,
      maybeTorn: false,
    };
  }
  const batchLen = u32(buf, pos + 12);
  const count = u32(buf, pos + 16);
  const end = pos + batchLen;
  if (batchLen < BATCH_RECORD_SIZE || count === 0) {
    return {
      bad: { offset: pos, reason: `batch has impossible length ${batchLen} / count ${count}` },
      extent: pos + BATCH_RECORD_SIZE,
      maybeTorn: false,
    };
  }
  if (end > limit) {
    return {
      bad: { offset: pos, reason: `batch of ${batchLen} bytes runs past the end of the file` },
      extent: end,
      maybeTorn: true,
    };
  }
  if (batchLen < BATCH_RECORD_SIZE + BATCH_END_SIZE || u32(buf, end - BATCH_END_SIZE) !== BATCH_END_MARK) {
    return {
      bad: { offset: end - BATCH_END_SIZE, reason: 'batch end marker missing' },
      extent: end,
      maybeTorn: true,
    };
  }
  const recordsEnd = end - BATCH_END_SIZE;
  let r = pos + BATCH_RECORD_SIZE;
  for (let k = 0; k < count; k++) {
    if (r + RECORD_HEADER_SIZE > recordsEnd) {
      return {
        bad: { offset: r, reason: 'record header runs past the end of its batch' },
        extent: end,
        maybeTorn: true,
      };
    }
    const rlen = u32(buf, r + 4);
    const rend = r + RECORD_HEADER_SIZE + rlen;
    if (rlen === 0 || rend > recordsEnd) {
      return {
        bad: { offset: r, reason: `record length ${rlen} runs past the end of its batch` },
        extent: end,
        maybeTorn: true,
      };
    }
    if (verify && crc32(buf, r + 4, rend, salt) !== u32(buf, r)) {
      return { bad: { offset: r, reason: 'record checksum mismatch' }, extent: end, maybeTorn: true };
    }
    const kind = buf[r + RECORD_HEADER_SIZE];
    const ok =
      kind === KIND_ENTRY
        ? rlen >= 20
        : kind === KIND_COMMIT
          ? rend - r === COMMIT_RECORD_SIZE
          : kind === KIND_RESET && rend - r === RESET_RECORD_SIZE;
    if (!ok) {
      return {
        bad: { offset: r, reason: `record of kind ${kind} and length ${rlen} is not valid` },
        extent: end,
        maybeTorn: true,
      };
    }
    r = rend;
  }
  if (r !== recordsEnd) {
    return {
      bad: { offset: r, reason: `batch length ${batchLen} does not match its ${count} records` },
      extent: end,
      maybeTorn: true,
    };
  }
  return end;
}

/**
 * Scan one segment's batches in `buf[header, limit)`, calling `apply` for each verified batch,
 * and classify how the data ends.
 */
function scanSegment(
  file: string,
  buf: Buffer,
  limit: number,
  fileSize: number,
  salt: number,
  verify: boolean,
  apply: (start: number, end: number) => void,
): Outcome {
  let pos = SEGMENT_HEADER_SIZE;
  for (;;) {
    if (pos >= limit) return { kind: 'clean', end: pos };
    const zeroHeader = pos + 8 <= limit && u32(buf, pos) === 0 && u32(buf, pos + 4) === 0;
    if (zeroHeader || (pos + 8 > limit && nonZeroEnd(buf, pos, limit) === pos)) {
      // The normal end of data: the rest must be zeros, or unreadable leftovers of a torn
      // write whose first sector never made it (so it holds no valid batch).
      const dirtyTo = nonZeroEnd(buf, pos, limit);
      if (dirtyTo === pos) return { kind: 'clean', end: pos };
      const q = findValidBatch(buf, pos + 8, dirtyTo, salt);
      if (q >= 0) {
        throw new CorruptionError(
          file,
          pos,
          `the records stop here (zeros) but a valid batch follows at offset ${q}`,
        );
      }
      return {
        kind: 'torn',
        end: pos,
        dirtyTo,
        bad: { offset: pos, reason: 'unreadable bytes after the last record' },
      };
    }
    const r = checkBatch(buf, pos, limit, salt, verify);
    if (typeof r === 'number') {
      apply(pos, r);
      pos = align8(r);
      continue;
    }
    const torn = r.maybeTorn && (r.extent > fileSize || hasZeroSector(buf, pos, Math.min(r.extent, limit)));
    if (!torn) throw new CorruptionError(file, r.bad.offset, r.bad.reason);
    const dirtyTo = nonZeroEnd(buf, pos, limit);
    const q = findValidBatch(buf, Math.max(pos + 8, Math.min(r.extent, limit)), dirtyTo, salt);
    if (q >= 0) {
      throw new CorruptionError(
        file,
        r.bad.offset,
        `${r.bad.reason}, and a valid batch follows at offset ${q}: damage in the middle of the log, not a torn write`,
      );
    }
    return { kind: 'torn', end: pos, dirtyTo: Math.max(dirtyTo, pos), bad: r.bad };
  }
}

/** Options for {@link recoverWal}. */
export interface RecoverOptions {
  readonly sfs: StorageFs;
  /** The `wal/` directory. */
  readonly dir: string;
  /** The compaction point from the meta file: entries at or below it are not part of the log. */
  readonly base: { readonly index: Index; readonly term: Term };
}

/** Read, check and replay every segment. Throws CorruptionError on damage. */
export async function recoverWal(opts: RecoverOptions): Promise<RecoveredWal> {
  const { sfs, dir, base } = opts;
  const names = await sfs.readdir(dir);
  const seqs: number[] = [];
  for (const n of names) {
    if (n.endsWith('.tmp')) await unlinkIfExists(sfs, path.join(dir, n));
    else {
      const s = parseSegmentFileName(n);
      if (s !== undefined) seqs.push(s);
    }
  }
  seqs.sort((a, b) => a - b);
  if (seqs.length === 0) throw new CorruptionError('wal/', 0, 'no WAL segment found');
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1]! + 1) {
      throw new CorruptionError(
        `wal/${segmentFileName(seqs[i]!)}`,
        0,
        `segment ${seqs[i - 1]! + 1} is missing before this one`,
      );
    }
  }

  const index = new LogIndex<Segment>(-1, 0);
  let anchored = false;
  let commit = 0;
  let earlierTorn: { file: string; bad: Bad } | undefined;
  const segments: Segment[] = [];
  const repairs: { seg: Segment; from: number; to: number; seal: number | undefined }[] = [];
  let writeOffset = SEGMENT_HEADER_SIZE;
  let runningCrc = 0;

  // Read segment i + 1 (thread pool) while segment i is parsed (main thread): two buffers.
  const spare: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
  type Loaded = { fd: number; size: number; got: number; buf: Buffer };
  const load = async (i: number): Promise<Loaded> => {
    const fd = await sfs.open(path.join(dir, segmentFileName(seqs[i]!)), fs.constants.O_RDONLY);
    try {
      const { size } = await sfs.fstat(fd);
      let buf = spare[i % 2]!;
      if (buf.byteLength < size) buf = spare[i % 2] = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = await sfs.read(fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return { fd, size, got, buf };
    } catch (e) {
      await sfs.close(fd).catch(() => undefined);
      throw e;
    }
  };
  let next: Promise<Loaded> | undefined = load(0);

  try {
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const p = path.join(dir, segmentFileName(seq));
      const file = `wal/${segmentFileName(seq)}`;
      const { fd, size, got, buf } = await next!;
      next = i + 1 < seqs.length ? load(i + 1) : undefined;
      next?.catch(() => undefined);
      const seg = new Segment(seq, p, 0, size);
      seg.fd = fd;
      segments.push(seg);
      if (got < size) throw new CorruptionError(file, got, 'file shrank while being read');
      const salt = decodeSegmentHeader(file, buf, size, seq);
      (seg as { salt: number }).salt = salt;
      const isLast = i === seqs.length - 1;

      let applied = false;
      const apply = (start: number, end: number): void => {
        if (!applied && earlierTorn !== undefined) {
          throw new CorruptionError(
            earlierTorn.file,
            earlierTorn.bad.offset,
            `${earlierTorn.bad.reason}, and later segment ${file} holds records: damage, not a torn write`,
          );
        }
        applied = true;
        for (let r = start + BATCH_RECORD_SIZE; r < end - BATCH_END_SIZE;) {
          const len = u32(buf, r + 4);
          const b = r + RECORD_HEADER_SIZE;
          const kind = buf[b];
          if (kind === KIND_ENTRY) {
            const idx = readU64(buf, b + 4);
            const term = readU64(buf, b + 12);
            if (!anchored) {
              index.reset(idx - 1, 0);
              anchored = true;
            }
            if (idx > index.last + 1) {
              throw new CorruptionError(
                file,
                r,
                `entry ${idx} follows entry ${index.last}: entries are missing`,
              );
            }
            if (idx - 1 > index.baseIndex) {
              const prevTerm = idx === index.last + 1 ? index.lastTerm() : index.term(idx - 1);
              if (term < prevTerm) {
                throw new CorruptionError(
                  file,
                  r,
                  `entry ${idx} has term ${term}, below the ${prevTerm} before it`,
                );
              }
            }
            index.put(idx, term, seg, r);
          } else if (kind === KIND_COMMIT) {
            commit = Math.max(commit, readU64(buf, b + 4));
          } else {
            index.reset(readU64(buf, b + 4), readU64(buf, b + 12));
            anchored = true;
          }
          r = b + len;
        }
      };

      const trailer = decodeTrailer(buf, size, salt);
      if (trailer !== undefined && isLast) {
        throw new CorruptionError(
          file,
          size - TRAILER_SIZE,
          'the newest segment is sealed: the segment after it is missing',
        );
      }
      if (trailer !== undefined) {
        seg.sealed = true;
        const fast = crc32(buf, SEGMENT_HEADER_SIZE, trailer.sealPos, salt) === trailer.dataCrc;
        const out = scanSegment(
          file,
          buf,
          fast ? trailer.sealPos : size - TRAILER_SIZE,
          size,
          salt,
          !fast,
          apply,
        );
        if (out.kind === 'torn' && out.end !== trailer.sealPos) {
          throw new CorruptionError(file, out.bad.offset, `${out.bad.reason} in a sealed segment`);
        }
        if (out.end !== trailer.sealPos) {
          throw new CorruptionError(
            file,
            out.end,
            `records end at ${out.end} but the seal says ${trailer.sealPos}`,
          );
        }
        continue;
      }
      // A non-last segment may end with a seal trailer that got damaged: leave it out of the
      // scan (its records are each checked anyway) rather than take it for torn leftovers.
      const trailerMagic =
        buf.toString('latin1', size - TRAILER_SIZE, size - TRAILER_SIZE + 8) === 'TSRFSEAL';
      const limit = !isLast && trailerMagic ? size - TRAILER_SIZE : size;
      const out = scanSegment(file, buf, limit, size, salt, true, apply);
      if (out.kind === 'torn') {
        earlierTorn ??= { file, bad: out.bad };
      }
      const dirtyTo = out.kind === 'torn' ? out.dirtyTo : out.end;
      const crc = crc32(buf, SEGMENT_HEADER_SIZE, out.end, salt);
      if (isLast) {
        writeOffset = out.end;
        runningCrc = crc;
        if (dirtyTo > out.end) repairs.push({ seg, from: out.end, to: dirtyTo, seal: undefined });
      } else {
        // No longer written to: zero any torn leftovers and seal it so later opens check it fast.
        repairs.push({ seg, from: out.end, to: dirtyTo, seal: crc });
        seg.sealed = true;
      }
    }
  } catch (e) {
    const pending = await next?.catch(() => undefined);
    if (pending !== undefined) await sfs.close(pending.fd).catch(() => undefined);
    for (const s of segments) if (s.fd !== undefined) await sfs.close(s.fd).catch(() => undefined);
    throw e;
  }

  // Repairs: make the cut-off tails zero again (so a later open sees a clean end) and seal
  // segments that will never be written again.
  for (const r of repairs) {
    const wfd = await sfs.open(r.seg.path, fs.constants.O_WRONLY);
    try {
      if (r.to > r.from) await writeFully(sfs, wfd, Buffer.alloc(r.to - r.from), r.from);
      if (r.seal !== undefined) {
        const at = Math.max(r.seg.size - TRAILER_SIZE, align8(r.from));
        await writeFully(sfs, wfd, encodeTrailer(r.from, r.seal, r.seg.salt), at);
        r.seg.size = Math.max(r.seg.size, at + TRAILER_SIZE);
      }
      await sfs.fdatasync(wfd);
    } finally {
      await sfs.close(wfd);
    }
  }

  // Apply the compaction point recorded in the meta file.
  let resetToBase = false;
  if (!anchored || index.last < base.index) {
    resetToBase = anchored;
    index.reset(base.index, base.term);
  } else if (index.baseIndex > base.index) {
    throw new CorruptionError(
      segments[0]!.name,
      SEGMENT_HEADER_SIZE,
      `the log starts at entry ${index.baseIndex + 1} but the snapshot covers only up to ${base.index}: entries are missing`,
    );
  } else if (base.index > index.baseIndex && index.term(base.index) !== base.term) {
    // The snapshot that replaced the log was recorded but the crash came before the WAL said
    // so (see FileStorage: meta first, then the RESET record): drop the conflicting log.
    index.reset(base.index, base.term);
    resetToBase = true;
  } else {
    index.compact(base.index);
    index.baseTerm = base.term;
  }
  return { segments, index, commit, writeOffset, runningCrc, resetToBase };
}
