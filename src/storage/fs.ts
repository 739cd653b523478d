import fs from 'node:fs';

/**
 * The file-system operations the durable storage uses, gathered in one interface so tests can
 * wrap it and inject failures (ENOSPC, EIO, EROFS) into any write or sync.
 *
 * Positions are absolute (pread/pwrite). Implementations may return short writes; callers loop.
 * `sync` methods exist only where the write path deliberately blocks (see `FileStorageOptions.io`).
 */
export interface StorageFs {
  open(path: string, flags: number, mode?: number): Promise<number>;
  close(fd: number): Promise<void>;
  closeSync(fd: number): void;
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fsync(fd: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  fdatasyncSync(fd: number): void;
  ftruncate(fd: number, length: number): Promise<void>;
  fstat(fd: number): Promise<{ size: number }>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  /** Used only by synchronous reads (a snapshot's bytes for `snapshot()`). */
  readFileSync(path: string): Buffer;
}

function cb<T>(run: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/** The real file system (node:fs, callback API: one thread-pool round trip per call). */
export const nodeFs: StorageFs = {
  open: (path, flags, mode = 0o644) => cb<number>((d) => fs.open(path, flags, mode, d)),
  close: (fd) => cb<void>((d) => fs.close(fd, d)),
  closeSync: (fd) => fs.closeSync(fd),
  write: (fd, buf, offset, length, position) =>
    cb<number>((d) => fs.write(fd, buf, offset, length, position, (e, n) => d(e, n))),
  writeSync: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  read: (fd, buf, offset, length, position) =>
    cb<number>((d) => fs.read(fd, buf, offset, length, position, (e, n) => d(e, n))),
  readSync: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  fsync: (fd) => cb<void>((d) => fs.fsync(fd, d)),
  fdatasync: (fd) => cb<void>((d) => fs.fdatasync(fd, d)),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  ftruncate: (fd, length) => cb<void>((d) => fs.ftruncate(fd, length, d)),
  fstat: (fd) => cb<fs.Stats>((d) => fs.fstat(fd, d)),
  rename: (from, to) => cb<void>((d) => fs.rename(from, to, d)),
  link: (existing, newPath) => cb<void>((d) => fs.link(existing, newPath, d)),
  unlink: (path) => cb<void>((d) => fs.unlink(path, d)),
  readdir: (path) => cb<string[]>((d) => fs.readdir(path, d)),
  mkdir: (path) => cb<void>((d) => fs.mkdir(path, { recursive: true }, (e) => d(e))),
  readFileSync: (path) => fs.readFileSync(path),
};

/** Write all of `buf` at `position`, looping over short writes. */
export async function writeFully(
  sfs: StorageFs,
  fd: number,
  buf: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const n = await sfs.write(fd, buf, done, buf.byteLength - done, position + done);
    if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += n;
  }
}

/** Synchronous {@link writeFully}. */
export function writeFullySync(sfs: StorageFs, fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.byteLength) {
    const n = sfs.writeSync(fd, buf, done, buf.byteLength - done, position + done);
    if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += n;
  }
}

/** Read up to `length` bytes at `position` into a new buffer (shorter at end of file). */
export async function readAt(sfs: StorageFs, fd: number, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = await sfs.read(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** fsync a directory so that creations, renames and unlinks in it are durable. */
export async function fsyncDir(sfs: StorageFs, dir: string): Promise<void> {
  const fd = await sfs.open(dir, fs.constants.O_RDONLY);
  try {
    await sfs.fsync(fd);
  } finally {
    await sfs.close(fd);
  }
}

/** Read a whole file, or `undefined` if it does not exist. */
export async function readWholeFile(sfs: StorageFs, path: string): Promise<Buffer | undefined> {
  let fd: number;
  try {
    fd = await sfs.open(path, fs.constants.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const { size } = await sfs.fstat(fd);
    return await readAt(sfs, fd, size, 0);
  } finally {
    await sfs.close(fd);
  }
}

/** Unlink, ignoring a file that is already gone. */
export async function unlinkIfExists(sfs: StorageFs, path: string): Promise<void> {
  try {
    await sfs.unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
