import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { SnapshotMeta } from '../core/messages.js';
import { CorruptionError, RaftError } from '../errors.js';
import { fsyncDir, readAt, unlinkIfExists, writeFully, type StorageFs } from './fs.js';
import type { SnapshotRef } from './meta-file.js';
import { crc32 } from './wal/crc32.js';
import { readU64, writeU64 } from './wal/format.js';

/**
 * Snapshot files, `snap/<index>-<term>-<random>.snap` (format version 1):
 *
 *     magic "TSRFSNAP" | u32 version | u32 metaLen | u64 dataLen | u32 headerCrc (of the 24 bytes before) | u32 reserved
 *     meta (JSON SnapshotMeta, metaLen bytes) | data (dataLen bytes) | u32 CRC-32 of meta and data
 *
 * Written to `<name>.tmp`, fsynced, renamed, and the directory fsynced; only then does the meta
 * file point at it, and only after that are older snapshots deleted. A file the meta file does
 * not name is garbage (an interrupted write) and is removed on open.
 */
export const SNAP_VERSION = 1;
const MAGIC = 'TSRFSNAP';
const HEADER = 32;
const CHUNK = 1 << 20;

function encodeHeader(metaLen: number, dataLen: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.write(MAGIC, 0, 'latin1');
  h.writeUInt32LE(SNAP_VERSION, 8);
  h.writeUInt32LE(metaLen, 12);
  writeU64(h, 16, dataLen);
  h.writeUInt32LE(crc32(h, 0, 24), 24);
  return h;
}

function decodeHeader(file: string, h: Buffer): { metaLen: number; dataLen: number } {
  if (h.byteLength < HEADER)
    throw new CorruptionError(file, h.byteLength, 'snapshot file shorter than its header');
  if (h.toString('latin1', 0, 8) !== MAGIC)
    throw new CorruptionError(file, 0, 'bad magic: not a tsraft snapshot');
  if (crc32(h, 0, 24) !== h.readUInt32LE(24))
    throw new CorruptionError(file, 0, 'snapshot header checksum mismatch');
  const v = h.readUInt32LE(8);
  if (v !== SNAP_VERSION) {
    throw new RaftError(
      'UNSUPPORTED_FORMAT',
      `${file}: snapshot format version ${v}; this build reads ${SNAP_VERSION}`,
    );
  }
  return { metaLen: h.readUInt32LE(12), dataLen: readU64(h, 16) };
}

function sameMeta(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term && JSON.stringify(a.conf) === JSON.stringify(b.conf);
}

/** Reads and writes the snapshot files of one data directory. */
export class SnapshotStore {
  /** @param dir the `snap/` directory. */
  constructor(
    private readonly sfs: StorageFs,
    readonly dir: string,
  ) {}

  /** `snap/<file>` for messages. */
  private label(file: string): string {
    return `snap/${file}`;
  }

  /**
   * Write a snapshot durably under a new name (temp file, fsync, rename, fsync the directory)
   * and return a reference to it. `data` may be bytes or a stream of chunks (as received over
   * the network); either way nothing else refers to the file until the caller records it.
   */
  async write(meta: SnapshotMeta, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<SnapshotRef> {
    const metaBytes = Buffer.from(
      JSON.stringify({ index: meta.index, term: meta.term, conf: meta.conf }),
      'utf8',
    );
    const name = `${String(meta.index).padStart(20, '0')}-${String(meta.term).padStart(20, '0')}-${randomBytes(4).toString('hex')}.snap`;
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    const fd = await this.sfs.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL);
    let size = 0;
    let crc = 0;
    try {
      let pos = HEADER;
      await writeFully(this.sfs, fd, metaBytes, pos);
      pos += metaBytes.byteLength;
      crc = crc32(metaBytes);
      const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> =
        data instanceof Uint8Array ? [data] : data;
      for await (const c of chunks) {
        await writeFully(this.sfs, fd, c, pos);
        pos += c.byteLength;
        size += c.byteLength;
        crc = crc32(c, 0, c.byteLength, crc);
      }
      const tail = Buffer.alloc(4);
      tail.writeUInt32LE(crc);
      await writeFully(this.sfs, fd, tail, pos);
      await writeFully(this.sfs, fd, encodeHeader(metaBytes.byteLength, size), 0);
      await this.sfs.fsync(fd);
    } finally {
      await this.sfs.close(fd);
    }
    await this.sfs.rename(tmp, final);
    await fsyncDir(this.sfs, this.dir);
    return { meta, file: name, size, crc };
  }

  /** Check a snapshot file end to end against its reference; throws CorruptionError. */
  async verify(ref: SnapshotRef): Promise<void> {
    if (ref.file === undefined) return;
    const file = this.label(ref.file);
    let fd: number;
    try {
      fd = await this.sfs.open(path.join(this.dir, ref.file), fs.constants.O_RDONLY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CorruptionError(file, 0, 'the current snapshot file is missing');
      }
      throw e;
    }
    try {
      const { size: fileSize } = await this.sfs.fstat(fd);
      const { metaLen, dataLen } = decodeHeader(file, await readAt(this.sfs, fd, HEADER, 0));
      if (HEADER + metaLen + dataLen + 4 !== fileSize) {
        throw new CorruptionError(
          file,
          fileSize,
          `file is ${fileSize} bytes; its header implies ${HEADER + metaLen + dataLen + 4}`,
        );
      }
      if (dataLen !== ref.size)
        throw new CorruptionError(file, 16, `holds ${dataLen} bytes; expected ${ref.size}`);
      const metaBytes = await readAt(this.sfs, fd, metaLen, HEADER);
      let meta: SnapshotMeta;
      try {
        meta = JSON.parse(metaBytes.toString('utf8')) as SnapshotMeta;
      } catch {
        throw new CorruptionError(file, HEADER, 'snapshot metadata is not valid JSON');
      }
      let crc = crc32(metaBytes);
      for (let p = 0; p < dataLen; p += CHUNK) {
        const c = await readAt(this.sfs, fd, Math.min(CHUNK, dataLen - p), HEADER + metaLen + p);
        crc = crc32(c, 0, c.byteLength, crc);
      }
      const stored = (await readAt(this.sfs, fd, 4, fileSize - 4)).readUInt32LE(0);
      if (crc !== stored || crc !== ref.crc) {
        throw new CorruptionError(file, HEADER, 'snapshot checksum mismatch');
      }
      if (!sameMeta(meta, ref.meta)) {
        throw new CorruptionError(file, HEADER, 'snapshot metadata differs from the meta file');
      }
    } finally {
      await this.sfs.close(fd);
    }
  }

  /** The snapshot's data bytes, read and checked synchronously. */
  readDataSync(ref: SnapshotRef): Uint8Array {
    if (ref.file === undefined) return new Uint8Array(0);
    const file = this.label(ref.file);
    const buf = this.sfs.readFileSync(path.join(this.dir, ref.file));
    const { metaLen, dataLen } = decodeHeader(file, buf);
    if (HEADER + metaLen + dataLen + 4 !== buf.byteLength) {
      throw new CorruptionError(file, buf.byteLength, 'snapshot file has the wrong length');
    }
    const end = HEADER + metaLen + dataLen;
    if (crc32(buf, HEADER, end) !== buf.readUInt32LE(end) || buf.readUInt32LE(end) !== ref.crc) {
      throw new CorruptionError(file, HEADER, 'snapshot checksum mismatch');
    }
    return new Uint8Array(buf.buffer, buf.byteOffset + HEADER + metaLen, dataLen);
  }

  /**
   * The snapshot's data as a stream of chunks (for sending it in pieces). The checksum is
   * checked as the bytes go by; a mismatch ends the stream with a CorruptionError.
   */
  openStream(ref: SnapshotRef, chunkSize = CHUNK): Readable {
    const sfs = this.sfs;
    const p = ref.file === undefined ? undefined : path.join(this.dir, ref.file);
    const file = ref.file === undefined ? '' : this.label(ref.file);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      if (p === undefined) return;
      const fd = await sfs.open(p, fs.constants.O_RDONLY);
      try {
        const { metaLen, dataLen } = decodeHeader(file, await readAt(sfs, fd, HEADER, 0));
        let crc = crc32(await readAt(sfs, fd, metaLen, HEADER));
        for (let off = 0; off < dataLen; off += chunkSize) {
          const c = await readAt(sfs, fd, Math.min(chunkSize, dataLen - off), HEADER + metaLen + off);
          if (c.byteLength === 0)
            throw new CorruptionError(file, HEADER + metaLen + off, 'snapshot file is truncated');
          crc = crc32(c, 0, c.byteLength, crc);
          if (off + c.byteLength >= dataLen) {
            const stored = (await readAt(sfs, fd, 4, HEADER + metaLen + dataLen)).readUInt32LE(0);
            if (crc !== stored || crc !== ref.crc) {
              throw new CorruptionError(file, HEADER, 'snapshot checksum mismatch');
            }
          }
          yield c;
        }
      } finally {
        await sfs.close(fd);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /** Delete every snapshot file (and leftover temp file) except `keep`. */
  async prune(keep: string | undefined): Promise<void> {
    let removed = false;
    for (const n of await this.sfs.readdir(this.dir)) {
      if (n === keep || !(n.endsWith('.snap') || n.endsWith('.tmp'))) continue;
      await unlinkIfExists(this.sfs, path.join(this.dir, n));
      removed = true;
    }
    if (removed) await fsyncDir(this.sfs, this.dir);
  }
}
