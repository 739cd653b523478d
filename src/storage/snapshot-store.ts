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

/** An error thrown by the stream of bytes being saved (the state machine's), not by the disk. */
export class SnapshotSourceError extends Error {
  override name = 'SnapshotSourceError';
  constructor(readonly error: unknown) {
    super(`reading the snapshot to save failed: ${(error as Error)?.message ?? String(error)}`, {
      cause: error,
    });
  }
}

/**
 * Writes one snapshot file from chunks pushed into it (see {@link SnapshotStore.create}). The
 * temporary file is opened on the first write.
 */
export class SnapshotFileWriter {
  private fd: number | undefined;
  private opening: Promise<number> | undefined;
  private pos = HEADER;
  private size = 0;
  private crc = 0;
  private done = false;
  private readonly metaBytes: Buffer;
  private readonly final: string;
  private readonly tmp: string;

  constructor(
    private readonly sfs: StorageFs,
    private readonly dir: string,
    readonly meta: SnapshotMeta,
  ) {
    this.metaBytes = Buffer.from(
      JSON.stringify({ index: meta.index, term: meta.term, conf: meta.conf }),
      'utf8',
    );
    this.crc = crc32(this.metaBytes);
    const name = `${String(meta.index).padStart(20, '0')}-${String(meta.term).padStart(20, '0')}-${randomBytes(4).toString('hex')}.snap`;
    this.final = path.join(dir, name);
    this.tmp = `${this.final}.tmp`;
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.size;
  }

  private async file(): Promise<number> {
    if (this.fd !== undefined) return this.fd;
    this.opening ??= (async () => {
      const fd = await this.sfs.open(
        this.tmp,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
      );
      this.fd = fd;
      await writeFully(this.sfs, fd, this.metaBytes, this.pos);
      this.pos += this.metaBytes.byteLength;
      return fd;
    })();
    return this.opening;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new RaftError('INVARIANT', 'write after the snapshot file was finished');
    const fd = await this.file();
    if (chunk.byteLength === 0) return;
    const at = this.pos;
    this.pos += chunk.byteLength;
    this.size += chunk.byteLength;
    this.crc = crc32(chunk, 0, chunk.byteLength, this.crc);
    await writeFully(this.sfs, fd, chunk, at);
  }

  /** Checksum, header, fsync, rename, fsync the directory: the file is complete and durable. */
  async finish(): Promise<SnapshotRef> {
    if (this.done) throw new RaftError('INVARIANT', 'the snapshot file was already finished');
    const fd = await this.file();
    this.done = true;
    try {
      const tail = Buffer.alloc(4);
      tail.writeUInt32LE(this.crc);
      await writeFully(this.sfs, fd, tail, this.pos);
      await writeFully(this.sfs, fd, encodeHeader(this.metaBytes.byteLength, this.size), 0);
      await this.sfs.fsync(fd);
    } finally {
      this.fd = undefined;
      await this.sfs.close(fd);
    }
    await this.sfs.rename(this.tmp, this.final);
    await fsyncDir(this.sfs, this.dir);
    return { meta: this.meta, file: path.basename(this.final), size: this.size, crc: this.crc };
  }

  /** Close and remove the temporary file. */
  async abort(): Promise<void> {
    this.done = true;
    const opening = this.opening;
    if (opening !== undefined) {
      const fd = await opening.catch(() => undefined);
      if (fd !== undefined && this.fd === fd) {
        this.fd = undefined;
        await this.sfs.close(fd).catch(() => undefined);
      }
    }
    await unlinkIfExists(this.sfs, this.tmp).catch(() => undefined);
  }
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
   * Start writing a snapshot under a new name: chunks go to `<name>.tmp`; `finish()` writes the
   * checksum and header, fsyncs, renames and fsyncs the directory, and returns a reference.
   * Nothing refers to the file until the caller records it (an unrecorded file is garbage the
   * next open removes). Writes must not overlap: await each before the next.
   */
  create(meta: SnapshotMeta): SnapshotFileWriter {
    return new SnapshotFileWriter(this.sfs, this.dir, meta);
  }

  /**
   * Write a snapshot durably under a new name and return a reference to it. `data` may be bytes
   * or a stream of chunks (a state machine's incremental snapshot); an error thrown by the
   * stream is rethrown wrapped in a {@link SnapshotSourceError} (not a disk error).
   */
  async write(meta: SnapshotMeta, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<SnapshotRef> {
    const w = this.create(meta);
    try {
      if (data instanceof Uint8Array) {
        await w.write(data);
      } else {
        const it = data[Symbol.asyncIterator]();
        for (;;) {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await it.next();
          } catch (e) {
            throw new SnapshotSourceError(e);
          }
          if (r.done === true) break;
          await w.write(r.value);
        }
      }
      return await w.finish();
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
  }

  /** Delete one snapshot file (no longer current). */
  async remove(file: string): Promise<void> {
    await unlinkIfExists(this.sfs, path.join(this.dir, file));
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
   * The snapshot's data as chunks (for sending it in pieces, or restoring from it). The checksum
   * is checked as the bytes go by; a mismatch ends the iteration with a CorruptionError.
   */
  async *chunks(ref: SnapshotRef, chunkSize = CHUNK): AsyncGenerator<Uint8Array> {
    if (ref.file === undefined) return;
    const sfs = this.sfs;
    const file = this.label(ref.file);
    const fd = await sfs.open(path.join(this.dir, ref.file), fs.constants.O_RDONLY);
    try {
      const { metaLen, dataLen } = decodeHeader(file, await readAt(sfs, fd, HEADER, 0));
      if (dataLen !== ref.size)
        throw new CorruptionError(file, 16, `holds ${dataLen} bytes; expected ${ref.size}`);
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

  /** {@link chunks} as a Node.js stream. */
  openStream(ref: SnapshotRef, chunkSize = CHUNK): Readable {
    return Readable.from(this.chunks(ref, chunkSize), { objectMode: false });
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
