import fs from 'node:fs';
import path from 'node:path';

/** Segment files of a data directory, oldest first. */
export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(dir, 'wal'))
    .filter((n) => /^\d{20}\.wal$/.test(n))
    .sort()
    .map((n) => path.join(dir, 'wal', n));
}

/** `wal/<name>` as error messages name it. */
export function walName(file: string): string {
  return `wal/${path.basename(file)}`;
}

/** Byte ranges `[start, end)` (unpadded) of the batches in a segment file's bytes. */
export function batchRanges(buf: Buffer): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let p = 32;
  while (p + 20 <= buf.byteLength && buf.readUInt32LE(p + 4) === 12 && buf[p + 8] === 1) {
    const len = buf.readUInt32LE(p + 12);
    out.push({ start: p, end: p + len });
    p = (p + len + 7) & ~7;
  }
  return out;
}
